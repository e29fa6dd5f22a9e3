#include "proxy/agent/masquerade.h"

namespace weir::agent {

sync::CidrKinds NonMasqueradeCidrs(const NonMasqueradeInputs& inputs) {
  using sync::CidrKind;
  sync::CidrKinds cidrs;
  auto add_kind = [&](const IpPrefix& cidr, CidrKind kind) {
    CidrKind& slot = cidrs.try_emplace(cidr.Network(), kind).first->second;
    slot = sync::StrongerKind(slot, kind);
  };
  auto add = [&](const IpPrefix& cidr) { add_kind(cidr, CidrKind::kInCluster); };
  auto add_pods = [&](const IpPrefix& cidr) { add_kind(cidr, CidrKind::kPods); };
  auto add_host = [&](const IpAddress& address) {
    add_kind(IpPrefix(address, address.bit_length()), CidrKind::kNode);
  };
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
