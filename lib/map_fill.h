// How full each of weir's pinned maps is: what an operator watches before a map overflows (a full
// conntrack or services map drops new flows). Read from the bpffs, so the agent's metrics and
// weirctl see the same numbers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace weir {

struct MapFill {
  std::string name;       // the pin's file name, which is the map's name
  uint32_t entries = 0;   // arrays count as full: every slot exists
  uint32_t capacity = 0;  // max_entries
};

// Every map pinned directly in `pin_root` (programs and links live in subdirectories), sorted by
// name. Ring buffers have no entries to count and are left out. Counting a hash map reads all of it
// (UntypedBpfMap::Count): call it at a collection interval, not per packet or per scrape.
absl::StatusOr<std::vector<MapFill>> ReadMapFill(const std::string& pin_root);

}  // namespace weir
