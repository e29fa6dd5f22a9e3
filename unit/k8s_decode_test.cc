#include "proxy/k8s/decode.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"

namespace weir::k8s {
namespace {

IpAddress Addr(std::string_view text) { return *IpAddress::Parse(text); }

absl::StatusOr<Service> ParseService(const std::string& yaml) { return DecodeService(YAML::Load(yaml)); }
absl::StatusOr<EndpointSlice> ParseSlice(const std::string& yaml) {
  return DecodeEndpointSlice(YAML::Load(yaml));
}

// The decoder must fail, and say which object and which field.
template <typename T>
void ExpectError(const absl::StatusOr<T>& decoded, std::string_view object, std::string_view mentions) {
  ASSERT_FALSE(decoded.ok()) << "expected an error mentioning " << mentions;
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(decoded.status().message());
  EXPECT_NE(message.find(object), std::string::npos) << message;
  EXPECT_NE(message.find(mentions), std::string::npos) << message;
}

constexpr const char kServiceHead[] =
    "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n";

// ---- Service ----

TEST(DecodeServiceTest, MinimalServiceGetsApiDefaults) {
  absl::StatusOr<Service> service =
      ParseService("metadata: {name: web}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}");
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ(service->metadata.namespace_, "default");
  EXPECT_EQ(service->metadata.name, "web");
  EXPECT_EQ(service->type, ServiceType::kClusterIP);
  EXPECT_EQ(service->cluster_ips, std::vector<IpAddress>{Addr("10.96.0.1")});
  EXPECT_FALSE(service->headless);
  ASSERT_EQ(service->ports.size(), 1u);
  EXPECT_EQ(service->ports[0].name, "");
  EXPECT_EQ(service->ports[0].protocol, L4Proto::kTcp);
  EXPECT_EQ(service->ports[0].port, 80);
  EXPECT_EQ(service->ports[0].target_port, (TargetPort{.number = 80}));
  EXPECT_EQ(service->ports[0].node_port, 0);
  EXPECT_EQ(service->session_affinity, SessionAffinity::kNone);
  EXPECT_EQ(service->affinity_timeout_seconds, 10800u);
  EXPECT_EQ(service->external_traffic_policy, TrafficPolicy::kCluster);
  EXPECT_EQ(service->internal_traffic_policy, TrafficPolicy::kCluster);
  EXPECT_TRUE(service->load_balancer_ingress.empty());
  EXPECT_FALSE(service->load_balancer_ip.has_value());
}

// As the API server returns it: JSON, every field weir reads.
TEST(DecodeServiceTest, FullServiceFromJson) {
  absl::StatusOr<Service> service = ParseService(R"({
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "web", "namespace": "shop", "uid": "6b3c-11", "resourceVersion": "9001",
                 "labels": {"app": "web", "tier": "front"}, "annotations": {"ignored": "yes"}},
    "spec": {
      "type": "LoadBalancer",
      "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20", "fd00:10:96::20"],
      "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack",
      "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http-web", "nodePort": 30080},
                {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 5353, "nodePort": 30053},
                {"name": "sig", "protocol": "SCTP", "port": 3868}],
      "externalIPs": ["198.51.100.7"],
      "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
      "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
      "loadBalancerIP": "203.0.113.99", "trafficDistribution": "PreferClose",
      "allocateLoadBalancerNodePorts": true
    },
    "status": {"loadBalancer": {"ingress": [
      {"ip": "203.0.113.10"}, {"ip": "203.0.113.11", "ipMode": "Proxy"}, {"hostname": "lb.example.com"}]}}
  })");
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ(service->metadata.uid, "6b3c-11");
  EXPECT_EQ(service->metadata.resource_version, "9001");
  EXPECT_EQ(service->metadata.labels,
            (std::map<std::string, std::string>{{"app", "web"}, {"tier", "front"}}));
  EXPECT_EQ(service->NamespacedName(), "shop/web");
  EXPECT_EQ(service->type, ServiceType::kLoadBalancer);
  EXPECT_EQ(service->cluster_ips, (std::vector<IpAddress>{Addr("10.96.0.20"), Addr("fd00:10:96::20")}));
  EXPECT_EQ(service->ip_families, (std::vector<IpFamily>{IpFamily::kV4, IpFamily::kV6}));
  ASSERT_EQ(service->ports.size(), 3u);
  EXPECT_EQ(service->ports[0].target_port, (TargetPort{.name = "http-web"}));
  EXPECT_EQ(service->ports[0].node_port, 30080);
  EXPECT_EQ(service->ports[1].protocol, L4Proto::kUdp);
  EXPECT_EQ(service->ports[1].target_port, (TargetPort{.number = 5353}));
  EXPECT_EQ(service->ports[2].protocol, L4Proto::kSctp);
  EXPECT_EQ(service->external_ips, std::vector<IpAddress>{Addr("198.51.100.7")});
  EXPECT_EQ(service->session_affinity, SessionAffinity::kClientIP);
  EXPECT_EQ(service->affinity_timeout_seconds, 600u);
  EXPECT_EQ(service->external_traffic_policy, TrafficPolicy::kLocal);
  EXPECT_EQ(service->internal_traffic_policy, TrafficPolicy::kLocal);
  EXPECT_EQ(service->health_check_node_port, 32000);
  EXPECT_EQ(service->load_balancer_ip, Addr("203.0.113.99"));
  EXPECT_EQ(service->traffic_distribution, "PreferClose");
  ASSERT_EQ(service->load_balancer_ingress.size(), 3u);
  EXPECT_EQ(service->load_balancer_ingress[0].ip, Addr("203.0.113.10"));
  EXPECT_EQ(service->load_balancer_ingress[0].ip_mode, LoadBalancerIpMode::kVip);
  EXPECT_EQ(service->load_balancer_ingress[1].ip_mode, LoadBalancerIpMode::kProxy);
  EXPECT_FALSE(service->load_balancer_ingress[2].ip.has_value());
  EXPECT_EQ(service->load_balancer_ingress[2].hostname, "lb.example.com");
}

