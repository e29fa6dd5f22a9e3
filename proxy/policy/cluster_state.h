// The objects policy is computed from, as one node sees them: every Namespace, Pod and
// NetworkPolicy of the cluster, each pod's identity, and which node this is. PolicyEngine
// (proxy/policy/policy_engine.h) keeps it current; ComputeEndpointPolicy reads it.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "proxy/k8s/objects.h"
#include "proxy/policy/endpoint_policy.h"
#include "proxy/policy/identity.h"

namespace weir::policy {

struct PodState {
  k8s::Pod pod;
  // nullopt for hostNetwork pods (they count as their node) and when no identity was left.
  std::optional<Identity> identity;
};

struct ClusterState {
  std::string node_name;
  std::map<std::string, k8s::Namespace> namespaces;
  std::map<ObjectRef, PodState> pods;
  std::map<ObjectRef, k8s::NetworkPolicy> policies;
  IdentityAllocator identities;

  // A namespace not seen yet has only the label the API server always sets.
  Labels NamespaceLabels(const std::string& name) const {
    auto found = namespaces.find(name);
    if (found != namespaces.end()) return found->second.metadata.labels;
    return {{k8s::kNamespaceNameLabel, name}};
  }

  IdentityKey KeyOf(const k8s::Pod& pod) const {
    return {pod.metadata.namespace_, NamespaceLabels(pod.metadata.namespace_), pod.metadata.labels};
  }

  // Pods on this node that policy applies to; hostNetwork pods are the node's own traffic.
  bool IsEndpoint(const k8s::Pod& pod) const { return pod.node_name == node_name && !pod.host_network; }
};

}  // namespace weir::policy
