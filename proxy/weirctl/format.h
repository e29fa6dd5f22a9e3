// Text forms of the datapath's ABI values, shared by every command so that a protocol, a flag or
// an address reads the same in every table and JSON document.
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

std::optional<IpAddress> AddressOf(const weir_addr& addr, uint8_t family);
// "10.0.0.1:80", "[fd00::1]:80"; `port` in network byte order.
std::string FormatAddressPort(const weir_addr& addr, uint8_t family, uint16_t port_be);
std::string FormatAddress(const weir_addr& addr, uint8_t family);
// "ipv4", "ipv6".
std::string FamilyName(uint8_t family);
// "TCP", "UDP", "SCTP", "proto-N".
std::string ProtoName(uint8_t proto);
// "external", "internal".
std::string ScopeName(uint8_t scope);

// {"address": "10.0.0.1", "port": 80}; `port` in network byte order.
void WriteAddressPort(Json& json, const weir_addr& addr, uint8_t family, uint16_t port_be);

// Whole seconds since a bpf_ktime_get_ns() stamp; an entry touched after we read the clock is 0 s old.
uint64_t SecondsSince(uint64_t stamp_ns, uint64_t now_ns);

// RFC 3339 in UTC with nanoseconds: "2026-12-04T17:31:02.123456789Z".
std::string FormatUnixTime(uint64_t unix_ns);
// The same time as a bpf_ktime_get_ns() stamp (CLOCK_MONOTONIC), as Unix time.
uint64_t MonotonicToUnixNs(uint64_t monotonic_ns);

// Backend flags ("local", "terminating"), conntrack flags ("snat", "dsr", ...); unknown bits in hex.
std::vector<std::string> BackendFlagList(uint16_t flags);
std::vector<std::string> ConntrackFlagList(uint8_t flags);
// "forward", "reply".
std::string ConntrackKindName(uint8_t kind);
// Comma-joined, "-" for none: the table form of a flag list.
std::string JoinFlags(const std::vector<std::string>& flags);

// A sort key for (family, address, host-order port): numeric order, IPv4 before IPv6.
inline auto AddressPortOrder(const weir_addr& addr, uint8_t family, uint16_t port_be) {
  std::array<uint8_t, 16> bytes{};
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = addr.bytes[i];
  return std::make_tuple(family, bytes, static_cast<uint16_t>(ntohs(port_be)));
}

}  // namespace weir::weirctl
