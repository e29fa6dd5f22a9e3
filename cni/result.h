// The CNI Result object (ADD output, prevResult, delegated IPAM output) and its versioned JSON form.
#pragma once

#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "lib/ip.h"
#include "rapidjson/document.h"

namespace weir::cni {

struct Dns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;

  bool empty() const { return nameservers.empty() && domain.empty() && search.empty() && options.empty(); }
  bool operator==(const Dns&) const = default;
};

struct Interface {
  std::string name;
  std::string mac;          // empty: omitted
  int mtu = 0;              // 0: omitted; only serialized for 1.1.0+
  std::string sandbox;      // netns path for container-side interfaces, empty for host-side ones
  std::string socket_path;  // 1.1.0+, empty: omitted
  std::string pci_id;       // 1.1.0+, empty: omitted

  bool operator==(const Interface&) const = default;
};

struct IpConfig {
  // Address with its prefix length, host bits kept: 10.244.1.5/24.
  IpPrefix address;
  std::optional<IpAddress> gateway;
  // Index into Result::interfaces. IPAM plugins leave it unset.
  std::optional<int> interface;

  bool operator==(const IpConfig&) const = default;
};

struct Route {
  IpPrefix dst;
  std::optional<IpAddress> gw;
  // The following are 1.1.0 additions, serialized only for 1.1.0+; 0 / nullopt means "omitted".
  int mtu = 0;
  int advmss = 0;
  std::optional<int> priority;
  std::optional<int> table;
  std::optional<int> scope;

  bool operator==(const Route&) const = default;
};

struct Result {
  // The version the result was parsed from (informational; serialization takes its own version).
  std::string cni_version;
  std::vector<Interface> interfaces;
  std::vector<IpConfig> ips;
  std::vector<Route> routes;
  Dns dns;

  bool operator==(const Result&) const = default;
};

// Serializes `result` in the shape of `cni_version`:
//   0.3.x / 0.4.0: ips carry "version": "4"/"6";
//   1.0.0: no "version";
//   1.1.0+: adds interface mtu/socketPath/pciID and route mtu/advmss/priority/table/scope.
// Empty lists, empty dns and unset optional fields are omitted.
std::string ResultJson(const Result& result, absl::string_view cni_version);

// Parses a result of any supported version (the "version" field of pre-1.0 ips is checked against
// the address family, then dropped). Failures are CniCode::kDecodeFailure.
absl::StatusOr<Result> ParseResult(absl::string_view json);
// Same, from an already parsed value; `path` prefixes error messages (e.g. "prevResult").
absl::StatusOr<Result> ResultFromJson(const rapidjson::Value& value, absl::string_view path);

// Parses a DNS object ({"nameservers", "domain", "search", "options"}).
absl::StatusOr<Dns> DnsFromJson(const rapidjson::Value& value, absl::string_view path);

}  // namespace weir::cni
