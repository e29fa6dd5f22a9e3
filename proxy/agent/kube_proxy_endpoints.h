// kube-proxy's own HTTP endpoints, served by the agent that replaces it, so that what operators and
// the upstream e2e suite point at kube-proxy keeps working: load balancers' health checks of
// :10256/healthz, and :10249's /proxyMode and /metrics.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "proxy/agent/http_server.h"
#include "proxy/agent/metrics.h"

namespace weir::agent {

// The sync loop's progress, written by the loop and read by the HTTP threads.
class SyncProgress {
 public:
  using Clock = std::chrono::system_clock;
  // After each successful sync of the datapath.
  void Synced() { last_synced_ = Clock::now().time_since_epoch().count(); }
  // Every turn of the loop, whether or not it synced.
  void Alive() { last_alive_ = Clock::now().time_since_epoch().count(); }

  bool ever_synced() const { return last_synced_.load() != 0; }
  Clock::time_point last_synced() const { return Clock::time_point(Clock::duration(last_synced_.load())); }
  Clock::time_point last_alive() const { return Clock::time_point(Clock::duration(last_alive_.load())); }

 private:
  std::atomic<Clock::rep> last_synced_{0};
  std::atomic<Clock::rep> last_alive_{0};
};

// kube-proxy's rule: healthy once the rules were programmed, for as long as its loop keeps turning
// (a loop stuck for `stall_limit` is unhealthy, whatever it last did).
bool KubeProxyHealthy(const SyncProgress& progress, SyncProgress::Clock::time_point now,
                      std::chrono::seconds stall_limit);
// The /healthz body kube-proxy serves: {"lastUpdated": ..., "currentTime": ..., "nodeEligible": true}.
std::string KubeProxyHealthzBody(const SyncProgress& progress, SyncProgress::Clock::time_point now);

class KubeProxyEndpoints {
 public:
  KubeProxyEndpoints();
  // `healthz_address`, `metrics_address`: "host:port", empty for none (kube-proxy's
  // --healthz-bind-address and --metrics-bind-address). `progress` and `metrics` outlive this.
  absl::Status Start(const std::string& healthz_address, const std::string& metrics_address,
                     const SyncProgress& progress, Metrics& metrics,
                     std::function<std::string()> extra_metrics);
  void Stop();

 private:
  HttpListener healthz_;
  HttpListener metrics_;
};

}  // namespace weir::agent
