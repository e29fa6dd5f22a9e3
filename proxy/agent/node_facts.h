// What an agent must know about its own node before it loads the datapath: the addresses it serves
// NodePorts on and SNATs from, the uplink devices, the MTU pods get and its pod CIDRs. In a cluster
// they come from the node's own Node object and interfaces, so that one ConfigMap serves every
// node; settings override each of them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/ip.h"
#include "lib/netlink.h"
#include "proxy/k8s/objects.h"

namespace weir::agent {

struct NodeFacts {
  std::vector<IpAddress> addresses;  // at most one per family, InternalIP first
  std::vector<std::string> uplinks;
  uint32_t mtu = 0;
  std::vector<IpPrefix> pod_cidrs;
};

// The node's InternalIP addresses (ExternalIP where a family has none), one per family, in the
// order the Node lists them.
std::vector<IpAddress> NodeAddressesOf(const k8s::Node& node);

// The interfaces and routes of the node's own network namespace, as read once.
struct InterfaceView {
  std::vector<LinkInfo> links;
  std::vector<std::pair<int, IpPrefix>> addresses;  // (ifindex, address/prefix)
  std::vector<RouteSpec> routes;                    // main table, both families
};
absl::StatusOr<InterfaceView> ReadInterfaces(Netlink& netlink);

// The device that carries traffic to the other nodes: the device of the longest-prefix route to
// each peer address (the most common one wins), else the device holding one of `own` addresses,
// else the device of the default route. NotFound when none applies.
absl::StatusOr<std::string> ChooseUplink(const InterfaceView& view, const std::vector<IpAddress>& own,
                                         const std::vector<IpAddress>& peers);

// Fills what `configured` leaves empty from `self` (this node's Node, if known), the other nodes and
// the interfaces. Fails when addresses or an uplink can be found nowhere.
absl::StatusOr<NodeFacts> DiscoverNodeFacts(const NodeFacts& configured, const k8s::Node* self,
                                            const std::vector<k8s::Node>& nodes, const InterfaceView& view);

}  // namespace weir::agent
