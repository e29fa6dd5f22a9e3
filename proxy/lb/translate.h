// Translation: Services and EndpointSlices in, the frontends this node's datapath should serve out.
// Pure: no BPF, no API server. Semantics follow kube-proxy (pkg/proxy serviceport.go,
// endpointslicecache.go and topology.go CategorizeEndpoints).
//
// What becomes a frontend, per Service port and per IP family of the Service's clusterIPs:
//   - each clusterIP at port                                     flags CLUSTER_IP
//   - each node address of the family at nodePort (type NodePort/LoadBalancer, nodePort != 0)
//                                                                flags NODE_PORT
//   - each status.loadBalancer.ingress IP of the family at port (type LoadBalancer, ipMode not
//     Proxy; spec.loadBalancerIP is a request to the cloud and is ignored, as in kube-proxy)
//                                                                flags LOAD_BALANCER
//   - each spec.externalIPs address of the family at port        flags EXTERNAL_IP
// Headless Services (clusterIP None), ExternalName Services, Services without a clusterIP and
// Services labelled service.kubernetes.io/service-proxy-name (meant for another proxy; kube-proxy
// skips them too) are skipped entirely. TCP, UDP and SCTP on one port are distinct frontends.
//
// Backends: endpoints of the EndpointSlices labelled kubernetes.io/service-name=<name> in the
// Service's namespace, of the frontend's family, whose port has the Service port's name and
// protocol; the backend port is that slice port's number (so one named targetPort may resolve to
// different numbers on different endpoints). The first address of an endpoint is used; an
// address:port listed twice counts once (the local copy wins). Usable endpoints are the ready ones;
// when none is ready, the serving-and-terminating ones (BackendSpec::terminating); never others.
// The fallback is decided separately for the cluster-wide and the node-local selections.
//
// Scopes, and the contract with the datapath:
//   Every frontend has a Scope::kExternal entry: the default, used for all clients. A
//   Scope::kInternal entry exists only beside an external entry flagged WEIR_SVC_TWO_SCOPES; for
//   such a frontend the datapath uses the internal entry for traffic from inside the cluster (pods
//   and this host) and the external entry for everything else. Without the flag, everyone gets the
//   external entry. (Cilium's lookup-scope convention.)
//
//   ClusterIP frontends: one kExternal entry carrying the internal traffic policy. With
//     internalTrafficPolicy Local its backends are the node-local endpoints and it has
//     WEIR_SVC_LOCAL_ONLY. ClusterIPs are reached from inside the cluster, so there is nothing to
//     split.
//   NodePort / LoadBalancer / externalIP frontends with externalTrafficPolicy Cluster: one kExternal
//     entry with the cluster-wide endpoints.
//   ... with externalTrafficPolicy Local: a kExternal entry with the node-local endpoints, flagged
//     LOCAL_ONLY | TWO_SCOPES, plus a kInternal entry with the cluster-wide endpoints: kube-proxy
//     sends pod and host traffic for external destinations to the cluster-wide endpoints (it
//     "short-circuits" the load balancer, subject to neither traffic policy), so a pod reaching a
//     Local LoadBalancer IP works on nodes without a local endpoint.
//   sessionAffinity ClientIP sets AFFINITY (and the timeout, default 10800 s) on every entry.
//   MAGLEV and DSR are set only on kExternal entries of NodePort / LoadBalancer / externalIP
//   frontends: they concern traffic arriving from outside.
//
// Topology (cluster-wide selections only, never node-local ones): when every ready endpoint has
// node hints and one names this node, only those are used (PreferSameNode); else when every ready
// endpoint has zone hints and one names this node's zone, only those (PreferClose /
// PreferSameZone); else all. Like kube-proxy, weir acts on the hints the EndpointSlice controller
// wrote (for trafficDistribution or the topology-mode annotation), not on the Service fields.
//
// Conflicts: Services are processed in namespace/name order and the first to claim an
// address:port/protocol keeps it, both scopes of it; later claims are dropped with a warning.
#pragma once

#include <string>
#include <vector>

#include "lib/ip.h"
#include "proxy/k8s/objects.h"
#include "proxy/lb/desired_state.h"

namespace weir::lb {

// How external traffic reaches remote backends. kHybrid: DSR for TCP, SNAT for UDP and SCTP
// (which have no connection the backend's node could track for the reply path).
enum class LbMode { kSnat, kDsr, kHybrid };

// What translation needs to know about the node it runs for.
struct NodeContext {
  std::string node_name;                  // endpoints with this nodeName are local
  std::vector<IpAddress> node_addresses;  // NodePorts are served on each
  std::string zone;                       // topology.kubernetes.io/zone of the node
  bool maglev = false;                    // WEIR_SVC_MAGLEV on external frontends
  LbMode lb_mode = LbMode::kSnat;
};

DesiredState Translate(const std::vector<k8s::Service>& services,
                       const std::vector<k8s::EndpointSlice>& slices, const NodeContext& node);

// The claims of one Service. `slices`: the EndpointSlices labelled with the Service's name in its
// namespace, in name order as k8s::ForEachServiceWithSlices gives them (duplicate endpoints resolve
// by that order). A skipped Service (headless, ExternalName, another proxy's) claims nothing.
std::vector<FrontendClaim> TranslateService(const k8s::Service& service,
                                            const std::vector<const k8s::EndpointSlice*>& slices,
                                            const NodeContext& node);

const char* LbModeName(LbMode mode);  // "snat", "dsr", "hybrid"

}  // namespace weir::lb
