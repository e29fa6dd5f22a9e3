// One pass of the service pipeline: objects in, translation, the reconciler writing only the
// differences. Shared by standalone mode and (later) the Kubernetes API source.
#pragma once

#include <chrono>
#include <vector>

#include "absl/status/statusor.h"
#include "proxy/agent/agent_config.h"
#include "proxy/k8s/objects.h"
#include "proxy/lb/translate.h"
#include "proxy/sync/reconciler.h"

namespace weir::agent {

struct SyncResult {
  size_t frontends = 0;
  size_t backends = 0;
  sync::ReconcileStats stats;
  std::chrono::microseconds translate_time{0};
  std::chrono::microseconds apply_time{0};
};

lb::NodeContext NodeContextFrom(const AgentConfig& config);

absl::StatusOr<SyncResult> SyncServices(const std::vector<k8s::Service>& services,
                                        const std::vector<k8s::EndpointSlice>& slices,
                                        const lb::NodeContext& node, sync::Reconciler& reconciler);

}  // namespace weir::agent
