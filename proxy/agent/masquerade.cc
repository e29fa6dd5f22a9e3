#include "proxy/agent/masquerade.h"

#include <set>

namespace weir::agent {

std::vector<IpPrefix> NonMasqueradeCidrs(const NonMasqueradeInputs& inputs) {
  std::set<IpPrefix> cidrs;
  auto add_host = [&](const IpAddress& address) { cidrs.insert(IpPrefix(address, address.bit_length())); };
  for (const k8s::Node& node : inputs.nodes) {
    for (const IpPrefix& cidr : node.pod_cidrs) cidrs.insert(cidr.Network());
    for (const k8s::NodeAddress& address : node.addresses) {
      if (address.ip) add_host(*address.ip);
    }
  }
  for (const IpPrefix& cidr : inputs.own_pod_cidrs) cidrs.insert(cidr.Network());
  for (const IpAddress& address : inputs.own_addresses) add_host(address);
  for (const IpPrefix& cidr : inputs.configured) cidrs.insert(cidr.Network());
  return {cidrs.begin(), cidrs.end()};
}

}  // namespace weir::agent
