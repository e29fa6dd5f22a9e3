#include "proxy/lb/translate.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "proxy/lb/dump.h"
#include "proxy/lb/frontend_table.h"
#include "spdlog/spdlog.h"

namespace weir::lb {
namespace {

using k8s::EndpointSlice;
using k8s::Service;
using k8s::ServicePort;
using k8s::TrafficPolicy;

constexpr const char kServiceProxyNameLabel[] = "service.kubernetes.io/service-proxy-name";

// One address:port serving a Service port, as kube-proxy's endpoint cache holds it.
struct EndpointInfo {
  IpAddress address;
  uint16_t port = 0;
  bool local = false;
  k8s::EndpointConditions conditions;
  const std::vector<std::string>* zone_hints = nullptr;
  const std::vector<std::string>* node_hints = nullptr;

  bool ServingTerminating() const { return conditions.serving && conditions.terminating; }
};

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::optional<IpFamily> FamilyOf(k8s::AddressType type) {
  switch (type) {
    case k8s::AddressType::kIPv4: return IpFamily::kV4;
    case k8s::AddressType::kIPv6: return IpFamily::kV6;
    case k8s::AddressType::kFqdn: return std::nullopt;
  }
  return std::nullopt;
}

// The endpoints of one Service port in one family, across all of the Service's slices (given in a
// stable order). Duplicates collapse to one, preferring a local copy, as kube-proxy does.
std::vector<EndpointInfo> CollectEndpoints(const std::vector<const EndpointSlice*>& slices,
                                           const ServicePort& port, IpFamily family,
                                           const NodeContext& node) {
  std::vector<EndpointInfo> endpoints;
  std::map<std::pair<IpAddress, uint16_t>, size_t> index;
  for (const EndpointSlice* slice : slices) {
    if (FamilyOf(slice->address_type) != family) continue;
    for (const k8s::EndpointPort& slice_port : slice->ports) {
      if (slice_port.name != port.name || slice_port.protocol != port.protocol || !slice_port.port) continue;
      for (const k8s::Endpoint& endpoint : slice->endpoints) {
        if (endpoint.addresses.empty()) continue;
        EndpointInfo info{.address = endpoint.addresses.front(),
                          .port = *slice_port.port,
                          .local = !node.node_name.empty() && endpoint.node_name == node.node_name,
                          .conditions = endpoint.conditions,
                          .zone_hints = &endpoint.zone_hints,
                          .node_hints = &endpoint.node_hints};
        auto [it, inserted] = index.try_emplace({info.address, info.port}, endpoints.size());
        if (inserted) {
          endpoints.push_back(info);
        } else if (info.local) {
          endpoints[it->second] = info;
        }
      }
    }
  }
  return endpoints;
}

enum class TopologyMode { kNone, kSameZone, kSameNode };

// kube-proxy's topologyModeFromHints: hints count only if every ready endpoint has them and at
// least one names this node (or zone); otherwise the controller's hints are stale or partial and
// using them could overload the few hinted endpoints.
TopologyMode TopologyModeFromHints(const std::vector<EndpointInfo>& endpoints, const NodeContext& node) {
  bool has_ready = false;
  bool all_node_hints = true, hint_for_node = false;
  bool all_zone_hints = true, hint_for_zone = false;
  for (const EndpointInfo& endpoint : endpoints) {
    if (!endpoint.conditions.ready) continue;
    has_ready = true;
    if (endpoint.node_hints->empty()) {
      all_node_hints = false;
    } else if (Contains(*endpoint.node_hints, node.node_name)) {
      hint_for_node = true;
    }
    if (endpoint.zone_hints->empty()) {
      all_zone_hints = false;
    } else if (Contains(*endpoint.zone_hints, node.zone)) {
      hint_for_zone = true;
    }
  }
  if (!has_ready) return TopologyMode::kNone;
  if (all_node_hints && hint_for_node) return TopologyMode::kSameNode;
  if (all_zone_hints && hint_for_zone) return TopologyMode::kSameZone;
  return TopologyMode::kNone;
}

bool AvailableForTopology(const EndpointInfo& endpoint, TopologyMode mode, const NodeContext& node) {
  switch (mode) {
    case TopologyMode::kNone: return true;
    case TopologyMode::kSameNode: return Contains(*endpoint.node_hints, node.node_name);
    case TopologyMode::kSameZone: return Contains(*endpoint.zone_hints, node.zone);
  }
  return false;
}

template <typename Predicate>
std::vector<BackendSpec> Select(const std::vector<EndpointInfo>& endpoints, L4Proto proto, bool terminating,
                                Predicate keep) {
  std::vector<BackendSpec> backends;
  for (const EndpointInfo& endpoint : endpoints) {
    if (!keep(endpoint)) continue;
    backends.push_back({.address = endpoint.address,
                        .port = endpoint.port,
                        .proto = proto,
                        .local = endpoint.local,
                        .terminating = terminating});
  }
  std::sort(backends.begin(), backends.end());
  return backends;
}

// The "Cluster" traffic policy selection: ready endpoints allowed by topology, else every
// serving-terminating one (topology already falls back to "all" when it has no ready endpoint).
std::vector<BackendSpec> ClusterBackends(const std::vector<EndpointInfo>& endpoints, L4Proto proto,
                                         const NodeContext& node) {
  const TopologyMode mode = TopologyModeFromHints(endpoints, node);
  std::vector<BackendSpec> backends = Select(endpoints, proto, false, [&](const EndpointInfo& endpoint) {
    return endpoint.conditions.ready && AvailableForTopology(endpoint, mode, node);
  });
  if (!backends.empty()) return backends;
  return Select(endpoints, proto, true,
                [](const EndpointInfo& endpoint) { return endpoint.ServingTerminating(); });
}

// The "Local" traffic policy selection: local ready endpoints, else local serving-terminating ones.
std::vector<BackendSpec> LocalBackends(const std::vector<EndpointInfo>& endpoints, L4Proto proto) {
  std::vector<BackendSpec> backends = Select(endpoints, proto, false, [](const EndpointInfo& endpoint) {
    return endpoint.local && endpoint.conditions.ready;
  });
  if (!backends.empty()) return backends;
  return Select(endpoints, proto, true,
                [](const EndpointInfo& endpoint) { return endpoint.local && endpoint.ServingTerminating(); });
}

bool UsesDsr(LbMode mode, L4Proto proto) {
  switch (mode) {
    case LbMode::kSnat: return false;
    case LbMode::kDsr: return true;
    case LbMode::kHybrid: return proto == L4Proto::kTcp;
  }
  return false;
}

// An address a Service is reachable on from outside (NodePort, LoadBalancer, externalIP).
struct ExternalAddress {
  IpAddress address;
  uint16_t port;
  uint16_t kind_flag;
};

bool ShouldSkip(const Service& service) {
  if (service.type == k8s::ServiceType::kExternalName || service.headless || service.cluster_ips.empty())
    return true;
  if (service.metadata.labels.contains(kServiceProxyNameLabel)) {
    spdlog::debug("service {} belongs to another proxy ({})", service.NamespacedName(),
                  service.metadata.labels.at(kServiceProxyNameLabel));
    return true;
  }
  return false;
}

std::vector<ExternalAddress> ExternalAddresses(const Service& service, const ServicePort& port,
                                               IpFamily family, const NodeContext& node) {
  std::vector<ExternalAddress> addresses;
  const bool has_node_port =
      service.type == k8s::ServiceType::kNodePort || service.type == k8s::ServiceType::kLoadBalancer;
  if (has_node_port && port.node_port != 0) {
    for (const IpAddress& address : node.node_addresses) {
      if (address.family() == family) addresses.push_back({address, port.node_port, WEIR_SVC_NODE_PORT});
    }
  }
  if (service.type == k8s::ServiceType::kLoadBalancer) {
    for (const k8s::LoadBalancerIngress& ingress : service.load_balancer_ingress) {
      // ipMode Proxy: the load balancer forwards to the nodes itself; capturing its IP here would
      // keep in-cluster clients from ever reaching it.
      if (!ingress.ip || ingress.ip_mode == k8s::LoadBalancerIpMode::kProxy) continue;
      if (ingress.ip->family() == family)
        addresses.push_back({*ingress.ip, port.port, WEIR_SVC_LOAD_BALANCER});
    }
  }
  for (const IpAddress& address : service.external_ips) {
    if (address.family() == family) addresses.push_back({address, port.port, WEIR_SVC_EXTERNAL_IP});
  }
  return addresses;
}

void TranslatePort(const Service& service, const ServicePort& port, const IpAddress& cluster_ip,
                   const std::vector<const EndpointSlice*>& slices, const NodeContext& node,
                   std::vector<FrontendClaim>& out) {
  const std::vector<EndpointInfo> endpoints = CollectEndpoints(slices, port, cluster_ip.family(), node);
  const bool internal_local = service.internal_traffic_policy == TrafficPolicy::kLocal;
  const bool external_local = service.external_traffic_policy == TrafficPolicy::kLocal;
  const std::vector<BackendSpec> cluster_backends = ClusterBackends(endpoints, port.protocol, node);
  const std::vector<BackendSpec> local_backends = LocalBackends(endpoints, port.protocol);

  FrontendSpec base{.port = port.port,
                    .proto = port.protocol,
                    .scope = Scope::kExternal,
                    .service = absl::StrCat(service.NamespacedName(), ":", port.name)};
  if (service.session_affinity == k8s::SessionAffinity::kClientIP) {
    base.flags |= WEIR_SVC_AFFINITY;
    base.affinity_timeout_seconds = service.affinity_timeout_seconds;
  }

  FrontendSpec cluster_ip_entry = base;
  cluster_ip_entry.address = cluster_ip;
  cluster_ip_entry.flags |= WEIR_SVC_CLUSTER_IP | (internal_local ? WEIR_SVC_LOCAL_ONLY : 0);
  cluster_ip_entry.backends = internal_local ? local_backends : cluster_backends;
  out.push_back({.external = std::move(cluster_ip_entry)});

  for (const ExternalAddress& external : ExternalAddresses(service, port, cluster_ip.family(), node)) {
    FrontendSpec entry = base;
    entry.address = external.address;
    entry.port = external.port;
    entry.flags |= external.kind_flag;
    std::optional<FrontendSpec> internal;
    if (external_local) {
      // For pods and the host: every endpoint, as if the client had gone out to the load
      // balancer and come back in.
      internal = entry;
      internal->scope = Scope::kInternal;
      internal->backends = cluster_backends;
      entry.flags |= WEIR_SVC_LOCAL_ONLY | WEIR_SVC_TWO_SCOPES;
    }
    if (node.maglev) entry.flags |= WEIR_SVC_MAGLEV;
    if (UsesDsr(node.lb_mode, port.protocol)) entry.flags |= WEIR_SVC_DSR;
    entry.backends = external_local ? local_backends : cluster_backends;
    out.push_back({.external = std::move(entry), .internal = std::move(internal)});
  }
}

}  // namespace

std::vector<FrontendClaim> TranslateService(const Service& service,
                                            const std::vector<const EndpointSlice*>& slices,
                                            const NodeContext& node) {
  std::vector<FrontendClaim> claims;
  if (ShouldSkip(service)) return claims;
  for (const ServicePort& port : service.ports) {
    for (const IpAddress& cluster_ip : service.cluster_ips)
      TranslatePort(service, port, cluster_ip, slices, node, claims);
  }
  return claims;
}

DesiredState Translate(const std::vector<k8s::Service>& services,
                       const std::vector<k8s::EndpointSlice>& slices, const NodeContext& node) {
  FrontendTable table;
  k8s::ForEachServiceWithSlices(services, slices, [&](const Service& service, const auto& owned) {
    table.SetClaims(k8s::RefOf(service), TranslateService(service, owned, node));
  });
  return table.Desired();
}

const char* LbModeName(LbMode mode) {
  switch (mode) {
    case LbMode::kSnat: return "snat";
    case LbMode::kDsr: return "dsr";
    case LbMode::kHybrid: return "hybrid";
  }
  return "?";
}

}  // namespace weir::lb
