#include "proxy/agent/agent_config.h"

#include "absl/strings/str_cat.h"

#include <gtest/gtest.h>

namespace weir::agent {
namespace {

TEST(AgentConfig, ClusterInstallKeys) {
  auto config = ParseAgentConfig(R"(
k8sServiceHost: 192.168.77.1
k8sServicePort: "6443"
daemonSet: kube-system/weir
mtu: 1450
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->api_server_host, "192.168.77.1");
  EXPECT_EQ(config->api_server_port, 6443);
  EXPECT_EQ(config->owner_daemon_set, "kube-system/weir");
  EXPECT_EQ(config->mtu, 1450u);
  // Left out, node facts are discovered.
  EXPECT_TRUE(config->node_addresses.empty());
  EXPECT_TRUE(config->uplinks.empty());
}

TEST(AgentConfig, KubeProxyEndpointsAreSettable) {
  auto config =
      ParseAgentConfig("kubeProxyHealthzBindAddress: \"[::]:10256\"\nkubeProxyMetricsBindAddress: \"\"\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->kube_proxy_healthz_address, "[::]:10256");
  EXPECT_EQ(config->kube_proxy_metrics_address, "");
}

TEST(AgentConfig, NodePortAccelerationIsNativeGenericOrDisabled) {
  for (const char* mode : {"native", "generic", "disabled"}) {
    auto config = ParseAgentConfig(absl::StrCat("nodePortAcceleration: ", mode, "\n"));
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->node_port_acceleration, mode);
  }
  auto fast = ParseAgentConfig("nodePortAcceleration: fast\n");
  ASSERT_FALSE(fast.ok());
  EXPECT_EQ(fast.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(fast.status().message().find("expected native, generic or disabled"), std::string::npos)
      << fast.status();
}

TEST(AgentConfig, UnsetPortRendersAsEmptyString) {
  auto config = ParseAgentConfig("k8sServiceHost: \"\"\nk8sServicePort: \"\"\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->api_server_port, 0);
}

TEST(AgentConfig, NetworkPolicyIsOffUnlessAsked) {
  auto defaults = ParseAgentConfig("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->network_policy);
  EXPECT_FALSE(defaults->policy_audit);
  auto config = ParseAgentConfig(
      "networkPolicy: true\npolicyAudit: true\npolicySocket: /run/lab/p.sock\npolicyCNITimeoutMs: 1500\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->network_policy && config->policy_audit);
  EXPECT_EQ(config->policy_socket, "/run/lab/p.sock");
  EXPECT_EQ(config->policy_cni_timeout_ms, 1500u);
  EXPECT_FALSE(ParseAgentConfig("networkPolicy: true\npolicySocket: \"\"\n").ok());
}

TEST(AgentConfig, SocketLbTranslationEventsAreOffUnlessAsked) {
  auto defaults = ParseAgentConfig("");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_FALSE(defaults->socket_lb_translation_events);
  auto asked = ParseAgentConfig("socketLBTranslationEvents: true\n");
  ASSERT_TRUE(asked.ok()) << asked.status();
  EXPECT_TRUE(asked->socket_lb_translation_events);
}

TEST(AgentConfig, BadValuesAreErrors) {
  EXPECT_FALSE(ParseAgentConfig("k8sServicePort: https\n").ok());
  EXPECT_FALSE(ParseAgentConfig("k8sServicePort: 70000\n").ok());
  EXPECT_FALSE(ParseAgentConfig("daemonSet: weir\n").ok());
  EXPECT_FALSE(ParseAgentConfig("uplink: eth0\n").ok());  // a typo is not ignored
}

}  // namespace
}  // namespace weir::agent
