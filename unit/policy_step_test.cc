// The agent's policy step against a recording PolicyWriter: what it writes when pods, namespaces
// and policies change, the policy_ids it hands out, the peers, audit mode, and CNI ADD's request.
#include "proxy/agent/policy_step.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "bpf/abi/events.h"
#include "bpf/abi/policy.h"
#include "lib/abi_codec.h"
#include "lib/agent_socket.h"
#include "proxy/agent/policy_socket.h"
#include "proxy/k8s/decode.h"
#include "proxy/source/manifest_dir.h"
#include "proxy/weirctl/event_view.h"
#include "proxy/weirctl/policy_command.h"
#include "proxy/weirctl/policy_directory.h"
#include "rapidjson/document.h"

namespace weir::agent {
namespace {

using policy::EndpointEnforcement;
using policy::EnforcementMode;
using policy::ObjectRef;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// Records every call; the state it ends with is what a datapath would hold.
class RecordingWriter : public policy::PolicyWriter {
 public:
  absl::Status SetPeers(const std::map<IpPrefix, policy::Identity>& new_peers) override {
    ++peer_writes;
    peers = new_peers;
    return absl::OkStatus();
  }
  absl::Status WriteEndpoint(const EndpointEnforcement& endpoint) override {
    if (fail_writes) return absl::UnavailableError("map full");
    written.push_back(endpoint);
    endpoints[endpoint.policy_id] = endpoint;
    return absl::OkStatus();
  }
  absl::Status RemoveEndpoint(uint32_t policy_id) override {
    removed.push_back(policy_id);
    endpoints.erase(policy_id);
    return absl::OkStatus();
  }

  // The pods written since the last call, by name.
  std::vector<std::string> TakeWrittenNames(const PolicyStep& step) {
    std::map<uint32_t, std::string> names;
    for (const auto& [ref, enforcement] : step.Written()) names[enforcement.policy_id] = ref.name;
    std::vector<std::string> out;
    for (const EndpointEnforcement& e : written)
      out.push_back(names.count(e.policy_id) ? names[e.policy_id] : "?");
    written.clear();
    return out;
  }

  int peer_writes = 0;
  bool fail_writes = false;
  std::map<IpPrefix, policy::Identity> peers;
  std::vector<EndpointEnforcement> written;
  std::vector<uint32_t> removed;
  std::map<uint32_t, EndpointEnforcement> endpoints;
};

k8s::Namespace Ns(const std::string& name, const std::string& labels = "{}") {
  return *k8s::DecodeNamespace(YAML::Load("metadata: {name: " + name + ", labels: " + labels + "}"));
}

k8s::Pod Pod(const std::string& ns, const std::string& name, const std::string& labels,
             const std::string& node, const std::string& ip, bool host_network = false) {
  std::string text = "metadata: {name: " + name + ", namespace: " + ns + ", labels: " + labels +
                     "}\nspec: {nodeName: " + node + (host_network ? ", hostNetwork: true" : "") +
                     "}\nstatus: {phase: Running" + (ip.empty() ? "" : ", podIPs: [{ip: " + ip + "}]") + "}";
  return *k8s::DecodePod(YAML::Load(text));
}

k8s::NetworkPolicy Policy(const std::string& text) { return *k8s::DecodeNetworkPolicy(YAML::Load(text)); }

// x/a is isolated for ingress, admitting app=b; x/c for ingress, admitting app=other.
k8s::NetworkPolicy AllowBToA() {
  return Policy(R"(
metadata: {name: allow-b, namespace: x}
spec:
  podSelector: {matchLabels: {app: a}}
  ingress: [{from: [{podSelector: {matchLabels: {app: b}}}]}]
)");
}
k8s::NetworkPolicy AllowOtherToC() {
  return Policy(R"(
metadata: {name: allow-other, namespace: x}
spec:
  podSelector: {matchLabels: {app: c}}
  ingress: [{from: [{podSelector: {matchLabels: {app: other}}}]}]
)");
}

k8s::Node Node(const std::string& name, const std::string& ip) {
  return *k8s::DecodeNode(YAML::Load("metadata: {name: " + name +
                                     "}\nstatus: {addresses: [{type: InternalIP, address: " + ip + "}]}"));
}

k8s::ObjectSet Cluster() {
  k8s::ObjectSet objects;
  objects.nodes = {Node("n1", "192.168.0.1"), Node("n2", "192.168.0.2")};
  objects.namespaces = {Ns("x")};
  objects.pods = {Pod("x", "a", "{app: a}", "n1", "10.0.1.1"), Pod("x", "b", "{app: b}", "n1", "10.0.1.2"),
                  Pod("x", "c", "{app: c}", "n1", "10.0.1.3"), Pod("x", "d", "{app: b}", "n2", "10.0.2.1")};
  objects.network_policies = {AllowBToA(), AllowOtherToC()};
  return objects;
}

template <typename T>
k8s::KeyedObject<T> Changed(const T& object) {
  return {object.metadata.namespace_.empty() ? object.metadata.name
                                             : object.metadata.namespace_ + "/" + object.metadata.name,
          object};
}

class PolicyStepTest : public ::testing::Test {
 protected:
  Metrics metrics;
  RecordingWriter writer;
  PolicyStep step{{.node_name = "n1"}, writer, metrics};

