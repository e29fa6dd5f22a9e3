// The agent settings of the node's CNI duties: forwarding, the plugin's dataDir and the collection
// of what pods left without a DEL.
#include <gtest/gtest.h>

#include "proxy/agent/agent_config.h"
#include "proxy/agent/node_sync.h"

namespace weir::agent {
namespace {

TEST(AgentConfigCniTest, Defaults) {
  auto config = ParseAgentConfig("");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->manage_forwarding);
  EXPECT_EQ(config->cni_data_dir, "/var/lib/cni/weir");
  EXPECT_EQ(config->cni_gc_interval_seconds, 60u);
  EXPECT_EQ(config->pod_device_mode, "veth");
}

TEST(AgentConfigCniTest, PodDeviceMode) {
  auto netkit = ParseAgentConfig("podDeviceMode: netkit\n");
  ASSERT_TRUE(netkit.ok()) << netkit.status();
  EXPECT_EQ(netkit->pod_device_mode, "netkit");
  EXPECT_EQ(CniSettingsFrom(*netkit, {}).device_mode, "netkit");
  auto bad = ParseAgentConfig("podDeviceMode: macvlan\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "podDeviceMode \"macvlan\": expected veth or netkit");
}

TEST(AgentConfigCniTest, Keys) {
  auto config =
      ParseAgentConfig("manageForwarding: false\ncniDataDir: /run/lab/ipam\ncniGCIntervalSeconds: 2\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->manage_forwarding);
  EXPECT_EQ(config->cni_data_dir, "/run/lab/ipam");
  EXPECT_EQ(config->cni_gc_interval_seconds, 2u);
}

}  // namespace
}  // namespace weir::agent
