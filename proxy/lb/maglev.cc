#include "proxy/lb/maglev.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "proxy/lb/murmur3.h"

namespace weir::lb {
namespace {

// Fixed forever: changing them reshuffles every Maglev table (and every flow) in the cluster, and
// nodes running different versions would disagree during a rolling upgrade.
constexpr uint32_t kOffsetSeed = 0x5eed0001;
constexpr uint32_t kSkipSeed = 0x5eed0002;

struct Permutation {
  uint32_t id = 0;
  uint32_t weight = 0;
  uint64_t offset = 0;
  uint64_t skip = 0;  // 1..table_size-1: with a prime table size, walks every slot once
  uint64_t next = 0;  // position in this backend's preference list
  uint64_t credit = 0;
};

}  // namespace

absl::Status ValidateMaglevTableSize(uint32_t table_size) {
  if (!weir_is_prime(table_size)) {
    return absl::InvalidArgumentError(absl::StrCat("Maglev table size ", table_size, " is not prime"));
  }
  if (table_size > WEIR_MAGLEV_MAX_SIZE) {
    return absl::InvalidArgumentError(
        absl::StrCat("Maglev table size ", table_size, " exceeds ", WEIR_MAGLEV_MAX_SIZE));
  }
  return absl::OkStatus();
}

std::vector<uint32_t> BuildMaglevTable(const std::vector<MaglevBackend>& backends, uint32_t table_size) {
  if (!ValidateMaglevTableSize(table_size).ok()) return {};

  // Ties in the fill are won by the earlier backend, so a canonical order makes the table a
  // function of the set alone.
  std::vector<const MaglevBackend*> sorted;
  for (const MaglevBackend& backend : backends) {
    if (backend.weight > 0) sorted.push_back(&backend);
  }
  if (sorted.empty()) return {};
  std::sort(sorted.begin(), sorted.end(), [](const MaglevBackend* a, const MaglevBackend* b) {
    return std::tie(a->name, a->weight, a->id) < std::tie(b->name, b->weight, b->id);
  });

  uint32_t max_weight = 0;
  std::vector<Permutation> permutations;
  permutations.reserve(sorted.size());
  for (const MaglevBackend* backend : sorted) {
    Permutation p;
    p.id = backend->id;
    p.weight = backend->weight;
    p.offset = MurmurHash3X64_128(backend->name, kOffsetSeed).low % table_size;
    p.skip = MurmurHash3X64_128(backend->name, kSkipSeed).low % (table_size - 1) + 1;
    permutations.push_back(p);
    max_weight = std::max(max_weight, backend->weight);
  }

  std::vector<uint32_t> table(table_size, 0);
  std::vector<bool> taken(table_size, false);
  uint32_t filled = 0;
  // Each round every backend earns credit in proportion to its weight and claims its next
  // preferred free slot per max_weight of credit: equal weights give the paper's round robin.
  while (true) {
    for (Permutation& p : permutations) {
      p.credit += p.weight;
      if (p.credit < max_weight) continue;
      p.credit -= max_weight;
      uint64_t slot = (p.offset + p.next * p.skip) % table_size;
      while (taken[slot]) {
        ++p.next;
        slot = (p.offset + p.next * p.skip) % table_size;
      }
      taken[slot] = true;
      table[slot] = p.id;
      ++p.next;
      if (++filled == table_size) return table;
    }
  }
}

}  // namespace weir::lb
