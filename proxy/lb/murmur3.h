// MurmurHash3 x64_128 (Austin Appleby, public domain): a stable hash for Maglev permutations.
// Unlike std::hash or absl::Hash its output is fixed by the algorithm, so every node and every
// build derives the same lookup table from the same backends. Input bytes are read as
// little-endian words regardless of the host, which keeps the output host-independent too.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace weir::lb {

struct Hash128 {
  uint64_t low = 0;   // h1 of the reference implementation
  uint64_t high = 0;  // h2
};

Hash128 MurmurHash3X64_128(absl::string_view data, uint32_t seed);

}  // namespace weir::lb
