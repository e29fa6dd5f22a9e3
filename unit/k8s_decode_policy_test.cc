// Decoding of the kinds NetworkPolicy needs: Namespace, Pod, NetworkPolicy (proxy/k8s/decode.h).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proxy/k8s/decode.h"

namespace weir::k8s {
namespace {

IpAddress Addr(std::string_view text) { return *IpAddress::Parse(text); }
IpPrefix Prefix(std::string_view text) { return *IpPrefix::Parse(text); }

absl::StatusOr<NetworkPolicy> ParsePolicy(const std::string& spec) {
  return DecodeNetworkPolicy(YAML::Load("metadata: {name: p, namespace: shop}\nspec: " + spec));
}

void ExpectPolicyError(const std::string& spec, std::string_view message) {
  absl::StatusOr<NetworkPolicy> policy = ParsePolicy(spec);
  ASSERT_FALSE(policy.ok()) << spec;
  EXPECT_EQ(std::string(policy.status().message()), std::string(message)) << spec;
}

TEST(DecodeNamespaceTest, GetsTheNameLabelTheApiServerSets) {
  absl::StatusOr<Namespace> ns =
      DecodeNamespace(YAML::Load("metadata: {name: shop, labels: {team: retail}}"));
  ASSERT_TRUE(ns.ok()) << ns.status();
  EXPECT_EQ(ns->metadata.namespace_, "");
  EXPECT_EQ(ns->metadata.labels, (std::map<std::string, std::string>{
                                     {"team", "retail"}, {"kubernetes.io/metadata.name", "shop"}}));
}

TEST(DecodePodTest, LabelsNodeAddressesAndContainerPorts) {
  absl::StatusOr<Pod> pod = DecodePod(YAML::Load(R"(
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  nodeName: node-a
  containers:
  - name: server
    ports: [{name: http, containerPort: 8080}, {containerPort: 53, protocol: UDP}]
  - name: sidecar
    ports: [{name: metrics, containerPort: 9090, protocol: SCTP}]
status:
  phase: Running
  podIP: 10.244.1.5
  podIPs: [{ip: 10.244.1.5}, {ip: "fd00::5"}]
)"));
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->metadata.labels.at("app"), "web");
  EXPECT_EQ(pod->node_name, "node-a");
  EXPECT_FALSE(pod->host_network);
  EXPECT_EQ(pod->phase, "Running");
  EXPECT_EQ(pod->pod_ips, (std::vector<IpAddress>{Addr("10.244.1.5"), Addr("fd00::5")}));
  EXPECT_EQ(pod->ports,
            (std::vector<ContainerPort>{
                {"http", 8080, L4Proto::kTcp}, {"", 53, L4Proto::kUdp}, {"metrics", 9090, L4Proto::kSctp}}));
}

TEST(DecodePodTest, HostNetworkSingularPodIpAndErrors) {
  absl::StatusOr<Pod> pod =
      DecodePod(YAML::Load("metadata: {name: p}\nspec: {hostNetwork: true}\nstatus: {podIP: 192.168.0.10}"));
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_TRUE(pod->host_network);
  EXPECT_EQ(pod->pod_ips, std::vector<IpAddress>{Addr("192.168.0.10")});

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"spec: {containers: [{ports: [{containerPort: 70000}]}]}",
       "Pod default/p: spec.containers[0].ports[0].containerPort: 70000 is not in 1-65535"},
      {"spec: {containers: [{ports: [{name: http}]}]}",
       "Pod default/p: spec.containers[0].ports[0].containerPort: required"},
      {"spec: {containers: [{ports: [{name: Not_A_Name, containerPort: 80}]}]}",
       "Pod default/p: spec.containers[0].ports[0].name: \"Not_A_Name\" is not a valid port name"},
      {"status: {podIPs: [{ip: 10.0.0.1}, {ip: 10.0.0.2}]}",
       "Pod default/p: status.podIPs[1].ip: two addresses of the same family"},
      {"status: {podIPs: [{ip: nope}]}", "Pod default/p: status.podIPs[0].ip: invalid IP address \"nope\""},
  };
  for (const auto& [body, message] : bad) {
    absl::StatusOr<Pod> decoded = DecodePod(YAML::Load("metadata: {name: p}\n" + body));
    ASSERT_FALSE(decoded.ok()) << body;
    EXPECT_EQ(decoded.status().message(), message);
  }
}