TEST(DecodeServiceTest, SingularClusterIpWhenClusterIpsIsAbsent) {
  absl::StatusOr<Service> service = ParseService(std::string(kServiceHead) + "spec: {clusterIP: 'fd00::1'}");
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ(service->cluster_ips, std::vector<IpAddress>{Addr("fd00::1")});
}

TEST(DecodeServiceTest, HeadlessAndExternalName) {
  absl::StatusOr<Service> headless =
      ParseService(std::string(kServiceHead) + "spec: {clusterIP: None, clusterIPs: [None]}");
  ASSERT_TRUE(headless.ok()) << headless.status();
  EXPECT_TRUE(headless->headless);
  EXPECT_TRUE(headless->cluster_ips.empty());

  absl::StatusOr<Service> external =
      ParseService(std::string(kServiceHead) + "spec: {type: ExternalName, externalName: db.example.com}");
  ASSERT_TRUE(external.ok()) << external.status();
  EXPECT_EQ(external->type, ServiceType::kExternalName);
  EXPECT_EQ(external->external_name, "db.example.com");
  EXPECT_TRUE(external->cluster_ips.empty());
  EXPECT_FALSE(external->headless);
}

TEST(DecodeServiceTest, NullAndEmptyMeanAbsent) {
  absl::StatusOr<Service> service =
      ParseService(std::string(kServiceHead) +
                   "spec: {type: '', clusterIP: 10.96.0.1, externalIPs: null,"
                   " sessionAffinityConfig: ~, ports: [{port: 80, protocol: null}]}");
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ(service->type, ServiceType::kClusterIP);
  EXPECT_EQ(service->ports.at(0).protocol, L4Proto::kTcp);
}

struct BadServiceCase {
  const char* spec;
  const char* mentions;
};

