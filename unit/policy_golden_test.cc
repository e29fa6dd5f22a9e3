// Golden tests for the policy computation: each directory unit/policy_golden/<case>/ holds
//   input.yaml    Namespaces, Pods and NetworkPolicies (multi-document), decoded like a manifest
//                 directory and fed to a PolicyEngine of node "node-a" in file order
//   expected.txt  "# skipped: <error>" for each object the decoder rejected, the identities, the pod
//                 address -> identity map the datapath's peer LPM map will hold, and every endpoint's
//                 policy (proxy/policy/dump.h)
// WEIR_UPDATE_GOLDEN=1 rewrites expected.txt from the current output; review the diff by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proxy/k8s/decode.h"
#include "proxy/policy/dump.h"
#include "proxy/policy/policy_engine.h"

namespace weir::policy {
namespace {

namespace fs = std::filesystem;

fs::path GoldenRoot() { return fs::path(__FILE__).parent_path() / "policy_golden"; }

std::vector<std::string> CaseNames() {
  std::vector<std::string> names;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(GoldenRoot(), error)) {
    if (fs::exists(entry.path() / "input.yaml")) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

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
  const std::string actual = RunCase(directory);
  const char* update_env = std::getenv("WEIR_UPDATE_GOLDEN");
  const fs::path expected = directory / "expected.txt";
  if (update_env != nullptr && std::string(update_env) == "1") {
    std::ofstream(expected, std::ios::binary | std::ios::trunc) << actual;
    GTEST_SKIP() << "rewrote " << expected;
  }
  ASSERT_TRUE(fs::exists(expected)) << expected << " is missing; WEIR_UPDATE_GOLDEN=1 writes it";
  EXPECT_EQ(actual, ReadFile(expected)) << expected;
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
