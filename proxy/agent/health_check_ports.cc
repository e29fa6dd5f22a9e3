#include "proxy/agent/health_check_ports.h"

#include <algorithm>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

#include "proxy/agent/http_server.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "spdlog/spdlog.h"

namespace weir::agent {
namespace {

// Probes are tiny and infrequent; a second worker keeps one stalled client from blocking them.
constexpr size_t kPortServerWorkers = 2;

bool ServesHealthCheckPort(const k8s::Service& service) {
  return service.health_check_node_port != 0 &&
         service.external_traffic_policy == k8s::TrafficPolicy::kLocal &&
         (service.type == k8s::ServiceType::kLoadBalancer || service.type == k8s::ServiceType::kNodePort);
}

}  // namespace

std::optional<HealthCheckService> HealthCheckOf(const k8s::Service& service,
                                                const std::vector<const k8s::EndpointSlice*>& slices,
                                                const std::string& node_name) {
  if (!ServesHealthCheckPort(service)) return std::nullopt;
  std::map<IpFamily, std::set<IpAddress>> local_ready;  // distinct ready local addresses
  for (const k8s::EndpointSlice* slice : slices) {
    if (slice->address_type == k8s::AddressType::kFqdn) continue;
    for (const k8s::Endpoint& endpoint : slice->endpoints) {
      if (!endpoint.conditions.ready || endpoint.node_name != node_name || endpoint.addresses.empty())
        continue;
      // Addresses of one endpoint are fungible (the API says so): the first stands for the pod.
      const IpAddress& address = endpoint.addresses.front();
      local_ready[address.family()].insert(address);
    }
  }
  size_t count = 0;
  for (const auto& [family, addresses] : local_ready) count = std::max(count, addresses.size());
  return HealthCheckService{.namespace_ = service.metadata.namespace_,
                            .name = service.metadata.name,
                            .port = service.health_check_node_port,
                            .local_endpoints = count};
}

std::map<uint16_t, HealthCheckService> HealthCheckPortsOf(
    const std::map<k8s::ServiceRef, HealthCheckService>& services) {
  std::map<uint16_t, HealthCheckService> by_port;
  for (const auto& [ref, service] : services) {
    auto [slot, inserted] = by_port.try_emplace(service.port, service);
    if (!inserted) {
      spdlog::warn("healthCheckNodePort {} is claimed by {}/{} and {}; serving it for the former",
                   service.port, slot->second.namespace_, slot->second.name, ref.ToString());
    }
  }
  return by_port;
}

std::map<uint16_t, HealthCheckService> HealthCheckServicesFrom(const std::vector<k8s::Service>& services,
                                                               const std::vector<k8s::EndpointSlice>& slices,
                                                               const std::string& node_name) {
  std::map<k8s::ServiceRef, HealthCheckService> by_service;
  k8s::ForEachServiceWithSlices(services, slices, [&](const k8s::Service& service, const auto& owned) {
    if (std::optional<HealthCheckService> check = HealthCheckOf(service, owned, node_name)) {
      by_service.emplace(k8s::RefOf(service), *std::move(check));
    }
  });
  return HealthCheckPortsOf(by_service);
}

std::string HealthCheckResponseBody(const HealthCheckService& service) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("service");
  writer.StartObject();
  writer.Key("namespace");
  writer.String(service.namespace_.c_str(), static_cast<rapidjson::SizeType>(service.namespace_.size()));
  writer.Key("name");
  writer.String(service.name.c_str(), static_cast<rapidjson::SizeType>(service.name.size()));
  writer.EndObject();
  writer.Key("localEndpoints");
  writer.Uint64(service.local_endpoints);
  // This process answering is the proxy being healthy; an unhealthy agent stops answering.
  writer.Key("serviceProxyHealthy");
  writer.Bool(true);
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

// One port's listener and the Service it currently reports; the handler reads the Service under a
// lock, so Update() can change it while probes are being answered.
class HealthCheckPorts::PortServer {
 public:
  explicit PortServer(HealthCheckService service)
      : listener_(kPortServerWorkers), service_(std::move(service)) {
    listener_.server().Get(".*", [this](const httplib::Request&, httplib::Response& response) {
      const HealthCheckService service = Current();
      response.status = service.local_endpoints > 0 ? 200 : 503;
      // As kube-proxy: some load balancers weight nodes by this header.
      response.set_header("X-Load-Balancing-Endpoint-Weight", std::to_string(service.local_endpoints));
      response.set_header("X-Content-Type-Options", "nosniff");
      response.set_content(HealthCheckResponseBody(service), "application/json");
    });
  }

  // The handler reads mutex_ and service_: stop serving before they go.
  ~PortServer() { listener_.Stop(); }

  absl::Status Start(const std::string& host, uint16_t port) { return listener_.Start(host, port); }

  void Set(const HealthCheckService& service) {
    std::lock_guard<std::mutex> lock(mutex_);
    service_ = service;
  }

  HealthCheckService Current() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return service_;
  }

 private:
  HttpListener listener_;
  mutable std::mutex mutex_;
  HealthCheckService service_;
};

HealthCheckPorts::HealthCheckPorts(std::string bind_host) : bind_host_(std::move(bind_host)) {}

HealthCheckPorts::~HealthCheckPorts() {
  std::lock_guard<std::mutex> lock(mutex_);
  servers_.clear();
}

void HealthCheckPorts::Update(const std::map<uint16_t, HealthCheckService>& by_port) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = servers_.begin(); it != servers_.end();) {
    if (by_port.contains(it->first)) {
      ++it;
    } else {
      spdlog::info("health check port {}: no longer needed, closing", it->first);
      it = servers_.erase(it);  // stops the listener and joins its thread
    }
  }
  for (const auto& [port, service] : by_port) {
    if (auto existing = servers_.find(port); existing != servers_.end()) {
      existing->second->Set(service);
      continue;
    }
    auto server = std::make_unique<PortServer>(service);
    if (absl::Status status = server->Start(bind_host_, port); !status.ok()) {
      spdlog::error("health check port {} for {}/{}: {}; retrying on the next sync", port, service.namespace_,
                    service.name, status.ToString());
      continue;
    }
    spdlog::info("health check port {}: serving for {}/{}", port, service.namespace_, service.name);
    servers_.emplace(port, std::move(server));
  }
}

std::vector<uint16_t> HealthCheckPorts::ServingPorts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<uint16_t> ports;
  for (const auto& [port, server] : servers_) ports.push_back(port);
  return ports;
}

}  // namespace weir::agent
