// The Kubernetes objects weir reads, reduced to the fields service load balancing and network policy
// need. Values are
// already validated and defaulted by the decoder (proxy/k8s/decode.h): an absent field holds the
// Kubernetes default, so consumers never reinterpret nil.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "lib/ip.h"
#include "lib/l4_proto.h"

namespace weir::k8s {

// Well-known label keys.
inline constexpr const char kServiceNameLabel[] = "kubernetes.io/service-name";
inline constexpr const char kHeadlessLabel[] = "service.kubernetes.io/headless";
inline constexpr const char kTopologyZoneLabel[] = "topology.kubernetes.io/zone";

struct ObjectMeta {
  std::string namespace_;  // empty for cluster-scoped objects (Node)
  std::string name;
  std::string uid;
  std::string resource_version;
  std::map<std::string, std::string> labels;
  bool operator==(const ObjectMeta&) const = default;

  // "ns/name" (or "name"), for messages; the metadata may be partly unreadable.
  std::string Describe() const {
    const std::string shown = name.empty() ? "<unnamed>" : name;
    return namespace_.empty() ? shown : namespace_ + "/" + shown;
  }
};

// ---- Service (core/v1) ----

enum class ServiceType { kClusterIP, kNodePort, kLoadBalancer, kExternalName };
enum class TrafficPolicy { kCluster, kLocal };
enum class SessionAffinity { kNone, kClientIP };
// status.loadBalancer.ingress[].ipMode. kProxy: the load balancer proxies to the nodes itself, so
// the IP must not be captured on the nodes (traffic to it has to leave the node).
enum class LoadBalancerIpMode { kVip, kProxy };

inline constexpr uint32_t kDefaultAffinityTimeoutSeconds = 10800;  // 3 hours, the API default
inline constexpr uint32_t kMaxAffinityTimeoutSeconds = 86400;

// spec.ports[].targetPort: a number or the name of a container port. Informational for weir:
// EndpointSlices carry the resolved port numbers.
struct TargetPort {
  uint16_t number = 0;  // set when name is empty
  std::string name;
  bool operator==(const TargetPort&) const = default;
};

struct ServicePort {
  std::string name;  // may be empty for a single-port Service
  L4Proto protocol = L4Proto::kTcp;
  uint16_t port = 0;
  TargetPort target_port;  // defaults to `port`
  uint16_t node_port = 0;  // 0: none (ClusterIP, or allocateLoadBalancerNodePorts: false)
};

struct LoadBalancerIngress {
  std::optional<IpAddress> ip;  // absent for hostname-only ingress (e.g. some cloud LBs)
  std::string hostname;
  LoadBalancerIpMode ip_mode = LoadBalancerIpMode::kVip;
};

struct Service {
  ObjectMeta metadata;
  ServiceType type = ServiceType::kClusterIP;
  // spec.clusterIPs (or spec.clusterIP when clusterIPs is absent), at most one per family.
  // Empty when headless or when none is allocated (ExternalName).
  std::vector<IpAddress> cluster_ips;
  bool headless = false;  // clusterIP: None
  std::vector<IpFamily> ip_families;
  std::vector<ServicePort> ports;
  std::vector<IpAddress> external_ips;
  SessionAffinity session_affinity = SessionAffinity::kNone;
  uint32_t affinity_timeout_seconds = kDefaultAffinityTimeoutSeconds;  // with kClientIP
  TrafficPolicy external_traffic_policy = TrafficPolicy::kCluster;
  TrafficPolicy internal_traffic_policy = TrafficPolicy::kCluster;
  uint16_t health_check_node_port = 0;
  // Deprecated spec.loadBalancerIP: a request to the cloud provider. Only status ingress IPs are
  // programmed, as kube-proxy does.
  std::optional<IpAddress> load_balancer_ip;
  std::string traffic_distribution;  // e.g. "PreferClose"; acted on through EndpointSlice hints
  std::vector<LoadBalancerIngress> load_balancer_ingress;  // status.loadBalancer.ingress
  std::string external_name;

