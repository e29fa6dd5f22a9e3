#include "proxy/agent/sync_metrics.h"

#include "proxy/agent/network_programming.h"

namespace weir::agent {

SyncMetrics::SyncMetrics(Metrics& metrics)
    : metrics_(metrics),
      duration_(metrics.GetHistogram("kubeproxy_sync_proxy_rules_duration_seconds",
                                     "SyncProxyRules latency in seconds (every sync of the datapath).",
                                     SyncLatencyBuckets())),
      full_duration_(metrics.GetHistogram("kubeproxy_sync_full_proxy_rules_duration_seconds",
                                          "Latency of complete syncs (every Service) in seconds.",
                                          SyncLatencyBuckets())),
      partial_duration_(metrics.GetHistogram("kubeproxy_sync_partial_proxy_rules_duration_seconds",
                                             "Latency of partial syncs (changed Services) in seconds.",
                                             SyncLatencyBuckets())),
      weir_duration_(metrics.GetHistogram("weir_sync_duration_seconds", "Translate and apply one sync.",
                                          SyncLatencyBuckets())),
      last_timestamp_(metrics.GetGauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                                       "The last time the datapath was successfully synced (Unix seconds).")),
      programming_(metrics.GetHistogram(
          "kubeproxy_network_programming_duration_seconds",
          "From an EndpointSlice's last-change-trigger-time to its change being served by the datapath.",
          NetworkProgrammingBuckets())),
      errors_(metrics.GetCounter("weir_sync_errors_total", "Syncs that failed to apply.")),
      frontends_(metrics.GetGauge("weir_service_frontends", "Frontend entries in the services map.")),
      backends_(metrics.GetGauge("weir_service_backends", "Entries in the backends map.")),
      skipped_(metrics.GetGauge("weir_manifest_objects_skipped", "Objects that failed to decode.")) {}

void SyncMetrics::Synced(bool complete, std::chrono::microseconds duration,
                         std::chrono::system_clock::time_point now,
                         const std::vector<double>& programming_latencies, size_t frontends,
                         size_t backends) {
  const double seconds = std::chrono::duration<double>(duration).count();
  duration_.Observe(seconds);
  weir_duration_.Observe(seconds);
  (complete ? full_duration_ : partial_duration_).Observe(seconds);
  last_timestamp_.Set(std::chrono::duration<double>(now.time_since_epoch()).count());
  for (double latency : programming_latencies) programming_.Observe(latency);
  frontends_.Set(static_cast<double>(frontends));
  backends_.Set(static_cast<double>(backends));
}

void SyncMetrics::MapFillRead(const std::vector<MapFill>& fills) {
  for (const MapFill& fill : fills) {
    metrics_
        .GetGauge("weir_map_entries", "Entries in a pinned BPF map (arrays count every slot).",
                  {{"map", fill.name}})
        .Set(fill.entries);
    metrics_.GetGauge("weir_map_capacity", "max_entries of a pinned BPF map.", {{"map", fill.name}})
        .Set(fill.capacity);
  }
}

}  // namespace weir::agent
