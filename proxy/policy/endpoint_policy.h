// What the policy computation produces for one endpoint (a pod on this node): per direction,
// whether it is isolated and, if so, the traffic allowed. The datapath turns this into map entries;
// these types stay close to the API so that a dump reads like the policies it came from.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lib/ip.h"
#include "lib/l4_proto.h"
#include "proxy/policy/identity.h"

namespace weir::policy {

// A namespaced object's name: pods (endpoints) and policies.
struct ObjectRef {
  std::string namespace_;
  std::string name;
  auto operator<=>(const ObjectRef&) const = default;
  std::string ToString() const { return namespace_ + "/" + name; }
};

enum class PeerKind : uint8_t {
  kAny,       // every address (empty from/to)
  kIdentity,  // the addresses the LPM map gives `identity`
  kCidr,      // ipBlock: an address inside cidr and inside none of except, whatever its identity
  kAddress,   // one pod address (cidr is a /32 or /128): a named port resolved on that pod alone
};

struct Peer {
  PeerKind kind = PeerKind::kAny;
  Identity identity = kIdentityUnknown;  // kIdentity
  IpPrefix cidr;                         // kCidr, kAddress
  std::vector<IpPrefix> except;          // kCidr
  auto operator<=>(const Peer&) const = default;
};

// Inclusive; 0-65535 is every port.
struct PortRange {
  uint16_t first = 0;
  uint16_t last = 65535;
  auto operator<=>(const PortRange&) const = default;
  bool all() const { return first == 0 && last == 65535; }
};

// Traffic with `peer` on `protocol` (nullopt: every protocol, ICMP included) to ports in `ports`
// (the endpoint's port for ingress, the peer's for egress).
struct AllowEntry {
  Peer peer;
  std::optional<L4Proto> protocol;
  PortRange ports;
  auto operator<=>(const AllowEntry&) const = default;
};

struct DirectionPolicy {
  // False: no policy of this direction selects the endpoint, everything passes and `allowed` is
  // empty. True: only `allowed` passes (empty: nothing).
  bool isolated = false;
  std::vector<ObjectRef> policies;  // the policies that isolate it, in name order
  std::set<AllowEntry> allowed;
  bool operator==(const DirectionPolicy&) const = default;
};

struct EndpointPolicy {
  Identity identity = kIdentityUnknown;
  std::vector<IpAddress> addresses;
  DirectionPolicy ingress;
  DirectionPolicy egress;
  bool operator==(const EndpointPolicy&) const = default;
};

}  // namespace weir::policy
