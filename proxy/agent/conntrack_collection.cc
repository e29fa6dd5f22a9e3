#include "proxy/agent/conntrack_collection.h"

#include "lib/map_fill.h"
#include "spdlog/spdlog.h"

namespace weir::agent {

ConntrackCollection::ConntrackCollection(std::optional<sync::ConntrackGc> gc, std::string bpf_root,
                                         std::chrono::seconds interval,
                                         std::function<bool(uint32_t)> is_live_backend, Metrics& metrics,
                                         SyncMetrics& sync_metrics)
    : gc_(std::move(gc)),
      bpf_root_(std::move(bpf_root)),
      interval_(interval),
      is_live_backend_(std::move(is_live_backend)),
      sync_metrics_(sync_metrics),
      entries_(metrics.GetGauge("weir_conntrack_entries", "Conntrack entries after the last collection.")),
      capacity_(metrics.GetGauge("weir_conntrack_capacity", "Conntrack map size.")),
      deleted_(metrics.GetCounter("weir_conntrack_gc_deleted_total", "Conntrack entries collected.")) {}

void ConntrackCollection::RunIfDue(Clock::time_point now) {
  if (now - last_ <= interval_) return;
  last_ = now;
  if (gc_) {
    auto collected = gc_->Collect(sync::MonotonicNowNs(), is_live_backend_);
    if (collected.ok()) {
      entries_.Set(static_cast<double>(collected->entries_after));
      capacity_.Set(static_cast<double>(collected->capacity));
      deleted_.Increment(static_cast<double>(collected->deleted_expired + collected->deleted_stale_backend));
    } else {
      spdlog::warn("conntrack gc: {}", collected.status().ToString());
    }
  }
  if (auto fills = ReadMapFill(bpf_root_); fills.ok()) {
    sync_metrics_.MapFillRead(*fills);
  } else {
    spdlog::warn("map fill: {}", fills.status().ToString());
  }
}

}  // namespace weir::agent
