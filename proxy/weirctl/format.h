// What weirctl's commands share in their output beside the ABI's own text forms (lib/abi_codec.h):
// JSON addresses, times and flag lists.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bpf/abi/endpoint.h"
#include "lib/ip.h"
#include "proxy/weirctl/output.h"

namespace weir::weirctl {

// {"address": "10.0.0.1", "port": 80}; `port` in network byte order.
void WriteAddressPort(Json& json, const weir_addr& addr, uint8_t family, uint16_t port_be);

// Whole seconds since a bpf_ktime_get_ns() stamp; an entry touched after we read the clock is 0 s old.
uint64_t SecondsSince(uint64_t stamp_ns, uint64_t now_ns);

// RFC 3339 in UTC with nanoseconds: "2026-12-04T17:31:02.123456789Z".
std::string FormatUnixTime(uint64_t unix_ns);
// The same time as a bpf_ktime_get_ns() stamp (CLOCK_MONOTONIC), as Unix time.
uint64_t MonotonicToUnixNs(uint64_t monotonic_ns);

// Comma-joined, "-" for none: the table form of a flag list.
std::string JoinFlags(const std::vector<std::string>& flags);

// A sort key for (family, address, host-order port): numeric order, IPv4 before IPv6.
inline auto AddressPortOrder(const weir_addr& addr, uint8_t family, uint16_t port_be) {
  std::array<uint8_t, 16> bytes{};
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = addr.bytes[i];
  return std::make_tuple(family, bytes, static_cast<uint16_t>(ntohs(port_be)));
}

}  // namespace weir::weirctl
