// Native routing between nodes: a route to every other node's pod CIDRs via that node's address,
// marked with weir's own route protocol so that only weir's routes are ever changed or removed.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "lib/ip.h"
#include "lib/netlink.h"
#include "proxy/k8s/objects.h"

namespace weir::agent {

// rtm_protocol of the routes weir manages (values above RTPROT_STATIC are free for daemons).
inline constexpr uint8_t kWeirRouteProtocol = 87;

struct NodeRoute {
  IpPrefix pod_cidr;
  IpAddress via;
  auto operator<=>(const NodeRoute&) const = default;
};

// Routes to the pod CIDRs of every node but `self`, via its first InternalIP of the CIDR's family
// (ExternalIP when it has none). Nodes without an address of the family are skipped.
std::vector<NodeRoute> DesiredNodeRoutes(const std::vector<k8s::Node>& nodes, const std::string& self);

struct NodeRouteChanges {
  size_t added = 0;
  size_t removed = 0;
};

// Makes the main table hold exactly `desired` among weir's routes: adds what is missing, removes
// weir's routes that are no longer desired, leaves every other route alone.
absl::StatusOr<NodeRouteChanges> SyncNodeRoutes(Netlink& netlink, const std::vector<NodeRoute>& desired);

// This node's pod CIDRs, for the CNI configuration's built-in IPAM.
std::vector<IpPrefix> PodCidrsOf(const std::vector<k8s::Node>& nodes, const std::string& self);

}  // namespace weir::agent
