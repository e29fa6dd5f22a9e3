// The conntrack step of the agent's loop: every `interval`, expired entries and entries of
// backends gone from the maps are deleted, and the fill of every pinned map is read (counting walks
// the keys, so it shares the collection's pace rather than each scrape's).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "proxy/agent/metrics.h"
#include "proxy/agent/sync_metrics.h"
#include "proxy/sync/conntrack_gc.h"

namespace weir::agent {

class ConntrackCollection {
 public:
  using Clock = std::chrono::steady_clock;

  // `gc`: nullopt when the conntrack map could not be opened (only the map fill is read then).
  // `is_live_backend`: the reconciler's answer for a backend id (ConntrackGc::Collect says why).
  ConntrackCollection(std::optional<sync::ConntrackGc> gc, std::string bpf_root,
                      std::chrono::seconds interval, std::function<bool(uint32_t)> is_live_backend,
                      Metrics& metrics, SyncMetrics& sync_metrics);

  // Collects when the interval has passed since the last collection (the first one an interval
  // after construction). Call only once the maps were synced: ids unknown to the reconciler count
  // as gone.
  void RunIfDue(Clock::time_point now);

 private:
  std::optional<sync::ConntrackGc> gc_;
  std::string bpf_root_;
  std::chrono::seconds interval_;
  std::function<bool(uint32_t)> is_live_backend_;
  SyncMetrics& sync_metrics_;
  Gauge& entries_;
  Gauge& capacity_;
  Counter& deleted_;
  Clock::time_point last_ = Clock::now();
};

}  // namespace weir::agent