TEST(DecodeNetworkPolicyTest, PolicyTypesDefaults) {
  // Ingress always; Egress only with egress rules.
  absl::StatusOr<NetworkPolicy> ingress_only = ParsePolicy("{podSelector: {}}");
  ASSERT_TRUE(ingress_only.ok()) << ingress_only.status();
  EXPECT_TRUE(ingress_only->ingress_type);
  EXPECT_FALSE(ingress_only->egress_type);
  absl::StatusOr<NetworkPolicy> with_egress = ParsePolicy("{podSelector: {}, egress: [{}]}");
  ASSERT_TRUE(with_egress.ok());
  EXPECT_TRUE(with_egress->ingress_type);
  EXPECT_TRUE(with_egress->egress_type);
  absl::StatusOr<NetworkPolicy> empty_egress = ParsePolicy("{podSelector: {}, egress: []}");
  ASSERT_TRUE(empty_egress.ok());
  EXPECT_FALSE(empty_egress->egress_type);
  absl::StatusOr<NetworkPolicy> explicit_egress = ParsePolicy("{podSelector: {}, policyTypes: [Egress]}");
  ASSERT_TRUE(explicit_egress.ok());
  EXPECT_FALSE(explicit_egress->ingress_type);
  EXPECT_TRUE(explicit_egress->egress_type);
}

TEST(DecodeNetworkPolicyTest, PeersPortsAndSelectors) {
  absl::StatusOr<NetworkPolicy> policy = ParsePolicy(R"(
  podSelector:
    matchLabels: {app: web}
    matchExpressions: [{key: tier, operator: In, values: [a, b]}, {key: canary, operator: DoesNotExist}]
  ingress:
  - from:
    - podSelector: {matchLabels: {role: client}}
      namespaceSelector: {matchLabels: {team: x}}
    - namespaceSelector: {}
    - ipBlock: {cidr: 10.0.0.1/8, except: [10.1.0.0/16]}
    ports:
    - {port: 80}
    - {protocol: UDP, port: dns}
    - {protocol: SCTP, port: 3000, endPort: 3010}
    - {protocol: UDP}
  egress:
  - {}
)");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->pod_selector.match_labels.at("app"), "web");
  ASSERT_EQ(policy->pod_selector.match_expressions.size(), 2u);
  EXPECT_EQ(policy->pod_selector.match_expressions[0],
            (LabelSelectorRequirement{"tier", SelectorOperator::kIn, {"a", "b"}}));
  EXPECT_EQ(policy->pod_selector.match_expressions[1].op, SelectorOperator::kDoesNotExist);
  ASSERT_EQ(policy->ingress.size(), 1u);
  const NetworkPolicyRule& rule = policy->ingress[0];
  ASSERT_EQ(rule.peers.size(), 3u);
  EXPECT_EQ(rule.peers[0].pod_selector->match_labels.at("role"), "client");
  EXPECT_EQ(rule.peers[0].namespace_selector->match_labels.at("team"), "x");
  EXPECT_FALSE(rule.peers[1].pod_selector);
  EXPECT_EQ(rule.peers[1].namespace_selector, LabelSelector{});
  // Host bits are cleared, as the datapath's prefixes need.
  EXPECT_EQ(rule.peers[2].ip_block, (IpBlock{Prefix("10.0.0.0/8"), {Prefix("10.1.0.0/16")}}));
  ASSERT_EQ(rule.ports.size(), 4u);
  EXPECT_EQ(rule.ports[0], (NetworkPolicyPort{L4Proto::kTcp, TargetPort{80, ""}, std::nullopt}));
  EXPECT_EQ(rule.ports[1], (NetworkPolicyPort{L4Proto::kUdp, TargetPort{0, "dns"}, std::nullopt}));
  EXPECT_EQ(rule.ports[2], (NetworkPolicyPort{L4Proto::kSctp, TargetPort{3000, ""}, 3010}));
  EXPECT_EQ(rule.ports[3], (NetworkPolicyPort{L4Proto::kUdp, std::nullopt, std::nullopt}));
  ASSERT_EQ(policy->egress.size(), 1u);
  EXPECT_TRUE(policy->egress[0].peers.empty());
  EXPECT_TRUE(policy->egress[0].ports.empty());
  EXPECT_TRUE(policy->egress_type);
}

