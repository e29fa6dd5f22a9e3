// Carrying a pinned map's entries into a map of a new definition (lib/map_adoption.h decides how).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>

#include "absl/status/statusor.h"
#include "lib/bpf_map.h"
#include "lib/map_adoption.h"

namespace weir {

// The shape the kernel reports for an open map, with the layout version it is known to have.
MapShape ShapeOf(const UntypedBpfMap& map, uint32_t layout);

// The keys a migration has carried into the new map so far.
using CopiedKeys = std::unordered_set<std::string>;

enum class CopyMode {
  kAll,  // every entry (the new map is empty)
  // Only keys no earlier copy carried, overwriting: an entry the new map has for such a key was
  // made by a new program for a packet of a flow an old program had started, and the old entry is
  // that flow's. Keys carried before keep what the new programs wrote since (newer).
  kNew,
};

struct CopyCounts {
  uint64_t read = 0;
  uint64_t written = 0;
  uint64_t dropped = 0;        // no equivalent in the new layout, or beyond a smaller array
  uint64_t copied_before = 0;  // kNew: carried by an earlier copy
};

// Copies (converting per `plan`) the entries of `from` into `to`. An LRU map with a list per CPU
// (BPF_F_NO_COMMON_LRU) takes an entry into the list of the CPU that inserts it, and one CPU's list
// holds max_entries / possible CPUs before it evicts: such a copy writes from every CPU this thread
// may run on in turn. A hash map without LRU that fills up is an error naming the map: its entries
// do not fit the new size. `copied` gets every key written (kNew skips what it holds).
absl::StatusOr<CopyCounts> CopyEntries(const UntypedBpfMap& from, const MapShape& from_shape,
                                       const UntypedBpfMap& to, const MapShape& to_shape,
                                       const AdoptionPlan& plan, CopyMode mode, CopiedKeys& copied);

}  // namespace weir
