// Decoding API JSON for informers: the kinds defined for the API source (Pod, Namespace,
// NetworkPolicy), and Service/EndpointSlice/Node through decode.h agreeing with YAML::Load.
#include "proxy/k8s/kube_resources.h"

#include <gtest/gtest.h>

#include "proxy/k8s/decode.h"
#include "proxy/k8s/kube_json.h"
#include "unit/kube_fake_apiserver.h"

namespace weir::k8s {
namespace {

using testing::ReadTestData;

rapidjson::Document Json(const std::string& text) {
  absl::StatusOr<rapidjson::Document> document = ParseJson(text);
  EXPECT_TRUE(document.ok()) << document.status();
  return document.ok() ? std::move(*document) : rapidjson::Document();
}

TEST(KubeResourcesTest, RecordedServicesDecodeAsFromYaml) {
  for (const char* file : {"services_page1.json", "services_page2.json"}) {
    const std::string text = ReadTestData(file);
    rapidjson::Document list = Json(text);
    YAML::Node yaml = YAML::Load(text);
    ASSERT_EQ(list["items"].Size(), yaml["items"].size());
    for (rapidjson::SizeType i = 0; i < list["items"].Size(); ++i) {
      absl::StatusOr<Service> from_json = ServiceFromJson(list["items"][i]);
      absl::StatusOr<Service> from_yaml = DecodeService(yaml["items"][i]);
      ASSERT_TRUE(from_json.ok()) << from_json.status();
      ASSERT_TRUE(from_yaml.ok()) << from_yaml.status();
      EXPECT_EQ(from_json->NamespacedName(), from_yaml->NamespacedName());
      EXPECT_EQ(from_json->metadata.resource_version, from_yaml->metadata.resource_version);
      EXPECT_EQ(from_json->metadata.labels, from_yaml->metadata.labels);
      EXPECT_EQ(from_json->type, from_yaml->type);
      EXPECT_EQ(from_json->cluster_ips, from_yaml->cluster_ips);
      ASSERT_EQ(from_json->ports.size(), from_yaml->ports.size());
      for (size_t p = 0; p < from_json->ports.size(); ++p) {
        EXPECT_EQ(from_json->ports[p].port, from_yaml->ports[p].port);
        EXPECT_EQ(from_json->ports[p].node_port, from_yaml->ports[p].node_port);
        EXPECT_EQ(from_json->ports[p].target_port, from_yaml->ports[p].target_port);
        EXPECT_EQ(from_json->ports[p].protocol, from_yaml->ports[p].protocol);
      }
      EXPECT_EQ(from_json->session_affinity, from_yaml->session_affinity);
      EXPECT_EQ(from_json->affinity_timeout_seconds, from_yaml->affinity_timeout_seconds);
      EXPECT_EQ(from_json->external_traffic_policy, from_yaml->external_traffic_policy);
      EXPECT_EQ(from_json->load_balancer_ingress.size(), from_yaml->load_balancer_ingress.size());
    }
  }
  absl::StatusOr<Service> cart = ServiceFromJson(Json(ReadTestData("services_page2.json"))["items"][0]);
  ASSERT_TRUE(cart.ok());
  EXPECT_EQ(cart->affinity_timeout_seconds, 600u);
  EXPECT_EQ(cart->ports[0].target_port.name, "http");
}

TEST(KubeResourcesTest, EndpointSliceErrorsNameTheObjectAndField) {
  rapidjson::Document list = Json(ReadTestData("endpointslices_list.json"));
  absl::StatusOr<EndpointSlice> web = EndpointSliceFromJson(list["items"][0]);
  ASSERT_TRUE(web.ok()) << web.status();
  EXPECT_EQ(web->ServiceName(), "web");
  ASSERT_EQ(web->endpoints.size(), 2u);
  EXPECT_TRUE(web->endpoints[1].conditions.terminating);
  absl::StatusOr<EndpointSlice> cart = EndpointSliceFromJson(list["items"][1]);
  ASSERT_FALSE(cart.ok());
  EXPECT_NE(cart.status().message().find("shop/cart-zz999"), absl::string_view::npos) << cart.status();
  EXPECT_NE(cart.status().message().find("10.244.1.300"), absl::string_view::npos) << cart.status();
}

TEST(KubeResourcesTest, Pods) {
  rapidjson::Document list = Json(ReadTestData("pods_node_a.json"));
  absl::StatusOr<Pod> web = PodFromJson(list["items"][0]);
  ASSERT_TRUE(web.ok()) << web.status();
  EXPECT_EQ(web->metadata.namespace_, "shop");
  EXPECT_EQ(web->metadata.name, "web-7d9f-x1");
  EXPECT_EQ(web->metadata.labels.at("app"), "web");
  EXPECT_EQ(web->node_name, "node-a");
  EXPECT_FALSE(web->host_network);
  EXPECT_EQ(web->phase, "Running");
  ASSERT_EQ(web->pod_ips.size(), 2u);
  EXPECT_EQ(web->pod_ips[0].ToString(), "10.244.1.5");
  EXPECT_EQ(web->pod_ips[1].ToString(), "fd00:244:1::5");

  absl::StatusOr<Pod> proxy = PodFromJson(list["items"][1]);
  ASSERT_TRUE(proxy.ok());
  EXPECT_TRUE(proxy->host_network);
  absl::StatusOr<Pod> pending = PodFromJson(list["items"][2]);
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->pod_ips.empty());

