#include "proxy/policy/compute.h"

#include <algorithm>

#include "proxy/policy/label_selector.h"

namespace weir::policy {
namespace {

// A ports[] element, or the "every port of every protocol" an empty ports list means.
struct PortSpec {
  std::optional<L4Proto> protocol;
  std::optional<uint16_t> number;
  std::optional<uint16_t> end;
  std::string name;
};

std::vector<PortSpec> PortSpecsOf(const k8s::NetworkPolicyRule& rule) {
  if (rule.ports.empty()) return {PortSpec{}};
  std::vector<PortSpec> specs;
  for (const k8s::NetworkPolicyPort& port : rule.ports) {
    PortSpec spec{.protocol = port.protocol, .number = std::nullopt, .end = port.end_port, .name = ""};
    if (port.port && port.port->name.empty()) spec.number = port.port->number;
    if (port.port && !port.port->name.empty()) spec.name = port.port->name;
    specs.push_back(std::move(spec));
  }
  return specs;
}

// The number `name` has on `pod` for `protocol`: the first container port with both, as kubelet
// and kube-proxy resolve names (the API keeps names unique only within a container).
std::optional<uint16_t> ResolveNamedPort(const k8s::Pod& pod, const std::string& name, L4Proto protocol) {
  for (const k8s::ContainerPort& port : pod.ports) {
    if (port.name == name && port.protocol == protocol) return port.container_port;
  }
  return std::nullopt;
}

IpPrefix HostPrefix(const IpAddress& address) { return IpPrefix(address, address.bit_length()); }

bool BlockContains(const k8s::IpBlock& block, const IpAddress& address) {
  if (block.cidr.family() != address.family() || !block.cidr.Contains(address)) return false;
  return std::none_of(block.except.begin(), block.except.end(),
                      [&](const IpPrefix& except) { return except.Contains(address); });
}

class RuleCollector {
 public:
  RuleCollector(const ClusterState& state, const PodState& endpoint, const k8s::NetworkPolicy& policy,
                DirectionPolicy& out)
      : state_(state), endpoint_(endpoint), policy_(policy), out_(out) {}

  void Ingress(const k8s::NetworkPolicyRule& rule) {
    for (const PortSpec& spec : PortSpecsOf(rule)) {
      if (spec.name.empty()) {
        AddPeers(rule, spec.protocol, RangeOf(spec));
      } else if (std::optional<uint16_t> number =
                     ResolveNamedPort(endpoint_.pod, spec.name, *spec.protocol)) {
        AddPeers(rule, spec.protocol, {*number, *number});
      }
    }
  }

  void Egress(const k8s::NetworkPolicyRule& rule) {
    for (const PortSpec& spec : PortSpecsOf(rule)) {
      if (spec.name.empty()) {
        AddPeers(rule, spec.protocol, RangeOf(spec));
      } else {
        AddNamedDestinations(rule, spec);
      }
    }
  }

 private:
  static PortRange RangeOf(const PortSpec& spec) {
    if (!spec.number) return {};
    return {*spec.number, spec.end.value_or(*spec.number)};
  }

  void Add(Peer peer, std::optional<L4Proto> protocol, PortRange ports) {
    out_.allowed.insert({.peer = std::move(peer), .protocol = protocol, .ports = ports});
  }

  void AddPeers(const k8s::NetworkPolicyRule& rule, std::optional<L4Proto> protocol, PortRange ports) {
    if (rule.peers.empty()) return Add({.kind = PeerKind::kAny}, protocol, ports);
    for (const k8s::NetworkPolicyPeer& peer : rule.peers) {
      if (peer.ip_block) {
        Add({.kind = PeerKind::kCidr, .cidr = peer.ip_block->cidr, .except = peer.ip_block->except}, protocol,
            ports);
        continue;
      }
      for (const auto& [identity, key] : state_.identities.identities()) {
        if (PeerSelects(peer, policy_.metadata.namespace_, key)) {
          Add({.kind = PeerKind::kIdentity, .identity = identity}, protocol, ports);
        }
      }
    }
  }

