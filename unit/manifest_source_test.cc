// Standalone mode's manifest directory as a source: a file's change reaches the agent as the objects
// it changed (like the API's watches), a Service's change as a complete sync, and a file that did
// not change is not decoded again.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "proxy/source/object_source.h"

namespace weir::agent {
namespace {

class ManifestSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("weir-manifests-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    Write("pods.yaml", Pod("a") + "---\n" + Pod("b"));
    Write("policy.yaml", Policy("deny", "{}"));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // As weirlab writes them: a hidden temporary file renamed into place.
  void Write(const std::string& name, const std::string& text) {
    const std::filesystem::path tmp = dir_ / ("." + name + ".tmp");
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, dir_ / name);
  }
  static std::string Pod(const std::string& name, const std::string& labels = "{app: web}") {
    return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + ", namespace: x, labels: " + labels +
           "}\nspec: {nodeName: n1}\nstatus: {podIPs: [{ip: 10.0.1." + std::to_string(name[0]) + "}]}\n";
  }
  static std::string Policy(const std::string& name, const std::string& selector) {
    return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: " + name +
           ", namespace: x}\nspec: {podSelector: " + selector + "}\n";
  }

  std::filesystem::path dir_;
};

TEST_F(ManifestSourceTest, AFileChangeIsTheObjectsItChanged) {
  auto source = OpenManifestSource(dir_.string());
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_FALSE((*source)->TakeChanges().has_value()) << "before the first snapshot: a complete sync";
  k8s::ObjectSet objects = (*source)->Snapshot();
  EXPECT_EQ(objects.pods.size(), 2u);
  EXPECT_EQ(objects.network_policies.size(), 1u);

  std::optional<SourceChanges> changes = (*source)->TakeChanges();
  ASSERT_TRUE(changes.has_value());
  EXPECT_TRUE(changes->pods.empty() && changes->network_policies.empty() && changes->namespaces.empty());

  // A new policy file: that policy alone.
  Write("allow.yaml", Policy("allow", "{matchLabels: {app: web}}"));
  EXPECT_TRUE((*source)->WaitForChange(std::chrono::milliseconds(1000)));
  changes = (*source)->TakeChanges();
  ASSERT_TRUE(changes.has_value());
  EXPECT_TRUE(changes->pods.empty());
  ASSERT_EQ(changes->network_policies.size(), 1u);
  EXPECT_EQ(changes->network_policies[0].key, "x/allow");
  ASSERT_TRUE(changes->network_policies[0].object.has_value());

  // One pod relabelled in a file of two: both keys, each in its version now.
  Write("pods.yaml", Pod("a", "{app: db}") + "---\n" + Pod("b"));
  changes = (*source)->TakeChanges();
  ASSERT_TRUE(changes.has_value());
  ASSERT_EQ(changes->pods.size(), 2u);
  for (const auto& pod : changes->pods) {
    ASSERT_TRUE(pod.object.has_value()) << pod.key;
    EXPECT_EQ(pod.object->metadata.labels.at("app"), pod.key == "x/a" ? "db" : "web");
  }

  // A removed file: its objects gone.
  std::filesystem::remove(dir_ / "allow.yaml");
  changes = (*source)->TakeChanges();
  ASSERT_TRUE(changes.has_value());
  ASSERT_EQ(changes->network_policies.size(), 1u);
  EXPECT_EQ(changes->network_policies[0].key, "x/allow");
  EXPECT_FALSE(changes->network_policies[0].object.has_value());

  // A Service: a complete sync, whose snapshot has it.
  Write("svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: x}\n"
        "spec: {clusterIP: 10.96.0.10, ports: [{port: 80, protocol: TCP}]}\n");
  EXPECT_FALSE((*source)->TakeChanges().has_value());
  objects = (*source)->Snapshot();
  EXPECT_EQ(objects.services.size(), 1u);
  EXPECT_EQ(objects.pods.size(), 2u);
  EXPECT_EQ(objects.network_policies.size(), 1u);
}

}  // namespace
}  // namespace weir::agent