TEST(DecodeServiceTest, RejectsBadFieldsNamingObjectAndField) {
  const BadServiceCase cases[] = {
      {"{ports: [{port: 70000}]}", "spec.ports[0].port: 70000 is not in 1-65535"},
      {"{ports: [{port: 0}]}", "spec.ports[0].port: 0 is not in 1-65535"},
      {"{ports: [{name: a}]}", "spec.ports[0].port: required"},
      {"{ports: [{port: eighty}]}", "spec.ports[0].port: \"eighty\" is not an integer"},
      {"{ports: [{port: 80.5}]}", "spec.ports[0].port"},
      {"{ports: [{port: [80]}]}", "spec.ports[0].port: expected a string, got a list"},
      {"{ports: [{port: 80}, {port: 81, nodePort: 65536}]}",
       "spec.ports[1].nodePort: 65536 is not in 0-65535"},
      {"{ports: [{port: 80, protocol: ICMP}]}", "spec.ports[0].protocol: unknown value \"ICMP\""},
      {"{ports: [{port: 80, protocol: tcp}]}", "spec.ports[0].protocol: unknown value \"tcp\""},
      {"{ports: [{port: 80, targetPort: Bad_Name}]}", "spec.ports[0].targetPort"},
      {"{ports: [{port: 80, targetPort: 99999}]}", "spec.ports[0].targetPort: 99999 is not in 0-65535"},
      {"{ports: {port: 80}}", "spec.ports: expected a list, got a map"},
      {"{ports: [null]}", "spec.ports[0]: expected a map, got null"},
      {"{ports: [80]}", "spec.ports[0]: expected a map, got a scalar"},
      {"{clusterIP: 10.96.0.300}", "spec.clusterIP: invalid IP address \"10.96.0.300\""},
      {"{clusterIPs: [10.96.0.1, 10.96.0.2]}", "spec.clusterIPs[1]: two addresses of the same family"},
      {"{clusterIPs: [10.96.0.1/32]}", "spec.clusterIPs[0]: invalid IP address"},
      {"{type: Nodeport}", "spec.type: unknown value \"Nodeport\""},
      {"{externalIPs: [not-an-ip]}", "spec.externalIPs[0]: invalid IP address"},
      {"{externalTrafficPolicy: Global}", "spec.externalTrafficPolicy: unknown value"},
      {"{internalTrafficPolicy: local}", "spec.internalTrafficPolicy: unknown value"},
      {"{sessionAffinity: Cookie}", "spec.sessionAffinity: unknown value"},
      {"{sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}}",
       "spec.sessionAffinityConfig.clientIP.timeoutSeconds: 0 is not in 1-86400"},
      {"{sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}}",
       "timeoutSeconds: 86401 is not in 1-86400"},
      {"{sessionAffinityConfig: {clientIP: 5}}", "spec.sessionAffinityConfig.clientIP: expected a map"},
      {"{ipFamilies: [IPv5]}", "spec.ipFamilies[0]: unknown value \"IPv5\""},
      {"{healthCheckNodePort: -1}", "spec.healthCheckNodePort: -1 is not in 0-65535"},
      {"[1, 2]", "spec: expected a map, got a list"},
  };
  for (const BadServiceCase& bad : cases) {
    SCOPED_TRACE(bad.spec);
    ExpectError(ParseService(std::string(kServiceHead) + "spec: " + bad.spec), "Service shop/web",
                bad.mentions);
  }
}

// spec.loadBalancerIP is only a request to the cloud and the API server keeps forms it merely warns
// about: an unreadable one is dropped, the Service is kept.
TEST(DecodeServiceTest, UnreadableLoadBalancerIpKeepsTheService) {
  auto decoded =
      ParseService(std::string(kServiceHead) + "spec: {clusterIP: 10.96.0.9, loadBalancerIP: 203.0.113.010}");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_FALSE(decoded->load_balancer_ip.has_value());
}

TEST(DecodeServiceTest, RejectsBadStatusAndMetadata) {
  ExpectError(
      ParseService(std::string(kServiceHead) + "status: {loadBalancer: {ingress: [{ip: 300.1.1.1}]}}"),
      "Service shop/web", "status.loadBalancer.ingress[0].ip: invalid IP address");
  ExpectError(ParseService(std::string(kServiceHead) +
                           "status: {loadBalancer: {ingress: [{ip: 1.1.1.1, ipMode: vip}]}}"),
              "Service shop/web", "status.loadBalancer.ingress[0].ipMode: unknown value \"vip\"");
  ExpectError(ParseService("metadata: {namespace: shop}\nspec: {}"), "Service shop/<unnamed>",
              "metadata.name: required");
  ExpectError(ParseService("metadata: [web]\nspec: {}"), "Service", "metadata: expected a map, got a list");
  ExpectError(ParseService("metadata: {name: web, labels: {app: [a, b]}}"), "Service default/web",
              "metadata.labels[app]: expected a string, got a list");
  ExpectError(ParseService("just text"), "Service", "expected a map, got a scalar");
}