  std::string NamespacedName() const { return metadata.namespace_ + "/" + metadata.name; }
};

// ---- EndpointSlice (discovery.k8s.io/v1) ----

enum class AddressType { kIPv4, kIPv6, kFqdn };

// Conditions with the API's nil rules applied: ready nil -> true, serving nil -> true (current API
// docs and kube-proxy), terminating nil -> false.
struct EndpointConditions {
  bool ready = true;
  bool serving = true;
  bool terminating = false;
};

struct Endpoint {
  // At least one; all of the slice's family. Consumers may use only the first (the API calls them
  // fungible), which is what kube-proxy and weir do.
  std::vector<IpAddress> addresses;
  EndpointConditions conditions;
  std::string node_name;
  std::string zone;
  std::vector<std::string> zone_hints;  // hints.forZones[].name
  std::vector<std::string> node_hints;  // hints.forNodes[].name
};

struct EndpointPort {
  std::string name;  // matches the Service port name
  L4Proto protocol = L4Proto::kTcp;
  std::optional<uint16_t> port;  // nil: unrestricted, which a proxy cannot use
};

struct EndpointSlice {
  ObjectMeta metadata;
  AddressType address_type = AddressType::kIPv4;
  std::vector<Endpoint> endpoints;  // always empty for kFqdn: weir does not resolve names
  std::vector<EndpointPort> ports;
  // endpoints.kubernetes.io/last-change-trigger-time: when the change that produced this version
  // happened (a pod became ready, ...). The start of network programming latency, as in kube-proxy.
  std::optional<std::chrono::system_clock::time_point> last_change_trigger_time;

  // The owning Service's name (same namespace), or "" when the label is missing or the slice is
  // labelled service.kubernetes.io/headless: kube-proxy ignores such slices (its informer selects
  // `!service.kubernetes.io/headless`), and so does weir, whatever the Service says.
  std::string ServiceName() const {
    if (metadata.labels.count(kHeadlessLabel)) return "";
    auto it = metadata.labels.find(kServiceNameLabel);
    return it == metadata.labels.end() ? std::string() : it->second;
  }
};

// A Service by namespace and name: how EndpointSlices, and weir's per-Service state, refer to it.
// Ordered by namespace, then name: the order in which conflicting Services are resolved.
struct ServiceRef {
  std::string namespace_;
  std::string name;
  auto operator<=>(const ServiceRef&) const = default;
  std::string ToString() const { return namespace_ + "/" + name; }
};

inline ServiceRef RefOf(const Service& service) {
  return {service.metadata.namespace_, service.metadata.name};
}

// The Service a slice belongs to; nullopt when it has no service-name label.
inline std::optional<ServiceRef> OwnerOf(const EndpointSlice& slice) {
  std::string name = slice.ServiceName();
  if (name.empty()) return std::nullopt;
  return ServiceRef{slice.metadata.namespace_, std::move(name)};
}

// Calls visit(service, its slices) for each Service, the slices being those labelled with its name in
// its namespace, in slice name order (so that duplicate endpoints resolve the same way on every run).
template <typename Visit>
void ForEachServiceWithSlices(const std::vector<Service>& services, const std::vector<EndpointSlice>& slices,
                              Visit visit) {
  std::map<ServiceRef, std::vector<const EndpointSlice*>> by_service;
  for (const EndpointSlice& slice : slices) {
    if (std::optional<ServiceRef> owner = OwnerOf(slice)) by_service[*owner].push_back(&slice);
  }
  for (auto& [service, owned] : by_service) {
    std::sort(owned.begin(), owned.end(), [](const EndpointSlice* a, const EndpointSlice* b) {
      return a->metadata.name < b->metadata.name;
    });
  }
  static const std::vector<const EndpointSlice*> kNoSlices;
  for (const Service& service : services) {
    auto owned = by_service.find(RefOf(service));
    visit(service, owned == by_service.end() ? kNoSlices : owned->second);
  }
}

// A Service and its EndpointSlices as they are now, for syncing one Service.
struct ServiceObjects {
  ServiceRef ref;
  std::optional<Service> service;     // nullopt: deleted
  std::vector<EndpointSlice> slices;  // in name order
};

// ---- Node (core/v1) ----

struct NodeAddress {
  std::string type;  // InternalIP, ExternalIP, Hostname, InternalDNS, ExternalDNS
  std::string address;
  std::optional<IpAddress> ip;  // set for InternalIP and ExternalIP
};

struct Node {
  ObjectMeta metadata;
  std::vector<IpPrefix> pod_cidrs;  // spec.podCIDRs, or spec.podCIDR
  std::vector<NodeAddress> addresses;