  // Only podIP, as older servers send it.
  absl::StatusOr<Pod> old = PodFromJson(Json(R"({"metadata":{"name":"p"},"status":{"podIP":"10.0.0.9"}})"));
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->metadata.namespace_, "default");
  ASSERT_EQ(old->pod_ips.size(), 1u);

  absl::StatusOr<Pod> bad = PodFromJson(Json(R"({"metadata":{"name":"p","namespace":"x"},)"
                                             R"("status":{"podIPs":[{"ip":"10.0.0.1"},{"ip":"nope"}]}})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "Pod x/p: status.podIPs[1].ip: invalid IP address \"nope\"");
  EXPECT_EQ(PodFromJson(Json(R"({"metadata":{"namespace":"x"}})")).status().message(),
            "Pod x/<unnamed>: metadata.name: required");
  EXPECT_EQ(
      PodFromJson(Json(R"({"metadata":{"name":"p"},"spec":{"hostNetwork":"maybe"}})")).status().message(),
      "Pod default/p: spec.hostNetwork: \"maybe\" is not a boolean");
  EXPECT_FALSE(PodFromJson(Json(R"({"metadata":{"name":"p","labels":["a"]}})")).ok());
  EXPECT_FALSE(PodFromJson(Json("[]")).ok());
}

TEST(KubeResourcesTest, NamespacesAndNetworkPolicies) {
  absl::StatusOr<Namespace> ns = NamespaceFromJson(
      Json(R"({"metadata":{"name":"shop","resourceVersion":"4","labels":{"team":"retail"}}})"));
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(ns->metadata.namespace_, "");  // cluster-scoped
  EXPECT_EQ(ns->metadata.labels.at("team"), "retail");

  absl::StatusOr<NetworkPolicy> policy = NetworkPolicyFromJson(Json(
      R"({"metadata":{"name":"allow-web","namespace":"shop"},"spec":{"podSelector":{"matchLabels":{"app":"web"}},)"
      R"("ingress":[{"ports":[{"port":8080,"protocol":"TCP"}]}]}})"));
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->pod_selector.match_labels.at("app"), "web");
  EXPECT_TRUE(policy->ingress_type);
  EXPECT_FALSE(policy->egress_type);
  ASSERT_EQ(policy->ingress.size(), 1u);
  ASSERT_EQ(policy->ingress[0].ports.size(), 1u);
  EXPECT_EQ(policy->ingress[0].ports[0].port->number, 8080);
  EXPECT_FALSE(NetworkPolicyFromJson(Json(R"({"metadata":{"name":"p"},"spec":[]})")).ok());
}

TEST(KubeResourcesTest, Collections) {
  EXPECT_EQ(ServicesResource().path, "/api/v1/services");
  EXPECT_EQ(EndpointSlicesResource().path, "/apis/discovery.k8s.io/v1/endpointslices");
  EXPECT_EQ(NodesResource().path, "/api/v1/nodes");
  EXPECT_EQ(NamespacesResource().path, "/api/v1/namespaces");
  EXPECT_EQ(NetworkPoliciesResource().path, "/apis/networking.k8s.io/v1/networkpolicies");
  ResourceQuery pods = PodsOnNodeResource("node-a");
  EXPECT_EQ(pods.path, "/api/v1/pods");
  EXPECT_EQ(pods.field_selector, "spec.nodeName=node-a");
  EXPECT_EQ(pods.Describe(), "/api/v1/pods fieldSelector=spec.nodeName=node-a");
}

TEST(KubeResourcesTest, DaemonSetDeletionIsSeen) {
  rapidjson::Document live = Json(R"({"metadata": {"namespace": "kube-system", "name": "weir",
      "resourceVersion": "7", "uid": "u1"}, "spec": {}})");
  absl::StatusOr<DaemonSet> running = DaemonSetFromJson(live);
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->metadata.Describe(), "kube-system/weir");
  EXPECT_FALSE(running->deleting);

  rapidjson::Document going = Json(R"({"metadata": {"namespace": "kube-system", "name": "weir",
      "resourceVersion": "8", "deletionTimestamp": "2026-12-04T10:00:00Z"}})");
  absl::StatusOr<DaemonSet> deleting = DaemonSetFromJson(going);
  ASSERT_TRUE(deleting.ok()) << deleting.status();
  EXPECT_TRUE(deleting->deleting);

  ResourceQuery query = DaemonSetResource("kube-system", "weir");
  EXPECT_EQ(query.path, "/apis/apps/v1/namespaces/kube-system/daemonsets");
  EXPECT_EQ(query.field_selector, "metadata.name=weir");
}

}  // namespace
}  // namespace weir::k8s
