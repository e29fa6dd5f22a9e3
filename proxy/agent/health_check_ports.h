// The healthCheckNodePort servers of externalTrafficPolicy=Local Services, as kube-proxy serves
// them: cloud load balancers probe each node on the Service's healthCheckNodePort and send traffic
// only to nodes that answer 200, i.e. nodes with a ready endpoint of the Service. Without these
// servers a Local Service's load balancer marks every node down (or, with a TCP probe, sends
// traffic to nodes that then drop it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "proxy/k8s/objects.h"

namespace weir::agent {

struct HealthCheckService {
  std::string namespace_;
  std::string name;
  uint16_t port = 0;           // the healthCheckNodePort
  size_t local_endpoints = 0;  // ready endpoints of the Service on this node
  bool operator==(const HealthCheckService&) const = default;
};

// healthCheckNodePort -> the Service it reports on, for every Service of type LoadBalancer (or
// NodePort) with externalTrafficPolicy Local and a healthCheckNodePort. local_endpoints counts the
// ready endpoints on `node_name` in the Service's EndpointSlices (same namespace, labelled
// kubernetes.io/service-name), as kube-proxy does: terminating endpoints are not ready, so a node
// whose pods are shutting down reports 0 and the load balancer drains it. An address listed in
// several slices counts once; a dual-stack pod (one address per family) counts once, as the larger
// of the per-family counts. Two Services claiming one port (the API server prevents it): the first
// by namespace/name wins.
std::map<uint16_t, HealthCheckService> HealthCheckServicesFrom(const std::vector<k8s::Service>& services,
                                                               const std::vector<k8s::EndpointSlice>& slices,
                                                               const std::string& node_name);

// The same for one Service, given its slices: nullopt when it serves no health check port.
std::optional<HealthCheckService> HealthCheckOf(const k8s::Service& service,
                                                const std::vector<const k8s::EndpointSlice*>& slices,
                                                const std::string& node_name);

// The port -> Service map from the health checks of individual Services (first by name wins).
std::map<uint16_t, HealthCheckService> HealthCheckPortsOf(
    const std::map<k8s::ServiceRef, HealthCheckService>& services);

// The JSON body kube-proxy answers with:
// {"service":{"namespace":"ns","name":"svc"},"localEndpoints":N,"serviceProxyHealthy":true}
std::string HealthCheckResponseBody(const HealthCheckService& service);

// One listener per healthCheckNodePort, each an HTTP server on its own thread answering any GET
// with HealthCheckResponseBody: 200 when the Service has local endpoints, else 503. Thread-safe.
class HealthCheckPorts {
 public:
  // `bind_host`: the address every listener binds, "0.0.0.0" (all IPv4 addresses) by default.
  explicit HealthCheckPorts(std::string bind_host = "0.0.0.0");
  ~HealthCheckPorts();  // stops every listener
  HealthCheckPorts(const HealthCheckPorts&) = delete;
  HealthCheckPorts& operator=(const HealthCheckPorts&) = delete;

  // Makes the listeners match `by_port`: starts listeners for new ports, stops those of ports no
  // longer present, and updates the Service and count of the others in place (no restart, so no
  // probe ever finds the port closed). A port that cannot be bound is logged and left out; the next
  // Update() tries it again, so call this on every sync.
  void Update(const std::map<uint16_t, HealthCheckService>& by_port);

  // The ports being served, ascending.
  std::vector<uint16_t> ServingPorts() const;

 private:
  class PortServer;

  const std::string bind_host_;
  mutable std::mutex mutex_;  // guards servers_
  std::map<uint16_t, std::unique_ptr<PortServer>> servers_;
};

}  // namespace weir::agent