  EndpointEnforcement WrittenFor(const std::string& ns, const std::string& name) {
    return step.Written().at(ObjectRef{ns, name});
  }
};

TEST_F(PolicyStepTest, WritesEveryLocalEndpointAndNothingForOtherNodes) {
  ASSERT_TRUE(step.SyncAll(Cluster()));
  EXPECT_THAT(writer.TakeWrittenNames(step), UnorderedElementsAre("a", "b", "c"));  // d is on n2
  const EndpointEnforcement a = WrittenFor("x", "a");
  EXPECT_TRUE(a.policy.ingress.isolated);
  EXPECT_FALSE(a.policy.egress.isolated);
  ASSERT_EQ(a.policy.ingress.allowed.size(), 1u);
  // b (here) and d (on n2) share labels, so one identity admits both.
  const policy::Identity b_identity = WrittenFor("x", "b").policy.identity;
  EXPECT_EQ(a.policy.ingress.allowed.begin()->peer.identity, b_identity);
  EXPECT_EQ(writer.peers.at(*IpPrefix::Parse("10.0.2.1/32")), b_identity);
  EXPECT_EQ(a.ingress_mode, EnforcementMode::kEnforce);
}

TEST_F(PolicyStepTest, APodRelabelRewritesOnlyWhatDependsOnIt) {
  ASSERT_TRUE(step.SyncAll(Cluster()));
  writer.TakeWrittenNames(step);
  const uint32_t a_id = WrittenFor("x", "a").policy_id;
  // b leaves app=b: a's rule now admits only d's identity, which b no longer shares; c's policy
  // never named b's labels and is left alone.
  SourceChanges changes;
  changes.pods = {Changed(Pod("x", "b", "{app: b2}", "n1", "10.0.1.2"))};
  ASSERT_TRUE(step.SyncChanged(changes));
  EXPECT_THAT(writer.TakeWrittenNames(step), UnorderedElementsAre("b"));
  // a's allowed entry still names the identity of app=b (d keeps it): unchanged, not rewritten.
  EXPECT_EQ(WrittenFor("x", "a").policy_id, a_id);
  EXPECT_NE(writer.peers.at(*IpPrefix::Parse("10.0.1.2/32")),
            writer.peers.at(*IpPrefix::Parse("10.0.2.1/32")));

  // d goes too: app=b has no pod left, so a admits nothing now.
  changes = {};
  changes.pods = {{"x/d", std::nullopt}};
  ASSERT_TRUE(step.SyncChanged(changes));
  EXPECT_THAT(writer.TakeWrittenNames(step), ElementsAre("a"));
  EXPECT_THAT(WrittenFor("x", "a").policy.ingress.allowed, IsEmpty());
  EXPECT_EQ(WrittenFor("x", "a").policy_id, a_id);  // the same pod keeps its id
  EXPECT_FALSE(writer.peers.count(*IpPrefix::Parse("10.0.2.1/32")));

  // An unchanged pod (a status-only update) writes nothing.
  changes = {};
  changes.pods = {Changed(Pod("x", "c", "{app: c}", "n1", "10.0.1.3"))};
  ASSERT_TRUE(step.SyncChanged(changes));
  EXPECT_THAT(writer.TakeWrittenNames(step), IsEmpty());
}

TEST_F(PolicyStepTest, PolicyIdsStayWithTheirPodAndGoWithIt) {
  ASSERT_TRUE(step.SyncAll(Cluster()));
  std::set<uint32_t> ids;
  for (const auto& [ref, enforcement] : step.Written()) {
    EXPECT_NE(enforcement.policy_id, 0u);
    ids.insert(enforcement.policy_id);
  }
  EXPECT_EQ(ids.size(), 3u);
  const uint32_t c_id = WrittenFor("x", "c").policy_id;
  // Relabels and policy edits keep the id.
  SourceChanges changes;
  changes.pods = {Changed(Pod("x", "c", "{app: c, tier: web}", "n1", "10.0.1.3"))};
  changes.network_policies = {{"x/allow-other", std::nullopt}};
  ASSERT_TRUE(step.SyncChanged(changes));
  EXPECT_EQ(WrittenFor("x", "c").policy_id, c_id);
  EXPECT_FALSE(WrittenFor("x", "c").policy.ingress.isolated);
  // A deleted pod's id is removed and not handed to the next pod.
  changes = {};
  changes.pods = {{"x/c", std::nullopt}};
  ASSERT_TRUE(step.SyncChanged(changes));
  EXPECT_THAT(writer.removed, ElementsAre(c_id));
  changes = {};
  changes.pods = {Changed(Pod("x", "e", "{app: e}", "n1", "10.0.1.9"))};
  ASSERT_TRUE(step.SyncChanged(changes));
  EXPECT_FALSE(ids.count(WrittenFor("x", "e").policy_id));
  // A complete sync of the same view writes nothing again.
  writer.written.clear();
  k8s::ObjectSet objects = Cluster();
  objects.pods = {Pod("x", "a", "{app: a}", "n1", "10.0.1.1"), Pod("x", "b", "{app: b}", "n1", "10.0.1.2"),
                  Pod("x", "d", "{app: b}", "n2", "10.0.2.1"), Pod("x", "e", "{app: e}", "n1", "10.0.1.9")};
  objects.network_policies = {AllowBToA()};
  ASSERT_TRUE(step.SyncAll(objects));
  EXPECT_THAT(writer.written, IsEmpty());
}

TEST_F(PolicyStepTest, PeersNameNodesHostNetworkPodsAndPods) {
  k8s::ObjectSet objects = Cluster();
  objects.pods.push_back(
      Pod("kube-system", "proxy-n1", "{k: v}", "n1", "192.168.0.1", /*host_network=*/true));
  objects.pods.push_back(
      Pod("kube-system", "proxy-n2", "{k: v}", "n2", "192.168.0.12", /*host_network=*/true));
  PolicyStep with_addresses({.node_name = "n1", .node_addresses = {*IpAddress::Parse("fd00::1")}}, writer,
                            metrics);
  ASSERT_TRUE(with_addresses.SyncAll(objects));
  auto peer = [&](const char* prefix) { return writer.peers.at(*IpPrefix::Parse(prefix)); };
  EXPECT_EQ(peer("192.168.0.1/32"), policy::kIdentityHost);
  EXPECT_EQ(peer("fd00::1/128"), policy::kIdentityHost);
  EXPECT_EQ(peer("192.168.0.2/32"), policy::kIdentityRemoteNode);
  EXPECT_EQ(peer("192.168.0.12/32"), policy::kIdentityRemoteNode);  // a hostNetwork pod of n2
  EXPECT_GE(peer("10.0.1.1/32"), policy::kFirstLocalIdentity);
  EXPECT_EQ(writer.peers.size(), 8u);  // 2 nodes, fd00::1, n2's hostNetwork pod, 4 pods
  // Nothing changed: the peers are not written again.
  const int writes = writer.peer_writes;
  ASSERT_TRUE(with_addresses.SyncAll(objects));
  EXPECT_EQ(writer.peer_writes, writes);
}

TEST_F(PolicyStepTest, AuditWhenEveryIsolatingPolicyAsksForIt) {
  k8s::ObjectSet objects = Cluster();
  objects.network_policies = {Policy(R"(
metadata: {name: trial, namespace: x, annotations: {weir.io/policy-audit: "true"}}
spec: {podSelector: {matchLabels: {app: a}}, policyTypes: [Ingress, Egress]}
)")};
  ASSERT_TRUE(step.SyncAll(objects));
  EXPECT_EQ(WrittenFor("x", "a").ingress_mode, EnforcementMode::kAudit);
  EXPECT_EQ(WrittenFor("x", "a").egress_mode, EnforcementMode::kAudit);
  EXPECT_EQ(WrittenFor("x", "b").ingress_mode, EnforcementMode::kEnforce);  // not isolated
  // A second policy without the annotation isolates a's ingress too: enforced.
  writer.written.clear();
  SourceChanges changes;
  changes.network_policies = {Changed(AllowBToA())};
  ASSERT_TRUE(step.SyncChanged(changes));
  EXPECT_EQ(WrittenFor("x", "a").ingress_mode, EnforcementMode::kEnforce);
  EXPECT_EQ(WrittenFor("x", "a").egress_mode, EnforcementMode::kAudit);
  // Dropping the annotation changes no rule, only the mode: a is rewritten.
  writer.written.clear();
  changes = {};
  changes.network_policies = {Changed(Policy(R"(
metadata: {name: trial, namespace: x, annotations: {weir.io/policy-audit: "no"}}
spec: {podSelector: {matchLabels: {app: a}}, policyTypes: [Ingress, Egress]}
)"))};
  ASSERT_TRUE(step.SyncChanged(changes));
  EXPECT_THAT(writer.TakeWrittenNames(step), ElementsAre("a"));
  EXPECT_EQ(WrittenFor("x", "a").egress_mode, EnforcementMode::kEnforce);

  PolicyStep node_audit({.node_name = "n1", .audit = true}, writer, metrics);
  ASSERT_TRUE(node_audit.SyncAll(Cluster()));
  EXPECT_EQ(node_audit.Written().at(ObjectRef{"x", "a"}).ingress_mode, EnforcementMode::kAudit);
}

TEST_F(PolicyStepTest, FailedWritesAreRetried) {
  writer.fail_writes = true;
  EXPECT_FALSE(step.SyncAll(Cluster()));
  EXPECT_THAT(step.Written(), IsEmpty());
  writer.fail_writes = false;
  ASSERT_TRUE(step.SyncChanged({}));
  EXPECT_EQ(step.Written().size(), 3u);
}

TEST_F(PolicyStepTest, CniAddWritesThePodWithTheAddressesAddGave) {
  k8s::ObjectSet objects = Cluster();
  objects.pods.push_back(Pod("x", "new", "{app: b}", "n1", ""));  // scheduled, no address yet
  ASSERT_TRUE(step.SyncAll(objects));
  EXPECT_THAT(WrittenFor("x", "new").policy.addresses, IsEmpty());  // rules only, before ADD
  writer.written.clear();
  auto id = step.EndpointAdded({"x", "new"}, {*IpAddress::Parse("10.0.1.50")}, std::chrono::milliseconds(10));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, WrittenFor("x", "new").policy_id);
  EXPECT_THAT(WrittenFor("x", "new").policy.addresses, ElementsAre(*IpAddress::Parse("10.0.1.50")));
  // The new address names the pod's identity for peers, and a (which admits app=b) is unchanged.
  EXPECT_EQ(writer.peers.at(*IpPrefix::Parse("10.0.1.50/32")), WrittenFor("x", "b").policy.identity);
  EXPECT_THAT(writer.TakeWrittenNames(step), ElementsAre("new"));
  // A status update without the address yet keeps ADD's; once it lists it, nothing changes.
  SourceChanges changes;
  changes.pods = {Changed(Pod("x", "new", "{app: b}", "n1", ""))};
  ASSERT_TRUE(step.SyncChanged(changes));
  changes.pods = {Changed(Pod("x", "new", "{app: b}", "n1", "10.0.1.50"))};
  ASSERT_TRUE(step.SyncChanged(changes));
  EXPECT_THAT(writer.written, IsEmpty());
  // ADD of the same pod again (a new sandbox) writes again: its endpoint entries are new.
  ASSERT_TRUE(
      step.EndpointAdded({"x", "new"}, {*IpAddress::Parse("10.0.1.50")}, std::chrono::milliseconds(10)).ok());
  EXPECT_THAT(writer.TakeWrittenNames(step), ElementsAre("new"));
}

TEST_F(PolicyStepTest, CniAddWaitsForThePodToReachTheCache) {
  ASSERT_TRUE(step.SyncAll(Cluster()));
  auto missing =
      step.EndpointAdded({"x", "late"}, {*IpAddress::Parse("10.0.1.60")}, std::chrono::milliseconds(20));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kDeadlineExceeded);
  std::thread informer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    SourceChanges changes;
    changes.pods = {Changed(Pod("x", "late", "{app: a}", "n1", ""))};
    step.SyncChanged(changes);
  });
  auto id = step.EndpointAdded({"x", "late"}, {*IpAddress::Parse("10.0.1.60")}, std::chrono::seconds(5));
  informer.join();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(WrittenFor("x", "late").policy.ingress.isolated);
  EXPECT_THAT(WrittenFor("x", "late").policy.addresses, ElementsAre(*IpAddress::Parse("10.0.1.60")));
}

TEST_F(PolicyStepTest, MalformedManifestsAreSkippedAndTheRestApplies) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("weir-policy-step-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "lab.yaml") << R"(apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: t}}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}
status: {podIPs: [{ip: 10.0.1.1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: broken, namespace: x}
spec: {nodeName: n1}
status: {podIPs: [{ip: not-an-ip}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{port: http}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad, namespace: x}
spec: {podSelector: {}, egress: [{ports: [{port: 80, endPort: 10}]}]}
)";
  auto manifests = standalone::ManifestDirectory::Open(dir.string());
  ASSERT_TRUE(manifests.ok());
  k8s::ObjectSet objects = manifests->Load();
  std::filesystem::remove_all(dir);
  EXPECT_EQ(objects.skipped, 2u);
  ASSERT_TRUE(step.SyncAll(objects));
  ASSERT_EQ(step.Written().size(), 1u);
  const EndpointEnforcement a = WrittenFor("x", "a");
  EXPECT_THAT(a.policy.ingress.policies, ElementsAre(ObjectRef{"x", "web"}));
  ASSERT_EQ(a.policy.ingress.allowed.size(), 1u);
  EXPECT_EQ(a.policy.ingress.allowed.begin()->ports.first, 80);
  EXPECT_FALSE(a.policy.egress.isolated);
}

TEST_F(PolicyStepTest, TheSocketAnswersCniAddAndWeirctl) {
  k8s::ObjectSet objects = Cluster();
  objects.pods.push_back(Pod("x", "new", "{app: b}", "n1", ""));
  ASSERT_TRUE(step.SyncAll(objects));
  PolicySocket socket(step, metrics, std::chrono::milliseconds(100));
  const std::string path =
      (std::filesystem::temp_directory_path() / ("weir-policy-" + std::to_string(getpid())) / "policy.sock")
          .string();
  ASSERT_TRUE(socket.Start(path).ok());
  const auto started = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  auto answer = AskAgent(path,
                         FormatEndpointAdded({.namespace_ = "x",
                                              .name = "new",
                                              .add_started_us = started,
                                              .addresses = {*IpAddress::Parse("10.0.1.50")}}),
                         std::chrono::seconds(2));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(*answer, absl::StrCat("ok ", WrittenFor("x", "new").policy_id, "\n"));
  answer = AskAgent(path,
                    FormatEndpointAdded({.namespace_ = "x",
                                         .name = "nobody",
                                         .add_started_us = started,
                                         .addresses = {*IpAddress::Parse("10.0.1.51")}}),
                    std::chrono::seconds(2));
  ASSERT_TRUE(answer.ok());
  EXPECT_THAT(*answer, ::testing::StartsWith("error pod x/nobody is not known"));
  EXPECT_THAT(metrics.Render(), ::testing::HasSubstr("weir_policy_cni_add_seconds_count 1\n"));

  answer = AskAgent(path, "policy x/a", std::chrono::seconds(2));
  socket.Stop();
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
  ASSERT_TRUE(answer.ok());
  auto table = weirctl::RenderPolicy(*answer, weirctl::OutputFormat::kTable);
  ASSERT_TRUE(table.ok()) << table.status();
  const std::string b_identity = std::to_string(WrittenFor("x", "b").policy.identity);
  EXPECT_EQ(*table,
            absl::StrCat("node n1, 3 identities\n\nx/a  policy_id ", WrittenFor("x", "a").policy_id,
                         "  identity ", WrittenFor("x", "a").policy.identity,
                         "  10.0.1.1\n  labels: app=a\n  namespace labels: kubernetes.io/metadata.name=x\n"
                         "  ingress: isolated by x/allow-b (enforced)\n    allow identity ",
                         b_identity, " [ns x {kubernetes.io/metadata.name=x} {app=b}] all protocols\n",
                         "  egress: not isolated\n"));
  auto json = weirctl::RenderPolicy(*answer, weirctl::OutputFormat::kJson);
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, ::testing::HasSubstr(R"("name":"a","policy_id":)"));
}

