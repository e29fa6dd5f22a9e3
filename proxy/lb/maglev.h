// Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted as in Katran's MaglevHashV2:
// a lookup table of backend ids in which every backend owns a near-equal share of slots, and a
// change of the backend set moves few slots, so that most flows keep their backend on every node
// without shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bpf/abi/service.h"

namespace weir::lb {

struct MaglevBackend {
  uint32_t id = 0;
  // Stable identity such as "10.0.0.1:8080/TCP": the permutation derives from it, never from the
  // id, so that nodes which numbered their backends differently still agree on the table layout.
  std::string name;
  // Relative share of slots; 0 takes none.
  uint32_t weight = 1;
};

// A Maglev table size must be prime (so that every skip walks all slots) and fit the BPF map
// (at most WEIR_MAGLEV_MAX_SIZE).
absl::Status ValidateMaglevTableSize(uint32_t table_size);

// The table: `table_size` backend ids. The result depends only on the set of (name, weight) pairs,
// not on the order of `backends`. No backend with a positive weight, or an invalid table size
// (see ValidateMaglevTableSize): an empty table.
std::vector<uint32_t> BuildMaglevTable(const std::vector<MaglevBackend>& backends, uint32_t table_size);

}  // namespace weir::lb