// ---- EndpointSlice ----

constexpr const char kSliceHead[] =
    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}\n";

TEST(DecodeEndpointSliceTest, ConditionsFollowTheApiNilRules) {
  absl::StatusOr<EndpointSlice> slice = ParseSlice(std::string(kSliceHead) + R"(
addressType: IPv4
ports: [{name: http, port: 8080}, {name: dns, protocol: UDP, port: 53}, {name: any}]
endpoints:
- addresses: [10.244.1.5, 10.244.1.6]
  nodeName: node-a
  zone: zone-a
  hints: {forZones: [{name: zone-a}, {name: zone-b}], forNodes: [{name: node-a}]}
- addresses: [10.244.1.7]
  conditions: {ready: false}
- addresses: [10.244.1.8]
  conditions: {ready: false, serving: true, terminating: true}
- addresses: [10.244.1.9]
  conditions: {ready: false, serving: false, terminating: false}
)");
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_EQ(slice->ServiceName(), "web");
  EXPECT_EQ(slice->address_type, AddressType::kIPv4);
  ASSERT_EQ(slice->ports.size(), 3u);
  EXPECT_EQ(slice->ports[0].protocol, L4Proto::kTcp);
  EXPECT_EQ(slice->ports[0].port, 8080);
  EXPECT_EQ(slice->ports[1].protocol, L4Proto::kUdp);
  EXPECT_FALSE(slice->ports[2].port.has_value());
  ASSERT_EQ(slice->endpoints.size(), 4u);

  const Endpoint& first = slice->endpoints[0];
  EXPECT_EQ(first.addresses, (std::vector<IpAddress>{Addr("10.244.1.5"), Addr("10.244.1.6")}));
  EXPECT_EQ(first.node_name, "node-a");
  EXPECT_EQ(first.zone, "zone-a");
  EXPECT_EQ(first.zone_hints, (std::vector<std::string>{"zone-a", "zone-b"}));
  EXPECT_EQ(first.node_hints, std::vector<std::string>{"node-a"});
  // No conditions at all: ready, serving, not terminating.
  EXPECT_TRUE(first.conditions.ready);
  EXPECT_TRUE(first.conditions.serving);
  EXPECT_FALSE(first.conditions.terminating);
  // serving nil means true whatever ready says (current API docs; what kube-proxy does).
  EXPECT_FALSE(slice->endpoints[1].conditions.ready);
  EXPECT_TRUE(slice->endpoints[1].conditions.serving);
  EXPECT_FALSE(slice->endpoints[1].conditions.terminating);
  EXPECT_TRUE(slice->endpoints[2].conditions.serving);
  EXPECT_TRUE(slice->endpoints[2].conditions.terminating);
  EXPECT_FALSE(slice->endpoints[3].conditions.serving);
}

TEST(DecodeEndpointSliceTest, LastChangeTriggerTimeIsReadAndABadOneIgnored) {
  absl::StatusOr<EndpointSlice> slice = ParseSlice(R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  annotations: {endpoints.kubernetes.io/last-change-trigger-time: "2026-12-04T17:00:01.5Z"}
addressType: IPv4
)");
  ASSERT_TRUE(slice.ok()) << slice.status();
  ASSERT_TRUE(slice->last_change_trigger_time.has_value());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(
                slice->last_change_trigger_time->time_since_epoch())
                .count(),
            1796403601500);
  absl::StatusOr<EndpointSlice> bad = ParseSlice(R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  annotations: {endpoints.kubernetes.io/last-change-trigger-time: "yesterday"}
addressType: IPv4
)");
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_FALSE(bad->last_change_trigger_time.has_value());
}

