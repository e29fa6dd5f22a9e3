// The sync loop's metrics under the names kube-proxy exports (kubeproxy_sync_proxy_rules_*,
// kubeproxy_network_programming_duration_seconds), so that alerts written for kube-proxy keep
// working when weir replaces it, plus weir's own (map fill, conntrack collection).
#pragma once

#include <chrono>
#include <vector>

#include "lib/map_fill.h"
#include "proxy/agent/metrics.h"

namespace weir::agent {

class SyncMetrics {
 public:
  explicit SyncMetrics(Metrics& metrics);

  // A sync that applied the datapath: complete (every Service) or partial (changed ones only).
  void Synced(bool complete, std::chrono::microseconds duration, std::chrono::system_clock::time_point now,
              const std::vector<double>& programming_latencies, size_t frontends, size_t backends);
  void Failed() { errors_.Increment(); }
  void Skipped(size_t objects) { skipped_.Set(static_cast<double>(objects)); }
  void MapFillRead(const std::vector<MapFill>& fills);

 private:
  Metrics& metrics_;
  Histogram& duration_;
  Histogram& full_duration_;
  Histogram& partial_duration_;
  Histogram& weir_duration_;
  Gauge& last_timestamp_;
  Histogram& programming_;
  Counter& errors_;
  Gauge& frontends_;
  Gauge& backends_;
  Gauge& skipped_;
};

}  // namespace weir::agent