weirctl::EventView PolicyRecord(uint8_t direction, uint32_t policy_id, const std::string& source,
                                const std::string& destination, uint32_t peer_identity) {
  weir_event ev{};
  ev.type = WEIR_EVENT_POLICY;
  ev.family = WEIR_FAMILY_IPV4;
  ev.proto = WEIR_PROTO_TCP;
  ev.saddr = abi::EncodeAddress(*IpAddress::Parse(source));
  ev.daddr = abi::EncodeAddress(*IpAddress::Parse(destination));
  ev.dport = htons(80);
  ev.reason = WEIR_POLICY_DENIED;
  ev.direction = direction;
  ev.policy_id = policy_id;
  ev.peer_identity = peer_identity;
  return *weirctl::DecodeEvent(&ev, sizeof(ev));
}

// `weirctl events` names a denial's endpoint (namespace/pod), the policies that decided (the default
// deny of those isolating the direction) and the peer, from the agent's "directory" answer.
TEST_F(PolicyStepTest, PolicyRecordsNameThePodAndThePoliciesThatDecided) {
  k8s::ObjectSet objects = Cluster();
  objects.pods.push_back(Pod("x", "new", "{app: b}", "n1", ""));
  ASSERT_TRUE(step.SyncAll(objects));
  PolicySocket socket(step, metrics, std::chrono::milliseconds(100));
  auto answer = socket.Answer("directory");
  auto directory = weirctl::PolicyDirectory::Parse(answer);
  ASSERT_TRUE(directory.ok()) << directory.status() << answer;

  const uint32_t a = WrittenFor("x", "a").policy_id;
  const uint32_t b_identity = WrittenFor("x", "b").policy.identity;
  const uint32_t c_identity = WrittenFor("x", "c").policy.identity;
  weirctl::EventView denied = PolicyRecord(WEIR_POLICY_INGRESS, a, "10.0.1.3", "10.0.1.1", c_identity);
  ASSERT_TRUE(directory->Knows(denied));
  directory->Name(denied);
  EXPECT_THAT(weirctl::EventLine(denied, weirctl::ServiceDirectory()),
              ::testing::HasSubstr(absl::StrCat(
                  "TCP 10.0.1.3:0 -> 10.0.1.1:80 direction=ingress endpoint=x/a policy=default-deny "
                  "isolated_by=x/allow-b peer=x{app=c} policy_id=",
                  a, " peer_identity=", c_identity)));

  // Pending (policy_id 0): named by its address, the source of an egress record.
  weirctl::EventView pending = PolicyRecord(WEIR_POLICY_EGRESS, 0, "10.0.1.2", "8.8.8.8", 1);
  directory->Name(pending);
  EXPECT_THAT(weirctl::EventLine(pending, weirctl::ServiceDirectory()),
              ::testing::HasSubstr("direction=egress endpoint=x/b policy=pending peer=world policy_id=0"));

  // An id the directory does not know yet: Knows() says so (weirctl asks again); the record keeps its numbers.
  weirctl::EventView unknown = PolicyRecord(WEIR_POLICY_INGRESS, 999, "10.0.1.3", "10.9.9.9", b_identity);
  EXPECT_FALSE(directory->Knows(unknown));
  directory->Name(unknown);
  rapidjson::Document json;
  json.Parse(weirctl::EventJson(unknown, weirctl::ServiceDirectory()).c_str());
  EXPECT_FALSE(json.HasMember("endpoint"));
  EXPECT_EQ(json["policy_id"].GetUint(), 999u);
  EXPECT_STREQ(json["peer"].GetString(), "x{app=b}");
}