TEST(DecodeEndpointSliceTest, Ipv6AndFqdn) {
  absl::StatusOr<EndpointSlice> v6 = ParseSlice(
      std::string(kSliceHead) + "addressType: IPv6\nendpoints: [{addresses: ['fd00:10:244:1::5']}]");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->endpoints.at(0).addresses.at(0), Addr("fd00:10:244:1::5"));

  absl::StatusOr<EndpointSlice> fqdn = ParseSlice(std::string(kSliceHead) +
                                                  "addressType: FQDN\nports: [{name: http, port: 80}]\n"
                                                  "endpoints: [{addresses: [web.example.com]}]");
  ASSERT_TRUE(fqdn.ok()) << fqdn.status();
  EXPECT_EQ(fqdn->address_type, AddressType::kFqdn);
  EXPECT_TRUE(fqdn->endpoints.empty());
  EXPECT_EQ(fqdn->ports.size(), 1u);
}

TEST(DecodeEndpointSliceTest, SliceWithoutServiceLabelHasNoServiceName) {
  absl::StatusOr<EndpointSlice> slice = ParseSlice("metadata: {name: orphan}\naddressType: IPv4");
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_EQ(slice->ServiceName(), "");
  EXPECT_EQ(slice->metadata.namespace_, "default");
}

TEST(DecodeEndpointSliceTest, RejectsBadFieldsNamingObjectAndField) {
  const BadServiceCase cases[] = {
      {"endpoints: []", "addressType: required"},
      {"addressType: IPv5", "addressType: unknown value \"IPv5\""},
      {"addressType: IPv4\nendpoints: [{addresses: [10.244.1.300]}]",
       "endpoints[0].addresses[0]: invalid IP address"},
      {"addressType: IPv4\nendpoints: [{addresses: ['fd00::5']}]",
       "endpoints[0].addresses[0]: fd00::5 does not match addressType"},
      {"addressType: IPv6\nendpoints: [{addresses: [10.0.0.1]}]", "does not match addressType"},
      {"addressType: IPv4\nendpoints: [{addresses: []}]",
       "endpoints[0].addresses: at least one address is required"},
      {"addressType: IPv4\nendpoints: [{nodeName: node-a}]",
       "endpoints[0].addresses: at least one address is required"},
      {"addressType: IPv4\nendpoints: [{addresses: 10.0.0.1}]",
       "endpoints[0].addresses: expected a list, got a scalar"},
      {"addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], conditions: {ready: maybe}}]",
       "endpoints[0].conditions.ready: \"maybe\" is not a boolean"},
      {"addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], conditions: true}]",
       "endpoints[0].conditions: expected a map"},
      {"addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], hints: {forZones: zone-a}}]",
       "endpoints[0].hints.forZones: expected a list"},
      {"addressType: IPv4\nendpoints: [~]", "endpoints[0]: expected a map, got null"},
      {"addressType: IPv4\nports: [{name: http, port: 0}]", "ports[0].port: 0 is not in 1-65535"},
      {"addressType: IPv4\nports: [{name: http, port: 80, protocol: ICMP}]",
       "ports[0].protocol: unknown value"},
  };
  for (const BadServiceCase& bad : cases) {
    SCOPED_TRACE(bad.spec);
    ExpectError(ParseSlice(std::string(kSliceHead) + bad.spec), "EndpointSlice shop/web-1", bad.mentions);
  }
}

// ---- Node ----

TEST(DecodeNodeTest, AddressesCidrsAndZone) {
  absl::StatusOr<Node> node = DecodeNode(YAML::Load(R"(
apiVersion: v1
kind: Node
metadata:
  name: node-a
  labels: {topology.kubernetes.io/zone: zone-a, kubernetes.io/hostname: node-a}
spec:
  podCIDR: 10.244.1.0/24
  podCIDRs: [10.244.1.0/24, "fd00:10:244:1::/64"]
status:
  addresses:
  - {type: InternalIP, address: 192.168.0.10}
  - {type: InternalIP, address: "fd00:192:168::10"}
  - {type: ExternalIP, address: 203.0.113.5}
  - {type: Hostname, address: node-a}
)"));
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->metadata.name, "node-a");
  EXPECT_EQ(node->metadata.namespace_, "");
  EXPECT_EQ(node->Zone(), "zone-a");
  EXPECT_EQ(node->pod_cidrs, (std::vector<IpPrefix>{*IpPrefix::Parse("10.244.1.0/24"),
                                                    *IpPrefix::Parse("fd00:10:244:1::/64")}));
  ASSERT_EQ(node->addresses.size(), 4u);
  EXPECT_EQ(node->addresses[0].ip, Addr("192.168.0.10"));
  EXPECT_EQ(node->addresses[1].ip, Addr("fd00:192:168::10"));
  EXPECT_EQ(node->addresses[2].type, "ExternalIP");
  EXPECT_EQ(node->addresses[3].type, "Hostname");
  EXPECT_EQ(node->addresses[3].address, "node-a");
  EXPECT_FALSE(node->addresses[3].ip.has_value());
}

