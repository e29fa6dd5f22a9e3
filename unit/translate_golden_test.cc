// Golden tests for translation: each directory unit/golden/<case>/ holds
//   input.yaml    Services and EndpointSlices (multi-document), decoded like a manifest directory
//   node.yaml     optional node context: name, addresses, zone, mode (snat|dsr|hybrid), maglev
//   expected.txt  "# skipped: <error>" for each object the decoder rejected, then the dump of
//                 Translate's DesiredState (proxy/lb/dump.h)
//   maps.txt      the map entries the reconciler writes for that state into empty maps (the fake
//                 writer's dump; Maglev tables of size 7): the whole way from YAML to the datapath
// WEIR_UPDATE_GOLDEN=1 rewrites both from the current output; review the diff by hand.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "proxy/k8s/decode.h"
#include "proxy/lb/dump.h"
#include "proxy/lb/translate.h"
#include "proxy/sync/fake_map_writer.h"
#include "proxy/sync/reconciler.h"
#include "unit/golden_files.h"
#include "yaml-cpp/yaml.h"

namespace weir::lb {
namespace {

namespace fs = std::filesystem;

fs::path GoldenRoot() { return fs::path(__FILE__).parent_path() / "golden"; }

std::vector<std::string> CaseNames() { return golden::CaseNames(GoldenRoot()); }

using golden::ReadFile;

// Every case runs on node-a (zone-a, 192.168.0.10) unless its node.yaml says otherwise.
NodeContext LoadNodeContext(const fs::path& path) {
  NodeContext node{
      .node_name = "node-a", .node_addresses = {*IpAddress::Parse("192.168.0.10")}, .zone = "zone-a"};
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

struct CaseOutput {
  std::string desired;  // expected.txt
  std::string maps;     // maps.txt
};

CaseOutput RunCase(const fs::path& directory) {
  std::vector<absl::Status> errors;
  absl::StatusOr<std::vector<k8s::Object>> objects =
      k8s::DecodeManifests(ReadFile(directory / "input.yaml"), &errors);
  if (!objects.ok()) return {"# input.yaml: " + std::string(objects.status().message()) + "\n", ""};
  std::vector<k8s::Service> services;
  std::vector<k8s::EndpointSlice> slices;
  for (k8s::Object& object : *objects) {
    if (auto* service = std::get_if<k8s::Service>(&object)) services.push_back(std::move(*service));
    if (auto* slice = std::get_if<k8s::EndpointSlice>(&object)) slices.push_back(std::move(*slice));
  }
  CaseOutput out;
  for (const absl::Status& error : errors) out.desired += "# skipped: " + std::string(error.message()) + "\n";
  const DesiredState desired = Translate(services, slices, LoadNodeContext(directory / "node.yaml"));
  out.desired += DumpDesiredState(desired);
  sync::FakeMapWriter writer;
  sync::Reconciler reconciler(writer, {.maglev_table_size = 7});
  if (absl::StatusOr<sync::ReconcileStats> applied = reconciler.Apply(desired); !applied.ok()) {
    out.maps = "# apply: " + std::string(applied.status().message()) + "\n";
  }
  for (const std::string& line : writer.DumpLines()) out.maps += line + "\n";
  return out;
}

class TranslateGoldenTest : public testing::TestWithParam<std::string> {};

TEST_P(TranslateGoldenTest, MatchesExpected) {
  const fs::path directory = GoldenRoot() / GetParam();
  const CaseOutput actual = RunCase(directory);
  golden::ExpectFile(directory / "expected.txt", actual.desired);
  golden::ExpectFile(directory / "maps.txt", actual.maps);
  if (golden::Updating()) GTEST_SKIP() << "rewrote " << directory;
}

INSTANTIATE_TEST_SUITE_P(Golden, TranslateGoldenTest, testing::ValuesIn(CaseNames()),
                         [](const testing::TestParamInfo<std::string>& info) { return info.param; });

// Guards against the directory silently going missing (which would run zero cases).
TEST(TranslateGoldenCasesTest, RequiredCasesExist) {
  const std::vector<std::string> names = CaseNames();
  for (const char* required :
       {"clusterip_basic", "dual_stack", "protocols_same_port", "nodeport", "loadbalancer", "external_ips",
        "session_affinity", "etp_local", "itp_local", "terminating_fallback", "topology_hints",
        "no_endpoints", "headless_and_externalname", "named_target_port", "malformed"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), required), names.end())
        << "missing golden case " << required;
  }
}

}  // namespace
}  // namespace weir::lb
