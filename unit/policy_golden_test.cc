// Golden tests for the policy computation: each directory unit/policy_golden/<case>/ holds
//   input.yaml    Namespaces, Pods and NetworkPolicies (multi-document), decoded like a manifest
//                 directory and fed to a PolicyEngine of node "node-a" in file order
//   expected.txt  "# skipped: <error>" for each object the decoder rejected, the identities, the pod
//                 address -> identity map the datapath's peer LPM map will hold, and every endpoint's
//                 policy (proxy/policy/dump.h)
//   maps.txt      the map entries the BPF PolicyWriter makes of it (peers, rules, CIDR classes and
//                 the endpoint entries' policy fields; endpoints numbered 1, 2, ... in name order,
//                 each entry first written pending by the CNI), rendered by the ABI codec
// WEIR_UPDATE_GOLDEN=1 rewrites expected.txt from the current output; review the diff by hand.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/abi_codec.h"
#include "proxy/k8s/decode.h"
#include "proxy/policy/dump.h"
#include "proxy/policy/policy_engine.h"
#include "proxy/policy_sync/bpf_policy_writer.h"
#include "proxy/policy_sync/fake_policy_maps.h"
#include "unit/golden_files.h"

namespace weir::policy {
namespace {

namespace fs = std::filesystem;

fs::path GoldenRoot() { return fs::path(__FILE__).parent_path() / "policy_golden"; }

std::vector<std::string> CaseNames() { return golden::CaseNames(GoldenRoot()); }

using golden::ReadFile;

// The objects of a case fed to an engine; errors (decoding, updates) appended to `out`.
std::optional<PolicyEngine> Load(const fs::path& directory, std::string& out) {
  std::vector<absl::Status> errors;
  absl::StatusOr<std::vector<k8s::Object>> objects =
      k8s::DecodeManifests(ReadFile(directory / "input.yaml"), &errors);
  if (!objects.ok()) {
    out += "# input.yaml: " + std::string(objects.status().message()) + "\n";
    return std::nullopt;
  }
  for (const absl::Status& error : errors) out += "# skipped: " + std::string(error.message()) + "\n";
  std::optional<PolicyEngine> engine_holder(std::in_place, "node-a");
  PolicyEngine& engine = *engine_holder;
  for (k8s::Object& object : *objects) {
    PolicyChanges changes;
    if (auto* ns = std::get_if<k8s::Namespace>(&object)) changes = engine.UpsertNamespace(std::move(*ns));
    if (auto* pod = std::get_if<k8s::Pod>(&object)) changes = engine.UpsertPod(std::move(*pod));
    if (auto* policy = std::get_if<k8s::NetworkPolicy>(&object))
      changes = engine.UpsertPolicy(std::move(*policy));
    if (!changes.status.ok()) out += "# error: " + std::string(changes.status.message()) + "\n";
  }
  return engine_holder;
}

std::string RunCase(const fs::path& directory) {
  std::string out;
  std::optional<PolicyEngine> loaded = Load(directory, out);
  if (!loaded.has_value()) return out;
  const PolicyEngine& engine = *loaded;
  out += "## identities\n" + DumpIdentities(engine.state().identities);
  out += "## pod addresses\n";
  for (const auto& [address, identity] : engine.PodAddressIdentities()) {
    absl::StrAppend(&out, address.ToString(), " -> ", identity, "\n");
  }
  out += "## endpoints on node-a\n" + DumpEndpoints(engine.endpoints(), NumberNamer());
  return out;
}

// What the BPF PolicyWriter writes for the case's endpoints.
std::string RunMaps(const fs::path& directory) {
  std::string errors;
  std::optional<PolicyEngine> engine = Load(directory, errors);
  if (!engine.has_value()) return errors;
  policy_sync::FakePolicyMaps maps;
  policy_sync::BpfPolicyWriter writer(maps);
  std::string out;
  std::map<IpPrefix, Identity> peers;
  for (const auto& [address, identity] : engine->PodAddressIdentities()) {
    peers[IpPrefix(address, address.bit_length())] = identity;
  }
  if (absl::Status s = writer.SetPeers(peers); !s.ok()) out += "# error: " + std::string(s.message()) + "\n";
  uint32_t policy_id = 0;
  for (const auto& [name, endpoint] : engine->endpoints()) {
    ++policy_id;
    absl::StrAppend(&out, "# policy ", policy_id, ": ", name.ToString(), "\n");
    for (const IpAddress& address : endpoint.addresses) {
      abi::Endpoint pending{.address = address,
                            .flags = WEIR_ENDPOINT_LOCAL_POD | WEIR_ENDPOINT_POLICY_PENDING};
      (void)maps.PutEndpoint(abi::EncodeEndpointKey(address), abi::EncodeEndpointValue(pending));
    }
    absl::Status s = writer.WriteEndpoint(EndpointEnforcement{.policy_id = policy_id, .policy = endpoint});
    if (!s.ok()) out += "# error: " + std::string(s.message()) + "\n";
  }
  for (const std::string& line : maps.DumpLines()) out += line + "\n";
  return out;
}

class PolicyGoldenTest : public testing::TestWithParam<std::string> {};

TEST_P(PolicyGoldenTest, MapsMatchExpected) {
  const fs::path directory = GoldenRoot() / GetParam();
  golden::ExpectFile(directory / "maps.txt", RunMaps(directory));
  if (golden::Updating()) GTEST_SKIP() << "rewrote " << directory;
}

TEST_P(PolicyGoldenTest, MatchesExpected) {
  const fs::path directory = GoldenRoot() / GetParam();
  golden::ExpectFile(directory / "expected.txt", RunCase(directory));
  if (golden::Updating()) GTEST_SKIP() << "rewrote " << directory;
}

INSTANTIATE_TEST_SUITE_P(Golden, PolicyGoldenTest, testing::ValuesIn(CaseNames()),
                         [](const testing::TestParamInfo<std::string>& info) { return info.param; });

// One case per item of the NetworkPolicy semantics (issue 10); guards against a case going missing.
TEST(PolicyGoldenCasesTest, RequiredCasesExist) {
  const std::vector<std::string> names = CaseNames();
  for (const char* required :
       {"policy_types_defaults", "direction_isolation", "additive_rules", "pod_selector",
        "namespace_selector", "pod_and_namespace_selector", "two_peers_or", "match_expressions",
        "ip_block_except", "named_ports_disagree", "end_port", "protocols_apart", "other_namespaces",
        "empty_pod_selector", "empty_rules_vs_no_rules", "host_network", "malformed"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), required), names.end())
        << "missing golden case " << required;
  }
}

}  // namespace
}  // namespace weir::policy