TEST(DecodeNodeTest, SingularPodCidrAndErrors) {
  absl::StatusOr<Node> node = DecodeNode(YAML::Load("metadata: {name: n}\nspec: {podCIDR: 10.244.7.0/24}"));
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->pod_cidrs, std::vector<IpPrefix>{*IpPrefix::Parse("10.244.7.0/24")});
  EXPECT_EQ(node->Zone(), "");

  ExpectError(DecodeNode(YAML::Load("metadata: {name: n}\nspec: {podCIDRs: [10.244.7.0/33]}")), "Node n",
              "spec.podCIDRs[0]: invalid CIDR");
  ExpectError(DecodeNode(YAML::Load(
                  "metadata: {name: n}\nstatus: {addresses: [{type: InternalIP, address: node-a}]}")),
              "Node n", "status.addresses[0].address: invalid IP address");
}

// ---- Manifests ----

TEST(DecodeManifestsTest, MultiDocumentYamlWithListsAndUnknownKinds) {
  std::vector<absl::Status> errors;
  absl::StatusOr<std::vector<Object>> objects = DecodeManifests(R"(
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: knative}
---
apiVersion: v1
kind: Service
metadata: {name: a}
spec: {clusterIP: 10.96.0.1}
---
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Node, metadata: {name: node-a}}
- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, metadata: {name: a-1}, addressType: IPv4}
- {apiVersion: apps/v1, kind: Deployment, metadata: {name: d}}
---
apiVersion: v1
kind: ServiceList
items:
- {metadata: {name: b}, spec: {clusterIP: 10.96.0.2}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSliceList
items:
- {metadata: {name: b-1}, addressType: IPv6}
)",
                                                                &errors);
  ASSERT_TRUE(objects.ok()) << objects.status();
  EXPECT_TRUE(errors.empty()) << errors.at(0);
  ASSERT_EQ(objects->size(), 5u);
  EXPECT_EQ(std::get<Service>((*objects)[0]).metadata.name, "a");
  EXPECT_EQ(std::get<Node>((*objects)[1]).metadata.name, "node-a");
  EXPECT_EQ(std::get<EndpointSlice>((*objects)[2]).metadata.name, "a-1");
  EXPECT_EQ(std::get<Service>((*objects)[3]).metadata.name, "b");
  EXPECT_EQ(std::get<EndpointSlice>((*objects)[4]).address_type, AddressType::kIPv6);
}

TEST(DecodeManifestsTest, JsonDocument) {
  absl::StatusOr<std::vector<Object>> objects = DecodeManifests(
      R"({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"clusterIP": "10.96.0.1"}})");
  ASSERT_TRUE(objects.ok()) << objects.status();
  ASSERT_EQ(objects->size(), 1u);
  EXPECT_EQ(std::get<Service>(objects->front()).cluster_ips.at(0), Addr("10.96.0.1"));
}

