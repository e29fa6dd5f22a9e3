#include "proxy/agent/masquerade.h"

namespace weir::agent {

sync::CidrKinds NonMasqueradeCidrs(const NonMasqueradeInputs& inputs) {
  using sync::CidrKind;
  sync::CidrKinds cidrs;
  // In-cluster entries never overwrite a pod CIDR's kind.
  auto add = [&](const IpPrefix& cidr) { cidrs.try_emplace(cidr.Network(), CidrKind::kInCluster); };
  auto add_pods = [&](const IpPrefix& cidr) { cidrs[cidr.Network()] = CidrKind::kPods; };
  auto add_host = [&](const IpAddress& address) { add(IpPrefix(address, address.bit_length())); };
  for (const k8s::Node& node : inputs.nodes) {
    for (const IpPrefix& cidr : node.pod_cidrs) add_pods(cidr);
    for (const k8s::NodeAddress& address : node.addresses) {
      if (address.ip) add_host(*address.ip);
    }
  }
  for (const IpPrefix& cidr : inputs.own_pod_cidrs) add_pods(cidr);
  for (const IpAddress& address : inputs.own_addresses) add_host(address);
  for (const IpPrefix& cidr : inputs.configured) add(cidr);
  return cidrs;
}

}  // namespace weir::agent
