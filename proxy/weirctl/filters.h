// The filter flags of weirctl: which flows a command shows. Every flag given must match; --addr and
// --port match either side of a flow (and the backend a flow was translated to).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bpf/abi/endpoint.h"
#include "lib/ip.h"
#include "proxy/weirctl/service_directory.h"

namespace weir::weirctl {

// The flags as given (empty: not given).
struct FilterFlags {
  std::string addr;
  std::string port;
  std::string proto;
  std::string service;
  std::string type;     // comma-separated
  std::string verdict;  // comma-separated
};

// One address:port of a flow. `port_be` in network byte order.
struct FlowSide {
  weir_addr addr;
  uint8_t family = 0;
  uint16_t port_be = 0;
};

struct FlowFilter {
  std::optional<IpPrefix> address;  // an address is a /32 or /128
  std::optional<uint16_t> port;
  std::optional<uint8_t> proto;
  // "namespace/name" (any port), "namespace/name:port", or a service id.
  std::optional<std::string> service;
  std::set<std::string> types;
  std::set<std::string> verdicts;

  bool empty() const { return !address && !port && !proto && !service && types.empty() && verdicts.empty(); }
  bool MatchesProto(uint8_t value) const { return !proto || *proto == value; }
  // Address and port each match when any side has them.
  bool MatchesSides(const std::vector<FlowSide>& sides) const;
  bool MatchesService(uint32_t service_id, const ServiceDirectory& names) const;
  bool MatchesType(const std::string& type) const { return types.empty() || types.contains(type); }
  bool MatchesVerdict(const std::string& verdict) const {
    return verdicts.empty() || verdicts.contains(verdict);
  }
};

// Checks each flag's syntax; names of flags in errors as the user typed them.
absl::StatusOr<FlowFilter> ParseFilter(const FilterFlags& flags);

}  // namespace weir::weirctl
