#include "proxy/agent/health_check_ports.h"

#include <httplib.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/agent/http_server.h"

namespace weir::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

IpAddress Ip(const char* text) { return *IpAddress::Parse(text); }

k8s::Service LocalLoadBalancer(const std::string& ns, const std::string& name, uint16_t health_check_port) {
  k8s::Service service;
  service.metadata.namespace_ = ns;
  service.metadata.name = name;
  service.type = k8s::ServiceType::kLoadBalancer;
  service.external_traffic_policy = k8s::TrafficPolicy::kLocal;
  service.health_check_node_port = health_check_port;
  return service;
}

k8s::Endpoint EndpointOn(const char* address, const std::string& node, bool ready = true) {
  k8s::Endpoint endpoint;
  endpoint.addresses = {Ip(address)};
  endpoint.node_name = node;
  endpoint.conditions.ready = ready;
  endpoint.conditions.serving = ready;
  return endpoint;
}

k8s::EndpointSlice SliceFor(const std::string& ns, const std::string& service,
                            std::vector<k8s::Endpoint> endpoints,
                            k8s::AddressType type = k8s::AddressType::kIPv4) {
  k8s::EndpointSlice slice;
  slice.metadata.namespace_ = ns;
  slice.metadata.name = service + "-abcde";
  if (!service.empty()) slice.metadata.labels[k8s::kServiceNameLabel] = service;
  slice.address_type = type;
  slice.endpoints = std::move(endpoints);
  return slice;
}

HealthCheckService Hc(const std::string& ns, const std::string& name, size_t count, uint16_t port = 30100) {
  return {.namespace_ = ns, .name = name, .port = port, .local_endpoints = count};
}

TEST(HealthCheckServicesFromTest, CountsReadyEndpointsOnThisNode) {
  std::vector<k8s::Service> services = {LocalLoadBalancer("default", "web", 30100)};
  std::vector<k8s::EndpointSlice> slices = {
      SliceFor("default", "web",
               {EndpointOn("10.244.1.5", "node-a"), EndpointOn("10.244.1.6", "node-a"),
                EndpointOn("10.244.1.7", "node-a", /*ready=*/false), EndpointOn("10.244.2.5", "node-b")})};
  EXPECT_THAT(HealthCheckServicesFrom(services, slices, "node-a"),
              ElementsAre(Pair(30100, Hc("default", "web", 2))));
  EXPECT_THAT(HealthCheckServicesFrom(services, slices, "node-b"),
              ElementsAre(Pair(30100, Hc("default", "web", 1))));
  // A node without endpoints still serves the port, answering 503.
  EXPECT_THAT(HealthCheckServicesFrom(services, slices, "node-c"),
              ElementsAre(Pair(30100, Hc("default", "web", 0))));
}

TEST(HealthCheckServicesFromTest, SkipsServicesWithoutLocalPolicyOrPort) {
  k8s::Service cluster_policy = LocalLoadBalancer("default", "cluster", 30101);
  cluster_policy.external_traffic_policy = k8s::TrafficPolicy::kCluster;
  k8s::Service no_port = LocalLoadBalancer("default", "no-port", 0);
  k8s::Service cluster_ip = LocalLoadBalancer("default", "cluster-ip", 30102);
  cluster_ip.type = k8s::ServiceType::kClusterIP;
  k8s::Service node_port = LocalLoadBalancer("default", "node-port", 30103);
  node_port.type = k8s::ServiceType::kNodePort;
  EXPECT_THAT(HealthCheckServicesFrom({cluster_policy, no_port, cluster_ip, node_port}, {}, "node-a"),
              ElementsAre(Pair(30103, Hc("default", "node-port", 0, 30103))));
}

TEST(HealthCheckServicesFromTest, MatchesSlicesByNamespaceAndServiceLabel) {
  std::vector<k8s::Service> services = {LocalLoadBalancer("default", "web", 30100),
                                        LocalLoadBalancer("other", "web", 30200)};
  std::vector<k8s::EndpointSlice> slices = {
      SliceFor("default", "web", {EndpointOn("10.244.1.5", "node-a")}),
      SliceFor("other", "web", {EndpointOn("10.244.1.8", "node-a"), EndpointOn("10.244.1.9", "node-a")}),
      SliceFor("default", "", {EndpointOn("10.244.1.10", "node-a")}),  // no service-name label
      SliceFor("default", "api", {EndpointOn("10.244.1.11", "node-a")}),
  };
  EXPECT_THAT(HealthCheckServicesFrom(services, slices, "node-a"),
              ElementsAre(Pair(30100, Hc("default", "web", 1)), Pair(30200, Hc("other", "web", 2, 30200))));
}

