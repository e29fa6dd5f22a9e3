#include "proxy/agent/node_routes.h"

#include <algorithm>
#include <set>

#include "spdlog/spdlog.h"

namespace weir::agent {
namespace {

std::optional<IpAddress> AddressOfFamily(const k8s::Node& node, IpFamily family) {
  for (const char* type : {"InternalIP", "ExternalIP"}) {
    for (const k8s::NodeAddress& address : node.addresses) {
      if (address.type == type && address.ip && address.ip->family() == family) return address.ip;
    }
  }
  return std::nullopt;
}

RouteSpec SpecOf(const NodeRoute& route) {
  return RouteSpec{.destination = route.pod_cidr, .gateway = route.via, .protocol = kWeirRouteProtocol};
}

}  // namespace

std::vector<NodeRoute> DesiredNodeRoutes(const std::vector<k8s::Node>& nodes, const std::string& self) {
  std::vector<NodeRoute> routes;
  for (const k8s::Node& node : nodes) {
    if (node.metadata.name == self) continue;
    for (const IpPrefix& cidr : node.pod_cidrs) {
      if (auto via = AddressOfFamily(node, cidr.family())) routes.push_back({cidr.Network(), *via});
    }
  }
  std::sort(routes.begin(), routes.end());
  routes.erase(std::unique(routes.begin(), routes.end()), routes.end());
  return routes;
}

absl::StatusOr<NodeRouteChanges> SyncNodeRoutes(Netlink& netlink, const std::vector<NodeRoute>& desired) {
  std::set<NodeRoute> wanted(desired.begin(), desired.end());
  std::set<NodeRoute> present;
  NodeRouteChanges changes;
  absl::Status result;
  for (IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
    auto routes = netlink.ListRoutes(0, family);
    if (!routes.ok()) return routes.status();
    for (const RouteSpec& route : *routes) {
      if (route.protocol != kWeirRouteProtocol || !route.gateway) continue;
      NodeRoute existing{route.destination, *route.gateway};
      if (wanted.count(existing)) {
        present.insert(existing);
        continue;
      }
      absl::Status removed = netlink.DeleteRoute(route);
      if (removed.ok()) ++changes.removed;
      result.Update(removed);
    }
  }
  for (const NodeRoute& route : wanted) {
    if (present.count(route)) continue;
    absl::Status added = netlink.AddRoute(SpecOf(route));
    if (absl::IsAlreadyExists(added)) {
      // Someone else's route to the same CIDR: theirs stays, and so does the conflict in the log.
      spdlog::warn("route to {} exists and is not weir's; leaving it", route.pod_cidr.ToString());
      continue;
    }
    if (added.ok()) ++changes.added;
    result.Update(added);
  }
  if (!result.ok()) return result;
  return changes;
}

std::vector<IpPrefix> PodCidrsOf(const std::vector<k8s::Node>& nodes, const std::string& self) {
  for (const k8s::Node& node : nodes) {
    if (node.metadata.name == self) return node.pod_cidrs;
  }
  return {};
}

}  // namespace weir::agent
