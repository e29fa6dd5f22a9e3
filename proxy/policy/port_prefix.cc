#include "proxy/policy/port_prefix.h"

namespace weir::policy {

std::vector<PortPrefix> PortRangeToPrefixes(uint16_t first, uint16_t last) {
  std::vector<PortPrefix> prefixes;
  // 32 bits so that stepping past 65535 ends the loop instead of wrapping.
  uint32_t next = first;
  while (next <= last) {
    // The largest aligned block starting at `next` that does not pass `last`.
    int host_bits = 0;
    while (host_bits < 16) {
      const uint32_t size = uint32_t{1} << (host_bits + 1);
      if (next % size != 0 || next + size - 1 > last) break;
      ++host_bits;
    }
    prefixes.push_back({static_cast<uint16_t>(next), static_cast<uint8_t>(16 - host_bits)});
    next += uint32_t{1} << host_bits;
  }
  return prefixes;
}

}  // namespace weir::policy
