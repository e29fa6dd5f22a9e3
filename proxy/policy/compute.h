// The NetworkPolicy semantics: from the cluster's objects to one endpoint's allowed traffic.
//   - A policy applies to the pods of its namespace that its podSelector selects; it isolates them
//     in the directions of its policyTypes. Policies are additive: the allowed set of a direction is
//     the union of the rules of every policy that isolates it.
//   - A peer with only podSelector means pods of the policy's namespace; with namespaceSelector, pods
//     of the selected namespaces (and, with both, only those the podSelector also selects). Selector
//     peers become identities. hostNetwork pods have no identity: they count as their node.
//   - ipBlock is kept as CIDR and excepts, for the datapath to match on the raw address, so it
//     matches pod and node addresses too.
//   - A named port is resolved per pod: for ingress on the endpoint's own container ports, for egress
//     on each destination pod's, giving one entry per destination address (pods with the same labels
//     may name different numbers). A name no pod has, or that has another protocol, allows nothing.
#pragma once

#include <string>

#include "proxy/k8s/objects.h"
#include "proxy/policy/cluster_state.h"
#include "proxy/policy/endpoint_policy.h"

namespace weir::policy {

// Whether a policy of `policy_namespace` with this peer selects pods with this identity key.
// ipBlock peers select no identity.
bool PeerSelects(const k8s::NetworkPolicyPeer& peer, const std::string& policy_namespace,
                 const IdentityKey& key);

// Whether `policy` applies to `pod` (same namespace, podSelector matches).
bool PolicySelects(const k8s::NetworkPolicy& policy, const k8s::Pod& pod);

// Whether a rule of `policy` resolves a named port on destination pods, so that its entries depend on
// every pod's addresses and ports, not only on identities.
bool HasEgressNamedPort(const k8s::NetworkPolicy& policy);

// The policy of the endpoint `pod` (a pod of state.pods) from everything in `state`.
EndpointPolicy ComputeEndpointPolicy(const ClusterState& state, const PodState& pod);

}  // namespace weir::policy
