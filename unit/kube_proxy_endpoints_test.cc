#include "proxy/agent/kube_proxy_endpoints.h"

#include <gtest/gtest.h>

namespace weir::agent {
namespace {

using std::chrono::seconds;

TEST(KubeProxyEndpoints, HealthyOnceSyncedWhileTheLoopTurns) {
  SyncProgress progress;
  const auto now = SyncProgress::Clock::now();
  progress.Alive();
  EXPECT_FALSE(KubeProxyHealthy(progress, now, seconds(60)));  // nothing programmed yet
  progress.Synced();
  EXPECT_TRUE(KubeProxyHealthy(progress, SyncProgress::Clock::now(), seconds(60)));
  // A loop that stopped turning is unhealthy, however recent its last sync.
  EXPECT_FALSE(KubeProxyHealthy(progress, SyncProgress::Clock::now() + seconds(61), seconds(60)));
}

TEST(KubeProxyEndpoints, HealthzBodyHasKubeProxysFields) {
  SyncProgress progress;
  progress.Synced();
  std::string body = KubeProxyHealthzBody(progress, SyncProgress::Clock::now());
  EXPECT_NE(body.find("\"lastUpdated\": \"20"), std::string::npos) << body;
  EXPECT_NE(body.find("\"currentTime\": \"20"), std::string::npos) << body;
  EXPECT_NE(body.find("\"nodeEligible\": true"), std::string::npos) << body;
}

}  // namespace
}  // namespace weir::agent