TEST(DecodeManifestsTest, BadObjectsAreSkippedAndReportedPerDocument) {
  std::vector<absl::Status> errors;
  absl::StatusOr<std::vector<Object>> objects = DecodeManifests(R"(
apiVersion: v1
kind: Service
metadata: {name: bad}
spec: {ports: [{port: 99999}]}
---
- a list, not an object
---
kind: Service
metadata: {name: no-api-version}
---
apiVersion: v1
kind: List
items:
- {metadata: {name: no-kind}}
- {apiVersion: v1, kind: Service, metadata: {name: listed-bad}, spec: {clusterIP: nope}}
- {apiVersion: v1, kind: Service, metadata: {name: listed-good}}
---
apiVersion: v1
kind: List
items: {not: a list}
---
apiVersion: [v1]
kind: Service
---
apiVersion: v1
kind: Service
metadata: {name: good}
)",
                                                                &errors);
  ASSERT_TRUE(objects.ok()) << objects.status();
  ASSERT_EQ(objects->size(), 2u);
  EXPECT_EQ(std::get<Service>((*objects)[0]).metadata.name, "listed-good");
  EXPECT_EQ(std::get<Service>((*objects)[1]).metadata.name, "good");
  std::vector<std::string> messages;
  for (const absl::Status& error : errors) messages.emplace_back(error.message());
  EXPECT_EQ(messages,
            (std::vector<std::string>{
                "document 1 (line 2): Service default/bad: spec.ports[0].port: 99999 is not in 1-65535",
                "document 2 (line 7): expected an object, got a list",
                "document 3 (line 9): apiVersion and kind are required",
                "document 4 (line 12) items[0]: apiVersion and kind are required",
                "document 4 (line 12) items[1]: Service default/listed-bad: "
                "spec.clusterIP: invalid IP address \"nope\"",
                "document 5 (line 19) List: items: expected a list, got a map",
                "document 6 (line 23): apiVersion: expected a string, got a list",
            }));
}

TEST(DecodeManifestsTest, EmptyTextHasNoObjects) {
  for (const char* text : {"", "---\n", "# only a comment\n", "---\n---\n~\n"}) {
    absl::StatusOr<std::vector<Object>> objects = DecodeManifests(text);
    ASSERT_TRUE(objects.ok()) << text << ": " << objects.status();
    EXPECT_TRUE(objects->empty()) << text;
  }
}

TEST(DecodeManifestsTest, TextThatIsNotYamlFailsTheCall) {
  for (const char* text : {"a: [1, 2\n", "{\"unterminated\": ", "a: b\n c: d: e\n"}) {
    absl::StatusOr<std::vector<Object>> objects = DecodeManifests(text);
    EXPECT_FALSE(objects.ok()) << text;
  }
}

// yaml-cpp 0.7's LoadAll spins forever, allocating, on these; DecodeManifests must not.
TEST(DecodeManifestsTest, InputThatHangsYamlCppLoadAllReturns) {
  for (const char* text : {",", "- a\n,\n", "apiVersion: v1\n---\n,\n---\napiVersion: v1\n", "- !+(.,.)"}) {
    std::vector<absl::Status> errors;
    absl::StatusOr<std::vector<Object>> objects = DecodeManifests(text, &errors);
    if (objects.ok()) {
      EXPECT_TRUE(objects->empty()) << text;
    }
  }
}

TEST(DecodeManifestsTest, DocumentMarkers) {
  std::vector<absl::Status> errors;
  absl::StatusOr<std::vector<Object>> objects = DecodeManifests(
      "# leading comment\r\n"
      "--- {apiVersion: v1, kind: Service, metadata: {name: inline}}\r\n"
      "...\r\n"
      "--- # a comment after the marker\r\n"
      "apiVersion: v1\r\n"
      "kind: Service\r\n"
      "metadata:\r\n"
      "  name: crlf\r\n"
      "  labels:\r\n"
      "    note: |\r\n"
      "      ---\r\n"
      "      not a marker: indented inside a block scalar\r\n"
      "---\r\n"
      "---\r\n"
      "apiVersion: v1\n"
      "kind: Service\n"
      "metadata: {name: last}\n",
      &errors);
  ASSERT_TRUE(objects.ok()) << objects.status();
  EXPECT_TRUE(errors.empty()) << errors.at(0);
  ASSERT_EQ(objects->size(), 3u);
  EXPECT_EQ(std::get<Service>((*objects)[0]).metadata.name, "inline");
  const Service& crlf = std::get<Service>((*objects)[1]);
  EXPECT_EQ(crlf.metadata.name, "crlf");
  EXPECT_EQ(crlf.metadata.labels.at("note"), "---\nnot a marker: indented inside a block scalar\n");
  EXPECT_EQ(std::get<Service>((*objects)[2]).metadata.name, "last");
}