  // Egress to a named port: every destination pod that a peer admits and that has the name, at the
  // number it gives it there.
  void AddNamedDestinations(const k8s::NetworkPolicyRule& rule, const PortSpec& spec) {
    for (const auto& [ref, destination] : state_.pods) {
      if (destination.pod.host_network) continue;
      std::optional<uint16_t> number = ResolveNamedPort(destination.pod, spec.name, *spec.protocol);
      if (!number) continue;
      const IdentityKey key = state_.KeyOf(destination.pod);
      for (const IpAddress& address : destination.pod.pod_ips) {
        if (!Admits(rule, key, address)) continue;
        Add({.kind = PeerKind::kAddress, .cidr = HostPrefix(address)}, spec.protocol, {*number, *number});
      }
    }
  }

  bool Admits(const k8s::NetworkPolicyRule& rule, const IdentityKey& key, const IpAddress& address) const {
    if (rule.peers.empty()) return true;
    return std::any_of(rule.peers.begin(), rule.peers.end(), [&](const k8s::NetworkPolicyPeer& peer) {
      return peer.ip_block ? BlockContains(*peer.ip_block, address)
                           : PeerSelects(peer, policy_.metadata.namespace_, key);
    });
  }

  const ClusterState& state_;
  const PodState& endpoint_;
  const k8s::NetworkPolicy& policy_;
  DirectionPolicy& out_;
};

}  // namespace

bool PeerSelects(const k8s::NetworkPolicyPeer& peer, const std::string& policy_namespace,
                 const IdentityKey& key) {
  if (peer.ip_block) return false;
  if (peer.namespace_selector) {
    if (!SelectorMatches(*peer.namespace_selector, key.namespace_labels)) return false;
  } else if (key.namespace_ != policy_namespace) {
    return false;
  }
  return !peer.pod_selector || SelectorMatches(*peer.pod_selector, key.pod_labels);
}

bool PolicySelects(const k8s::NetworkPolicy& policy, const k8s::Pod& pod) {
  return policy.metadata.namespace_ == pod.metadata.namespace_ &&
         SelectorMatches(policy.pod_selector, pod.metadata.labels);
}

bool HasEgressNamedPort(const k8s::NetworkPolicy& policy) {
  if (!policy.egress_type) return false;
  for (const k8s::NetworkPolicyRule& rule : policy.egress) {
    for (const k8s::NetworkPolicyPort& port : rule.ports) {
      if (port.port && !port.port->name.empty()) return true;
    }
  }
  return false;
}

EndpointPolicy ComputeEndpointPolicy(const ClusterState& state, const PodState& pod) {
  EndpointPolicy result;
  result.identity = pod.identity.value_or(kIdentityUnknown);
  result.addresses = pod.pod.pod_ips;
  // state.policies is ordered by (namespace, name): only this namespace's range is read.
  const std::string& ns = pod.pod.metadata.namespace_;
  for (auto it = state.policies.lower_bound(ObjectRef{ns, ""});
       it != state.policies.end() && it->first.namespace_ == ns; ++it) {
    const k8s::NetworkPolicy& policy = it->second;
    if (!PolicySelects(policy, pod.pod)) continue;
    if (policy.ingress_type) {
      result.ingress.isolated = true;
      result.ingress.policies.push_back(it->first);
      RuleCollector collector(state, pod, policy, result.ingress);
      for (const k8s::NetworkPolicyRule& rule : policy.ingress) collector.Ingress(rule);
    }
    if (policy.egress_type) {
      result.egress.isolated = true;
      result.egress.policies.push_back(it->first);
      RuleCollector collector(state, pod, policy, result.egress);
      for (const k8s::NetworkPolicyRule& rule : policy.egress) collector.Egress(rule);
    }
  }
  return result;
}

}  // namespace weir::policy