  std::string Zone() const {
    auto it = metadata.labels.find(kTopologyZoneLabel);
    return it == metadata.labels.end() ? std::string() : it->second;
  }
};

// ---- Label selectors (meta/v1 LabelSelector) ----

enum class SelectorOperator { kIn, kNotIn, kExists, kDoesNotExist };

struct LabelSelectorRequirement {
  std::string key;
  SelectorOperator op = SelectorOperator::kExists;
  std::vector<std::string> values;  // non-empty for In/NotIn, empty for Exists/DoesNotExist
  bool operator==(const LabelSelectorRequirement&) const = default;
};

// All of match_labels and all of match_expressions must hold; an empty selector selects everything.
struct LabelSelector {
  std::map<std::string, std::string> match_labels;
  std::vector<LabelSelectorRequirement> match_expressions;
  bool operator==(const LabelSelector&) const = default;
};

// ---- Namespace (core/v1) ----

// Set by the API server on every Namespace (since 1.22); the decoder sets it too, so manifests
// written by hand select the same way.
inline constexpr const char kNamespaceNameLabel[] = "kubernetes.io/metadata.name";

struct Namespace {
  ObjectMeta metadata;  // labels include kNamespaceNameLabel
  bool operator==(const Namespace&) const = default;
};

// ---- Pod (core/v1) ----

struct ContainerPort {
  std::string name;  // may be empty; unique within a container (two containers may share one)
  uint16_t container_port = 0;
  L4Proto protocol = L4Proto::kTcp;
  bool operator==(const ContainerPort&) const = default;
};

struct Pod {
  ObjectMeta metadata;
  std::string node_name;             // spec.nodeName; empty until scheduled
  bool host_network = false;         // spec.hostNetwork
  std::string phase;                 // status.phase: Pending, Running, Succeeded, Failed, Unknown
  std::vector<IpAddress> pod_ips;    // status.podIPs (or status.podIP); empty until assigned
  std::vector<ContainerPort> ports;  // spec.containers[].ports[], in container order
  bool operator==(const Pod&) const = default;
};

// ---- NetworkPolicy (networking.k8s.io/v1) ----

inline constexpr const char kPolicyAuditAnnotation[] = "weir.io/policy-audit";

struct IpBlock {
  IpPrefix cidr;                 // host bits cleared
  std::vector<IpPrefix> except;  // each inside cidr, host bits cleared
  bool operator==(const IpBlock&) const = default;
};

// One element of from[] / to[]: either ip_block, or one or both selectors (both: AND). A peer
// with only pod_selector means pods of the policy's own namespace.
struct NetworkPolicyPeer {
  std::optional<LabelSelector> pod_selector;
  std::optional<LabelSelector> namespace_selector;
  std::optional<IpBlock> ip_block;
  bool operator==(const NetworkPolicyPeer&) const = default;
};

struct NetworkPolicyPort {
  L4Proto protocol = L4Proto::kTcp;
  // A number or a container port name (TargetPort's two forms); nullopt: every port of `protocol`.
  std::optional<TargetPort> port;
  std::optional<uint16_t> end_port;  // only with a numeric port, >= it
  bool operator==(const NetworkPolicyPort&) const = default;
};

// peers empty: any peer; ports empty: any port of any protocol.
struct NetworkPolicyRule {
  std::vector<NetworkPolicyPeer> peers;  // ingress[].from or egress[].to
  std::vector<NetworkPolicyPort> ports;
  bool operator==(const NetworkPolicyRule&) const = default;
};

struct NetworkPolicy {
  ObjectMeta metadata;
  LabelSelector pod_selector;
  // spec.policyTypes with the API's defaults applied: Ingress when absent, Egress when absent and
  // there are egress rules.
  bool ingress_type = true;
  bool egress_type = false;
  std::vector<NetworkPolicyRule> ingress;
  std::vector<NetworkPolicyRule> egress;
  // Annotation kPolicyAuditAnnotation is "true": what only this policy would drop is reported, not
  // dropped (docs/network-policy.md, "Audit mode").
  bool audit = false;
  bool operator==(const NetworkPolicy&) const = default;
};

// Everything weir reads, from any source: a manifest directory or the API.
struct ObjectSet {
  std::vector<Service> services;
  std::vector<EndpointSlice> slices;
  std::vector<Node> nodes;
  // For network policy; only a manifest directory fills them so far.
  std::vector<Namespace> namespaces;
  std::vector<Pod> pods;
  std::vector<NetworkPolicy> network_policies;
  size_t skipped = 0;  // objects that failed to decode (logged)
};

// One object of a watched collection after it changed: its current version, or nullopt once deleted.
// `key` is the informer's key, "namespace/name" (or "name" for cluster-scoped kinds).
template <typename T>
struct KeyedObject {
  std::string key;
  std::optional<T> object;
};

using Object = std::variant<Service, EndpointSlice, Node, Namespace, Pod, NetworkPolicy>;

}  // namespace weir::k8s