TEST(DecodeManifestsTest, SyntaxErrorsGiveTheLineInTheWholeText) {
  absl::StatusOr<std::vector<Object>> objects =
      DecodeManifests("apiVersion: v1\nkind: Service\n---\napiVersion: v1\nkind: [Service\n");
  ASSERT_FALSE(objects.ok());
  EXPECT_NE(std::string(objects.status().message()).find("not valid YAML at line 6"), std::string::npos)
      << objects.status();
}

TEST(DecodeManifestsTest, DeepNestingDoesNotCrash) {
  const std::string deep =
      "apiVersion: v1\nkind: Service\nmetadata: {name: deep}\nspec: {ports: " + std::string(5000, '[') +
      std::string(5000, ']') + "}\n";
  std::vector<absl::Status> errors;
  absl::StatusOr<std::vector<Object>> objects = DecodeManifests(deep, &errors);
  // Either yaml-cpp refuses the depth or the decoder rejects the shape; neither may throw.
  if (objects.ok()) {
    EXPECT_TRUE(objects->empty());
  }

  std::string nested_lists;
  for (int i = 0; i < 10; ++i) {
    const std::string indent(2 * i, ' ');
    nested_lists += indent + "- apiVersion: v1\n" + indent + "  kind: List\n" + indent + "  items:\n";
  }
  nested_lists = "apiVersion: v1\nkind: List\nitems:\n" + nested_lists;
  errors.clear();
  objects = DecodeManifests(nested_lists, &errors);
  ASSERT_TRUE(objects.ok()) << objects.status();
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(std::string(errors.back().message()).find("nested too deeply"), std::string::npos)
      << errors.back();
}

// Every one-line mutation of a realistic manifest must decode or fail cleanly, never throw.
TEST(DecodeManifestsTest, MutatedManifestsNeverThrow) {
  const std::string base = R"(apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  type: LoadBalancer
  clusterIPs: [10.96.0.20, "fd00::20"]
  ports:
  - name: http
    port: 80
    targetPort: http-web
    nodePort: 30080
  externalIPs: [198.51.100.7]
  sessionAffinityConfig:
    clientIP:
      timeoutSeconds: 600
status:
  loadBalancer:
    ingress:
    - ip: 203.0.113.10
      ipMode: VIP
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- name: http
  port: 8080
endpoints:
- addresses: [10.244.1.5]
  conditions:
    ready: true
  hints:
    forZones:
    - name: zone-a
)";
  const std::vector<std::string> lines = absl::StrSplit(base, '\n');
  const char* replacements[] = {"[]", "{}", "~", "7", "[[1]]", "{a: {b: c}}", "'x'", "-1", "true"};
  int decoded = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<std::string> variants;
    // Drop the line.
    std::string dropped;
    for (size_t j = 0; j < lines.size(); ++j) {
      if (j != i) dropped += lines[j] + "\n";
    }
    variants.push_back(dropped);
    // Replace the value after "key:" on the line.
    const size_t colon = lines[i].find(':');
    if (colon != std::string::npos) {
      for (const char* replacement : replacements) {
        std::string text;
        for (size_t j = 0; j < lines.size(); ++j) {
          text += (j == i ? lines[j].substr(0, colon + 1) + " " + replacement : lines[j]) + "\n";
        }
        variants.push_back(text);
      }
    }
    for (const std::string& text : variants) {
      std::vector<absl::Status> errors;
      absl::StatusOr<std::vector<Object>> objects;
      ASSERT_NO_THROW(objects = DecodeManifests(text, &errors)) << text;
      if (objects.ok()) decoded += static_cast<int>(objects->size());
    }
  }
  EXPECT_GT(decoded, 0);
}

}  // namespace
}  // namespace weir::k8s

namespace weir::k8s {
namespace {

// kube-proxy's EndpointSlice informer selects `!service.kubernetes.io/headless`: a slice so labelled
// serves no Service, even one with a cluster IP (upstream e2e "should implement
// service.kubernetes.io/headless").
TEST(EndpointSliceTest, HeadlessLabelDetachesTheSliceFromItsService) {
  EndpointSlice slice;
  slice.metadata.labels = {{std::string(kServiceNameLabel), "web"}};
  EXPECT_EQ(slice.ServiceName(), "web");
  slice.metadata.labels[kHeadlessLabel] = "";
  EXPECT_EQ(slice.ServiceName(), "");
}

}  // namespace
}  // namespace weir::k8s