TEST(HealthCheckServicesFromTest, CountsDistinctAddressesAcrossSlicesAndFamilies) {
  std::vector<k8s::Service> services = {LocalLoadBalancer("default", "web", 30100)};
  std::vector<k8s::EndpointSlice> slices = {
      // The same endpoint in two slices (e.g. while the controller moves it) counts once.
      SliceFor("default", "web", {EndpointOn("10.244.1.5", "node-a"), EndpointOn("10.244.1.6", "node-a")}),
      SliceFor("default", "web", {EndpointOn("10.244.1.5", "node-a")}),
      // The same two pods' IPv6 addresses: dual-stack pods are not counted twice.
      SliceFor("default", "web", {EndpointOn("fd00::5", "node-a"), EndpointOn("fd00::6", "node-a")},
               k8s::AddressType::kIPv6),
  };
  EXPECT_THAT(HealthCheckServicesFrom(services, slices, "node-a"),
              ElementsAre(Pair(30100, Hc("default", "web", 2))));
}

TEST(HealthCheckServicesFromTest, DuplicatePortGoesToFirstByName) {
  std::vector<k8s::Service> services = {LocalLoadBalancer("default", "zeta", 30100),
                                        LocalLoadBalancer("default", "alpha", 30100)};
  EXPECT_THAT(HealthCheckServicesFrom(services, {}, "node-a"),
              ElementsAre(Pair(30100, Hc("default", "alpha", 0))));
}

TEST(HealthCheckResponseBodyTest, MatchesKubeProxy) {
  EXPECT_EQ(
      HealthCheckResponseBody(Hc("default", "web", 3)),
      R"({"service":{"namespace":"default","name":"web"},"localEndpoints":3,"serviceProxyHealthy":true})");
}

// A free loopback port: bind port 0, note the port, release it.
int FreeLoopbackPort() {
  HttpListener probe(1);
  EXPECT_TRUE(probe.Start("127.0.0.1", 0).ok());
  const int port = probe.port();
  probe.Stop();
  return port;
}

TEST(HealthCheckPortsTest, ServesUpdatesAndCloses) {
  const int port = FreeLoopbackPort();
  ASSERT_GT(port, 0);
  HealthCheckPorts ports("127.0.0.1");
  ports.Update({{static_cast<uint16_t>(port), Hc("default", "web", 0)}});
  ASSERT_THAT(ports.ServingPorts(), ElementsAre(port));

  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(2, 0);
  auto response = client.Get("/");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 503);
  EXPECT_EQ(
      response->body,
      R"({"service":{"namespace":"default","name":"web"},"localEndpoints":0,"serviceProxyHealthy":true})");
  EXPECT_EQ(response->get_header_value("Content-Type"), "application/json");

  // Same port, new count: answered without a restart.
  ports.Update({{static_cast<uint16_t>(port), Hc("default", "web", 2)}});
  response = client.Get("/any/path");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(
      response->body,
      R"({"service":{"namespace":"default","name":"web"},"localEndpoints":2,"serviceProxyHealthy":true})");
  EXPECT_EQ(response->get_header_value("X-Load-Balancing-Endpoint-Weight"), "2");

  ports.Update({});
  EXPECT_THAT(ports.ServingPorts(), IsEmpty());
  httplib::Client closed("127.0.0.1", port);
  closed.set_connection_timeout(1, 0);
  EXPECT_FALSE(closed.Get("/"));
}

TEST(HealthCheckPortsTest, PortInUseIsRetriedOnNextUpdate) {
  HttpListener squatter(1);
  ASSERT_TRUE(squatter.Start("127.0.0.1", 0).ok());
  const uint16_t port = static_cast<uint16_t>(squatter.port());
  HealthCheckPorts ports("127.0.0.1");
  ports.Update({{port, Hc("default", "web", 1)}});
  EXPECT_THAT(ports.ServingPorts(), IsEmpty());  // not shared with the squatter
  squatter.Stop();
  ports.Update({{port, Hc("default", "web", 1)}});
  EXPECT_THAT(ports.ServingPorts(), ElementsAre(port));
}

}  // namespace
}  // namespace weir::agent
