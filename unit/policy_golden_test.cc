// Golden tests for the policy computation: each directory unit/policy_golden/<case>/ holds
//   input.yaml    Namespaces, Pods and NetworkPolicies (multi-document), decoded like a manifest
//                 directory and fed to a PolicyEngine of node "node-a" in file order
//   expected.txt  "# skipped: <error>" for each object the decoder rejected, the identities, the pod
//                 address -> identity map the datapath's peer LPM map will hold, and every endpoint's
//                 policy (proxy/policy/dump.h)
// WEIR_UPDATE_GOLDEN=1 rewrites expected.txt from the current output; review the diff by hand.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proxy/k8s/decode.h"
#include "proxy/policy/dump.h"
#include "proxy/policy/policy_engine.h"
#include "unit/golden_files.h"

namespace weir::policy {
namespace {

namespace fs = std::filesystem;

fs::path GoldenRoot() { return fs::path(__FILE__).parent_path() / "policy_golden"; }

std::vector<std::string> CaseNames() { return golden::CaseNames(GoldenRoot()); }

using golden::ReadFile;

std::string RunCase(const fs::path& directory) {
  std::vector<absl::Status> errors;
  absl::StatusOr<std::vector<k8s::Object>> objects =
      k8s::DecodeManifests(ReadFile(directory / "input.yaml"), &errors);
  if (!objects.ok()) return "# input.yaml: " + std::string(objects.status().message()) + "\n";
  std::string out;
  for (const absl::Status& error : errors) out += "# skipped: " + std::string(error.message()) + "\n";
  PolicyEngine engine("node-a");
  for (k8s::Object& object : *objects) {
    PolicyChanges changes;
    if (auto* ns = std::get_if<k8s::Namespace>(&object)) changes = engine.UpsertNamespace(std::move(*ns));
    if (auto* pod = std::get_if<k8s::Pod>(&object)) changes = engine.UpsertPod(std::move(*pod));
    if (auto* policy = std::get_if<k8s::NetworkPolicy>(&object))
      changes = engine.UpsertPolicy(std::move(*policy));
    if (!changes.status.ok()) out += "# error: " + std::string(changes.status.message()) + "\n";
  }
  out += "## identities\n" + DumpIdentities(engine.state().identities);
  out += "## pod addresses\n";
  for (const auto& [address, identity] : engine.PodAddressIdentities()) {
    absl::StrAppend(&out, address.ToString(), " -> ", identity, "\n");
  }
  out += "## endpoints on node-a\n" + DumpEndpoints(engine.endpoints(), NumberNamer());
  return out;
}

class PolicyGoldenTest : public testing::TestWithParam<std::string> {};

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
