// Golden tests for translation: each directory unit/golden/<case>/ holds
//   input.yaml    Services and EndpointSlices (multi-document), decoded like a manifest directory
//   node.yaml     optional node context: name, addresses, zone, mode (snat|dsr|hybrid), maglev
//   expected.txt  "# skipped: <error>" for each object the decoder rejected, then the dump of
//                 Translate's DesiredState (proxy/lb/dump.h)
// WEIR_UPDATE_GOLDEN=1 rewrites expected.txt from the current output; review the diff by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/k8s/decode.h"
#include "proxy/lb/dump.h"
#include "proxy/lb/translate.h"
#include "yaml-cpp/yaml.h"

namespace weir::lb {
namespace {

namespace fs = std::filesystem;

fs::path GoldenRoot() { return fs::path(__FILE__).parent_path() / "golden"; }

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

// Every case runs on node-a (zone-a, 192.168.0.10) unless its node.yaml says otherwise.
NodeContext LoadNodeContext(const fs::path& path) {
  NodeContext node{.node_name = "node-a", .node_addresses = {*IpAddress::Parse("192.168.0.10")}, .zone = "zone-a"};
  if (!fs::exists(path)) return node;
  const YAML::Node yaml = YAML::LoadFile(path.string());
  if (yaml["name"]) node.node_name = yaml["name"].as<std::string>();
  if (yaml["zone"]) node.zone = yaml["zone"].as<std::string>();
  if (yaml["maglev"]) node.maglev = yaml["maglev"].as<bool>();
  if (yaml["addresses"]) {
    node.node_addresses.clear();
    for (const YAML::Node& address : yaml["addresses"]) {
      absl::StatusOr<IpAddress> parsed = IpAddress::Parse(address.as<std::string>());
      EXPECT_TRUE(parsed.ok()) << path << ": " << parsed.status();
      if (parsed.ok()) node.node_addresses.push_back(*parsed);
    }
  }
  if (yaml["mode"]) {
    const std::string mode = yaml["mode"].as<std::string>();
    bool known = false;
    for (LbMode candidate : {LbMode::kSnat, LbMode::kDsr, LbMode::kHybrid}) {
      if (mode == LbModeName(candidate)) node.lb_mode = candidate, known = true;
    }
    EXPECT_TRUE(known) << path << ": unknown mode " << mode;
  }
  return node;
}

std::string RunCase(const fs::path& directory) {
  std::vector<absl::Status> errors;
  absl::StatusOr<std::vector<k8s::Object>> objects = k8s::DecodeManifests(ReadFile(directory / "input.yaml"), &errors);
  if (!objects.ok()) return "# input.yaml: " + std::string(objects.status().message()) + "\n";
  std::vector<k8s::Service> services;
  std::vector<k8s::EndpointSlice> slices;
  for (k8s::Object& object : *objects) {
    if (auto* service = std::get_if<k8s::Service>(&object)) services.push_back(std::move(*service));
    if (auto* slice = std::get_if<k8s::EndpointSlice>(&object)) slices.push_back(std::move(*slice));
  }
  std::string text;
  for (const absl::Status& error : errors) text += "# skipped: " + std::string(error.message()) + "\n";
  return text + DumpDesiredState(Translate(services, slices, LoadNodeContext(directory / "node.yaml")));
}

class TranslateGoldenTest : public testing::TestWithParam<std::string> {};

TEST_P(TranslateGoldenTest, MatchesExpected) {
  const fs::path directory = GoldenRoot() / GetParam();
  const std::string actual = RunCase(directory);
  const fs::path expected_path = directory / "expected.txt";
  const char* update = std::getenv("WEIR_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(expected_path, std::ios::binary | std::ios::trunc) << actual;
    GTEST_SKIP() << "rewrote " << expected_path;
  }
  ASSERT_TRUE(fs::exists(expected_path)) << expected_path << " is missing; WEIR_UPDATE_GOLDEN=1 writes it";
  EXPECT_EQ(actual, ReadFile(expected_path)) << "case " << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Golden, TranslateGoldenTest, testing::ValuesIn(CaseNames()),
                         [](const testing::TestParamInfo<std::string>& info) { return info.param; });

// Guards against the directory silently going missing (which would run zero cases).
TEST(TranslateGoldenCasesTest, RequiredCasesExist) {
  const std::vector<std::string> names = CaseNames();
  for (const char* required :
       {"clusterip_basic", "dual_stack", "protocols_same_port", "nodeport", "loadbalancer", "external_ips",
        "session_affinity", "etp_local", "itp_local", "terminating_fallback", "topology_hints", "no_endpoints",
        "headless_and_externalname", "named_target_port", "malformed"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), required), names.end()) << "missing golden case " << required;
  }
}

}  // namespace
}  // namespace weir::lb
