#include "proxy/agent/sync_step.h"

#include <malloc.h>

#include <optional>

#include "spdlog/spdlog.h"

namespace weir::agent {

void SyncStep::Run(Clock::time_point now) {
  if (!dirty_ || !source_.Ready() || now < retry_after_) return;
  // Taken first in any case: a complete sync from a later snapshot covers these changes too.
  std::optional<SourceChanges> changes = source_.TakeChanges();
  const bool complete = need_complete_ || !changes.has_value();
  std::optional<std::vector<k8s::Node>> nodes;
  absl::StatusOr<SyncResult> synced;
  bool policy_synced = true;
  if (complete) {
    {
      k8s::ObjectSet objects = source_.Snapshot();
      metrics_.Skipped(objects.skipped);
      if (followers_.sync_policy) policy_synced = followers_.sync_policy(&objects, nullptr);
      for (const k8s::EndpointSlice& slice : objects.slices) programming_.Note(slice);
      synced = services_.SyncAll(objects.services, objects.slices);
      nodes = std::move(objects.nodes);
    }
    // The snapshot and the complete desired state were copies as large as the cluster: hand their
    // pages back rather than keep them resident until the next complete sync.
    malloc_trim(0);
  } else {
    metrics_.Skipped(changes->skipped);
    if (followers_.sync_policy) policy_synced = followers_.sync_policy(nullptr, &*changes);
    for (const k8s::ServiceObjects& changed : changes->services) {
      for (const k8s::EndpointSlice& slice : changed.slices) programming_.Note(slice);
    }
    synced = services_.SyncChanged(changes->services);
    nodes = std::move(changes->nodes);
  }
  bool node_synced = true;
  if (!synced.ok()) {
    metrics_.Failed();
    if (followers_.failed) followers_.failed();
    in_sync_ = false;
    spdlog::error("sync: {}", synced.status().ToString());
  } else {
    in_sync_ = true;
    const auto synced_at = std::chrono::system_clock::now();
    metrics_.Synced(complete, synced->translate_time + synced->apply_time, synced_at,
                    programming_.TakeLatencies(synced_at, complete), synced->frontends, synced->backends);
    if (followers_.synced) followers_.synced(*synced, complete);
    if (nodes && followers_.sync_node) node_synced = followers_.sync_node(*nodes);
    if (complete || synced->stats.writes() + synced->stats.deletes() > 0) {
      spdlog::info("synced {} {}Services: {} frontends, {} backends ({} writes, {} deletes) in {} us",
                   synced->services, complete ? "" : "changed ", synced->frontends, synced->backends,
                   synced->stats.writes(), synced->stats.deletes(),
                   (synced->translate_time + synced->apply_time).count());
    }
  }
  need_complete_ = !synced.ok() || !node_synced || !policy_synced;
  dirty_ = need_complete_;
  if (dirty_) retry_after_ = now + kRetryDelay;
}

}  // namespace weir::agent