class FixedCounters : public policy::PolicyCounters {
 public:
  absl::StatusOr<std::map<uint32_t, policy::EndpointCounters>> Read() override { return counters; }
  std::map<uint32_t, policy::EndpointCounters> counters;
};

TEST_F(PolicyStepTest, CountersAreNamedByPod) {
  ASSERT_TRUE(step.SyncAll(Cluster()));
  FixedCounters counters;
  counters.counters[WrittenFor("x", "a").policy_id] = {.ingress = {.allowed = 5, .denied = 2}, .egress = {}};
  counters.counters[999] = {.ingress = {.denied = 1}, .egress = {}};  // gone: not shown
  const std::string text = step.CountersText(counters);
  EXPECT_THAT(text, ::testing::HasSubstr("weir_policy_packets_total{namespace=\"x\",pod=\"a\",direction="
                                         "\"ingress\",verdict=\"denied\"} 2\n"));
  EXPECT_THAT(text, ::testing::HasSubstr("weir_policy_packets_total{namespace=\"x\",pod=\"a\",direction="
                                         "\"egress\",verdict=\"audited\"} 0\n"));
  EXPECT_EQ(text.find("999"), std::string::npos);
}

// A cluster of 25 nodes, 10 namespaces, 5,000 pods and 500 policies, seen from node n0 (200 pods):
// one pod's relabel or one policy's edit writes only the endpoints that depend on it, quickly. The
// times are printed (docs/network-policy.md quotes them); the bounds only catch a blow-up.
TEST_F(PolicyStepTest, AtScaleAChangeWritesOnlyItsDependents) {
  k8s::ObjectSet objects;
  for (int n = 0; n < 25; ++n)
    objects.nodes.push_back(Node(absl::StrCat("n", n), absl::StrCat("192.168.1.", n + 1)));
  for (int n = 0; n < 10; ++n) objects.namespaces.push_back(Ns(absl::StrCat("ns", n)));
  // Each (namespace, app) pair has 25 pods, one of them on n0.
  for (int i = 0; i < 5000; ++i) {
    objects.pods.push_back(
        Pod(absl::StrCat("ns", i % 10), absl::StrCat("p", i), absl::StrCat("{app: app", (i / 10) % 20, "}"),
            absl::StrCat("n", (i / 200) % 25), absl::StrCat("10.", 1 + i / 250, ".", i % 250, ".1")));
  }
  // Policy k isolates app (k/10)%20 of namespace k%10, admitting the next app.
  for (int k = 0; k < 500; ++k) {
    objects.network_policies.push_back(
        Policy(absl::StrCat("metadata: {name: p", k, ", namespace: ns", k % 10,
                            "}\nspec:\n  podSelector: {matchLabels: {app: app", (k / 10) % 20,
                            "}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: app",
                            (k / 10 + 1) % 20, "}}}], ports: [{port: 80}]}]\n")));
  }
  PolicyStep scaled({.node_name = "n0"}, writer, metrics);
  auto timed = [](auto work) {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(work());
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  const double complete = timed([&] { return scaled.SyncAll(objects); });
  EXPECT_EQ(scaled.Written().size(), 200u);
  EXPECT_EQ(writer.peers.size(), 5025u);
  writer.written.clear();

  // ns0/p0 (on n0, app0) becomes app19: both label sets keep other pods, so their identities and
  // every rule naming them stay; only p0 itself is written.
  SourceChanges relabel;
  relabel.pods = {Changed(Pod("ns0", "p0", "{app: app19}", "n0", "10.1.0.1"))};
  const double relabel_ms = timed([&] { return scaled.SyncChanged(relabel); });
  const size_t relabel_writes = writer.written.size();
  EXPECT_EQ(relabel_writes, 1u);
  writer.written.clear();

  SourceChanges edit;
  edit.network_policies = {Changed(
      Policy("metadata: {name: p10, namespace: ns0}\nspec:\n  podSelector: {matchLabels: {app: app1}}\n"
             "  ingress: [{from: [{podSelector: {matchLabels: {app: app2}}}], ports: [{port: 81}]}]\n"))};
  const int peer_writes = writer.peer_writes;
  const double edit_ms = timed([&] { return scaled.SyncChanged(edit); });
  EXPECT_EQ(writer.peer_writes, peer_writes);  // a policy edit moves no peer
  EXPECT_EQ(writer.written.size(), 1u);        // ns0/p10, its one subject on n0
  std::printf(
      "5000 pods, 500 policies, 200 endpoints: complete sync %.1f ms; relabel %.2f ms (%zu writes); "
      "policy edit %.2f ms (%zu writes)\n",
      complete, relabel_ms, relabel_writes, edit_ms, writer.written.size());
  EXPECT_LT(relabel_ms, 1000);
  EXPECT_LT(edit_ms, 1000);
}

}  // namespace
}  // namespace weir::agent
