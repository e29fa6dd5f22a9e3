// The collections the agent watches: what to request, and how each item's JSON decodes. The kinds of
// proxy/k8s/objects.h go through the validating decoders of proxy/k8s/decode.h (one decoder for
// manifests and the API); the kinds only the API source needs (DaemonSet) are defined and decoded here.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/ip.h"
#include "proxy/k8s/kube_list_watch.h"
#include "proxy/k8s/objects.h"
#include "rapidjson/document.h"

namespace weir::k8s {

// ---- Kinds of the API source ----

// The agent's own DaemonSet: its deletion (helm uninstall) tells the agent to clean its node up
// when it stops, where a rolling update must leave everything in place.
struct DaemonSet {
  ObjectMeta metadata;
  bool deleting = false;  // metadata.deletionTimestamp is set
};

// ---- Decoders (for Informer<T>) ----
// Errors name the object and field, like decode.h's: `Pod default/web: status.podIPs[0].ip: ...`.

absl::StatusOr<Service> ServiceFromJson(const rapidjson::Value& object);
absl::StatusOr<EndpointSlice> EndpointSliceFromJson(const rapidjson::Value& object);
absl::StatusOr<Node> NodeFromJson(const rapidjson::Value& object);
absl::StatusOr<Pod> PodFromJson(const rapidjson::Value& object);
absl::StatusOr<Namespace> NamespaceFromJson(const rapidjson::Value& object);
absl::StatusOr<NetworkPolicy> NetworkPolicyFromJson(const rapidjson::Value& object);
absl::StatusOr<DaemonSet> DaemonSetFromJson(const rapidjson::Value& object);

// ---- Collections ----

ResourceQuery ServicesResource();                                // /api/v1/services
ResourceQuery EndpointSlicesResource();                          // /apis/discovery.k8s.io/v1/endpointslices
ResourceQuery NodesResource();                                   // /api/v1/nodes
ResourceQuery PodsResource();                                    // /api/v1/pods, every node's
ResourceQuery PodsOnNodeResource(const std::string& node_name);  // fieldSelector spec.nodeName=<node>
ResourceQuery NamespacesResource();                              // /api/v1/namespaces
ResourceQuery NetworkPoliciesResource();                         // /apis/networking.k8s.io/v1/networkpolicies
// /apis/apps/v1/namespaces/<namespace>/daemonsets, fieldSelector metadata.name=<name>
ResourceQuery DaemonSetResource(const std::string& namespace_, const std::string& name);

}  // namespace weir::k8s
