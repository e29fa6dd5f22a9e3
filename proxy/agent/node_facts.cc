#include "proxy/agent/node_facts.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weir::agent {
namespace {

const LinkInfo* LinkByIndex(const InterfaceView& view, int ifindex) {
  for (const LinkInfo& link : view.links) {
    if (link.index == ifindex) return &link;
  }
  return nullptr;
}

const LinkInfo* LinkByName(const InterfaceView& view, const std::string& name) {
  for (const LinkInfo& link : view.links) {
    if (link.name == name) return &link;
  }
  return nullptr;
}

// The output device of the longest-prefix main-table route to `destination`; 0 when none.
int RouteDevice(const InterfaceView& view, const IpAddress& destination) {
  int best_device = 0;
  int best_length = -1;
  for (const RouteSpec& route : view.routes) {
    if (route.output_ifindex == 0 || !route.destination.Contains(destination)) continue;
    if (route.destination.length() > best_length) {
      best_length = route.destination.length();
      best_device = route.output_ifindex;
    }
  }
  return best_device;
}

}  // namespace

std::vector<IpAddress> NodeAddressesOf(const k8s::Node& node) {
  std::vector<IpAddress> chosen;
  for (const char* type : {"InternalIP", "ExternalIP"}) {
    for (const k8s::NodeAddress& address : node.addresses) {
      if (address.type != type || !address.ip) continue;
      bool family_taken = std::any_of(chosen.begin(), chosen.end(),
                                      [&](const IpAddress& a) { return a.is_v4() == address.ip->is_v4(); });
      if (!family_taken) chosen.push_back(*address.ip);
    }
  }
  return chosen;
}

absl::StatusOr<InterfaceView> ReadInterfaces(Netlink& netlink) {
  InterfaceView view;
  auto links = netlink.ListLinks();
  if (!links.ok()) return links.status();
  view.links = std::move(*links);
  for (const LinkInfo& link : view.links) {
    auto addresses = netlink.ListAddresses(link.index);
    if (!addresses.ok()) return addresses.status();
    for (const IpPrefix& address : *addresses) view.addresses.emplace_back(link.index, address);
  }
  for (IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
    auto routes = netlink.ListRoutes(0, family);
    if (!routes.ok()) return routes.status();
    view.routes.insert(view.routes.end(), routes->begin(), routes->end());
  }
  return view;
}

absl::StatusOr<std::string> ChooseUplink(const InterfaceView& view, const std::vector<IpAddress>& own,
                                         const std::vector<IpAddress>& peers) {
  std::map<int, int> votes;
  for (const IpAddress& peer : peers) {
    if (int device = RouteDevice(view, peer); device != 0) votes[device]++;
  }
  int device = 0;
  int most = 0;
  for (const auto& [ifindex, count] : votes) {
    if (count > most) device = ifindex, most = count;
  }
  if (device == 0) {
    for (const auto& [ifindex, prefix] : view.addresses) {
      if (std::find(own.begin(), own.end(), prefix.address()) != own.end()) {
        device = ifindex;
        break;
      }
    }
  }
  if (device == 0) {
    for (const RouteSpec& route : view.routes) {
      if (route.destination.length() == 0 && route.output_ifindex != 0) {
        device = route.output_ifindex;
        break;
      }
    }
  }
  const LinkInfo* link = device == 0 ? nullptr : LinkByIndex(view, device);
  if (link == nullptr || link->name == "lo") {
    return absl::NotFoundError(
        "no uplink: no route to the other nodes, no device with this node's address "
        "and no default route (set `uplinks`)");
  }
  return link->name;
}

absl::StatusOr<NodeFacts> DiscoverNodeFacts(const NodeFacts& configured, const k8s::Node* self,
                                            const std::vector<k8s::Node>& nodes, const InterfaceView& view) {
  NodeFacts facts = configured;
  if (facts.addresses.empty() && self != nullptr) facts.addresses = NodeAddressesOf(*self);
  if (facts.addresses.empty()) {
    return absl::NotFoundError(
        self == nullptr ? "node addresses unknown: no Node object for this node (set `nodeAddresses`)"
                        : absl::StrCat("Node ", self->metadata.name,
                                       " lists no InternalIP or ExternalIP (set `nodeAddresses`)"));
  }
  if (facts.pod_cidrs.empty() && self != nullptr) facts.pod_cidrs = self->pod_cidrs;
  if (facts.uplinks.empty()) {
    std::vector<IpAddress> peers;
    for (const k8s::Node& node : nodes) {
      if (self != nullptr && node.metadata.name == self->metadata.name) continue;
      for (const IpAddress& address : NodeAddressesOf(node)) peers.push_back(address);
    }
    auto uplink = ChooseUplink(view, facts.addresses, peers);
    if (!uplink.ok()) return uplink.status();
    facts.uplinks = {*uplink};
  }
  if (facts.mtu == 0) {
    const LinkInfo* link = LinkByName(view, facts.uplinks.front());
    if (link == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "uplink ", facts.uplinks.front(), " not found; devices here: ",
          absl::StrJoin(view.links, ", ", [](std::string* out, const LinkInfo& l) { out->append(l.name); })));
    }
    facts.mtu = link->mtu;
  }
  return facts;
}

}  // namespace weir::agent
