#include "proxy/agent/service_sync.h"

#include <set>

namespace weir::agent {

lb::NodeContext NodeContextFrom(const AgentConfig& config) {
  return lb::NodeContext{.node_name = config.node_name,
                         .node_addresses = config.node_addresses,
                         .zone = config.zone,
                         .maglev = config.maglev,
                         .lb_mode = config.lb_mode};
}

absl::StatusOr<SyncResult> SyncServices(const std::vector<k8s::Service>& services,
                                        const std::vector<k8s::EndpointSlice>& slices,
                                        const lb::NodeContext& node, sync::Reconciler& reconciler) {
  using Clock = std::chrono::steady_clock;
  SyncResult result;
  auto start = Clock::now();
  lb::DesiredState desired = lb::Translate(services, slices, node);
  auto translated = Clock::now();
  auto stats = reconciler.Apply(desired);
  if (!stats.ok()) return stats.status();
  result.stats = *stats;
  result.translate_time = std::chrono::duration_cast<std::chrono::microseconds>(translated - start);
  result.apply_time = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - translated);
  result.frontends = desired.frontends.size();
  result.backends = reconciler.backend_count();
  return result;
}

}  // namespace weir::agent