TEST(DecodeNetworkPolicyTest, RejectsWhatTheApiRejects) {
  ExpectPolicyError(
      "{ingress: [{from: [{}]}]}",
      "NetworkPolicy shop/p: spec.ingress[0].from[0]: needs podSelector, namespaceSelector or ipBlock");
  ExpectPolicyError(
      "{ingress: [{from: [{podSelector: {}, ipBlock: {cidr: 10.0.0.0/8}}]}]}",
      "NetworkPolicy shop/p: spec.ingress[0].from[0]: ipBlock cannot be combined with podSelector or "
      "namespaceSelector");
  ExpectPolicyError(
      "{egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]}",
      "NetworkPolicy shop/p: spec.egress[0].to[0].ipBlock.except[0]: 11.0.0.0/16 is not inside 10.0.0.0/8");
  ExpectPolicyError(
      "{egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]}]}",
      "NetworkPolicy shop/p: spec.egress[0].to[0].ipBlock.except[0]: 10.0.0.0/8 is not inside 10.0.0.0/8");
  ExpectPolicyError("{egress: [{to: [{ipBlock: {}}]}]}",
                    "NetworkPolicy shop/p: spec.egress[0].to[0].ipBlock.cidr: required");
  ExpectPolicyError("{egress: [{to: [{ipBlock: {cidr: 10.0.0.0/33}}]}]}",
                    "NetworkPolicy shop/p: spec.egress[0].to[0].ipBlock.cidr: invalid CIDR \"10.0.0.0/33\"");
  ExpectPolicyError("{ingress: [{ports: [{port: 90, endPort: 80}]}]}",
                    "NetworkPolicy shop/p: spec.ingress[0].ports[0].endPort: 80 is less than port 90");
  ExpectPolicyError("{ingress: [{ports: [{port: http, endPort: 80}]}]}",
                    "NetworkPolicy shop/p: spec.ingress[0].ports[0].endPort: needs a numeric port");
  ExpectPolicyError("{ingress: [{ports: [{endPort: 80}]}]}",
                    "NetworkPolicy shop/p: spec.ingress[0].ports[0].endPort: needs a numeric port");
  ExpectPolicyError("{ingress: [{ports: [{port: 0}]}]}",
                    "NetworkPolicy shop/p: spec.ingress[0].ports[0].port: 0 is not in 1-65535");
  ExpectPolicyError(
      "{ingress: [{ports: [{protocol: ICMP}]}]}",
      "NetworkPolicy shop/p: spec.ingress[0].ports[0].protocol: unknown value \"ICMP\" (expected one of "
      "TCP, UDP, SCTP)");
  ExpectPolicyError(
      "{policyTypes: [Both]}",
      "NetworkPolicy shop/p: spec.policyTypes[0]: unknown value \"Both\" (expected one of Ingress, Egress)");
  ExpectPolicyError(
      "{podSelector: {matchExpressions: [{key: a, operator: In}]}}",
      "NetworkPolicy shop/p: spec.podSelector.matchExpressions[0].values: required for In and NotIn");
  ExpectPolicyError(
      "{podSelector: {matchExpressions: [{key: a, operator: Exists, values: [x]}]}}",
      "NetworkPolicy shop/p: spec.podSelector.matchExpressions[0].values: must be empty for Exists and "
      "DoesNotExist");
  ExpectPolicyError(
      "{podSelector: {matchExpressions: [{key: a, operator: Gt, values: [x]}]}}",
      "NetworkPolicy shop/p: spec.podSelector.matchExpressions[0].operator: unknown value \"Gt\" (expected "
      "one of In, NotIn, Exists, DoesNotExist)");
}

TEST(DecodeManifestsTest, PolicyKindsAreDecodedAndBadOnesSkipped) {
  std::vector<absl::Status> errors;
  absl::StatusOr<std::vector<Object>> objects = DecodeManifests(R"(
apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x}
status: {podIP: 10.0.0.1}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: x}
spec: {podSelector: {}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad, namespace: x}
spec: {ingress: [{ports: [{port: 99999}]}]}
---
apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata: {name: calico}
)",
                                                                &errors);
  ASSERT_TRUE(objects.ok()) << objects.status();
  ASSERT_EQ(objects->size(), 3u);
  EXPECT_EQ(std::get<Namespace>((*objects)[0]).metadata.name, "x");
  EXPECT_EQ(std::get<Pod>((*objects)[1]).pod_ips, std::vector<IpAddress>{Addr("10.0.0.1")});
  EXPECT_EQ(std::get<NetworkPolicy>((*objects)[2]).metadata.name, "deny");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(
      errors[0].message(),
      "document 4 (line 16): NetworkPolicy x/bad: spec.ingress[0].ports[0].port: 99999 is not in 1-65535");
}

}  // namespace
}  // namespace weir::k8s
