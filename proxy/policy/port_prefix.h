// Port ranges as prefixes, for a datapath that matches ports with a longest-prefix-match key (as
// addresses are matched) instead of one entry per port: an endPort range of 32768 ports costs at
// most 2 * 16 - 2 entries.
#pragma once

#include <cstdint>
#include <vector>

namespace weir::policy {

// The ports whose top `length` bits equal those of `port` (its other bits are zero): length 16 is
// one port, length 0 every port.
struct PortPrefix {
  uint16_t port = 0;
  uint8_t length = 16;
  auto operator<=>(const PortPrefix&) const = default;
};

// The fewest prefixes that together cover exactly first..last (inclusive), in port order; empty
// when first > last. Never more than 30.
std::vector<PortPrefix> PortRangeToPrefixes(uint16_t first, uint16_t last);

}  // namespace weir::policy
