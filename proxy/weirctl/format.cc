#include "proxy/weirctl/format.h"

#include <arpa/inet.h>

#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bpf/abi/conntrack.h"
#include "bpf/abi/service.h"
#include "proxy/lb/dump.h"

namespace weir::weirctl {
namespace {

uint64_t ClockNs(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(now.tv_nsec);
}

struct FlagName {
  uint32_t bit;
  const char* name;
};

std::vector<std::string> FlagList(uint32_t flags, std::initializer_list<FlagName> names) {
  std::vector<std::string> list;
  uint32_t known = 0;
  for (const FlagName& flag : names) {
    known |= flag.bit;
    if (flags & flag.bit) list.push_back(flag.name);
  }
  if (const uint32_t unknown = flags & ~known; unknown != 0) list.push_back(absl::StrFormat("0x%x", unknown));
  return list;
}

}  // namespace

std::optional<IpAddress> AddressOf(const weir_addr& addr, uint8_t family) {
  if (family == WEIR_FAMILY_IPV4) return IpAddress::FromBytes(IpFamily::kV4, addr.bytes);
  if (family == WEIR_FAMILY_IPV6) return IpAddress::FromBytes(IpFamily::kV6, addr.bytes);
  return std::nullopt;
}

std::string FormatAddressPort(const weir_addr& addr, uint8_t family, uint16_t port_be) {
  std::optional<IpAddress> address = AddressOf(addr, family);
  if (!address.has_value()) return absl::StrCat("<family ", family, ">:", ntohs(port_be));
  return lb::FormatAddressPort(*address, ntohs(port_be));
}

std::string FormatAddress(const weir_addr& addr, uint8_t family) {
  std::optional<IpAddress> address = AddressOf(addr, family);
  return address.has_value() ? address->ToString() : absl::StrCat("<family ", family, ">");
}

std::string FamilyName(uint8_t family) {
  switch (family) {
    case WEIR_FAMILY_IPV4: return "ipv4";
    case WEIR_FAMILY_IPV6: return "ipv6";
    default: return absl::StrCat("family-", family);
  }
}

std::string ProtoName(uint8_t proto) {
  switch (proto) {
    case WEIR_PROTO_TCP: return "TCP";
    case WEIR_PROTO_UDP: return "UDP";
    case WEIR_PROTO_SCTP: return "SCTP";
    default: return absl::StrCat("proto-", proto);
  }
}

std::string ScopeName(uint8_t scope) {
  switch (scope) {
    case WEIR_SCOPE_EXTERNAL: return "external";
    case WEIR_SCOPE_INTERNAL: return "internal";
    default: return absl::StrCat("scope-", scope);
  }
}

void WriteAddressPort(Json& json, const weir_addr& addr, uint8_t family, uint16_t port_be) {
  json.StartObject();
  json.Key("address");
  json.String(FormatAddress(addr, family));
  json.Key("port");
  json.Uint(ntohs(port_be));
  json.EndObject();
}

uint64_t SecondsSince(uint64_t stamp_ns, uint64_t now_ns) {
  return now_ns > stamp_ns ? (now_ns - stamp_ns) / 1'000'000'000ull : 0;
}

std::string FormatUnixTime(uint64_t unix_ns) {
  const time_t seconds = static_cast<time_t>(unix_ns / 1'000'000'000ull);
  tm utc{};
  gmtime_r(&seconds, &utc);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                         utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(unix_ns % 1'000'000'000ull));
}

uint64_t MonotonicToUnixNs(uint64_t monotonic_ns) {
  // Read once: the offset between the clocks only moves when the wall clock is set.
  static const int64_t offset =
      static_cast<int64_t>(ClockNs(CLOCK_REALTIME)) - static_cast<int64_t>(ClockNs(CLOCK_MONOTONIC));
  return static_cast<uint64_t>(static_cast<int64_t>(monotonic_ns) + offset);
}

std::vector<std::string> BackendFlagList(uint16_t flags) {
  return FlagList(flags, {{WEIR_BACKEND_LOCAL, "local"}, {WEIR_BACKEND_TERMINATING, "terminating"}});
}

std::vector<std::string> ConntrackFlagList(uint8_t flags) {
  return FlagList(flags, {{WEIR_CT_SNAT, "snat"},
                          {WEIR_CT_DSR, "dsr"},
                          {WEIR_CT_SEEN_REPLY, "seen-reply"},
                          {WEIR_CT_CLOSING, "closing"},
                          {WEIR_CT_MASQ, "masq"},
                          {WEIR_CT_INBOUND, "inbound"}});
}

std::string ConntrackKindName(uint8_t kind) {
  switch (kind) {
    case WEIR_CT_FORWARD: return "forward";
    case WEIR_CT_REPLY: return "reply";
    default: return absl::StrCat("kind-", kind);
  }
}

std::string JoinFlags(const std::vector<std::string>& flags) { return flags.empty() ? "-" : absl::StrJoin(flags, ","); }

}  // namespace weir::weirctl
