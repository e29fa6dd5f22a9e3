// The sync step of the agent's loop. When the source reports a change (or a retry is due), it
// syncs the changed Services only, or every Service: the first sync, a source that tracks no
// changes, and any sync after a failure (of the services or of the node step that follows, since
// the maps keep their last good state meanwhile). A failure is retried after kRetryDelay, so that a
// lasting one does not flood the log. Alone, so that these rules are tested without a datapath.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "proxy/agent/network_programming.h"
#include "proxy/agent/service_sync.h"
#include "proxy/agent/sync_metrics.h"
#include "proxy/k8s/objects.h"
#include "proxy/source/object_source.h"

namespace weir::agent {

class SyncStep {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kRetryDelay{5};

  struct Followers {
    // After each successful service sync (facts for weirctl, health-check ports).
    std::function<void(const SyncResult&, bool complete)> synced;
    std::function<void()> failed;
    // The node-level step, with the Nodes when any changed; false makes the next sync a complete
    // retry.
    std::function<bool(const std::vector<k8s::Node>&)> sync_node;
    // The policy step, with the complete view or with the changes (one of the two is null); run
    // whatever the services' outcome, since it writes maps of its own. False makes the next sync a
    // complete retry.
    std::function<bool(const k8s::ObjectSet* complete, const SourceChanges* changes)> sync_policy;
  };

  SyncStep(ObjectSource& source, ServiceSync& services, SyncMetrics& metrics, Followers followers)
      : source_(source), services_(services), metrics_(metrics), followers_(std::move(followers)) {}

  // Something changed in the source: sync at the next Run().
  void MarkDirty() { dirty_ = true; }
  // Syncs when one is due at `now`.
  void Run(Clock::time_point now);

  // The datapath holds what the source last said (readiness).
  bool in_sync() const { return in_sync_; }

 private:
  ObjectSource& source_;
  ServiceSync& services_;
  SyncMetrics& metrics_;
  Followers followers_;
  NetworkProgrammingTracker programming_;
  bool dirty_ = true;
  bool need_complete_ = true;
  bool in_sync_ = false;
  Clock::time_point retry_after_{};
};

}  // namespace weir::agent
