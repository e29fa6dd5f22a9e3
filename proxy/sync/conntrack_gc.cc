#include "proxy/sync/conntrack_gc.h"

#include <time.h>

namespace weir::sync {

// --- BpfConntrackTable ---

absl::StatusOr<std::unique_ptr<BpfConntrackTable>> BpfConntrackTable::OpenPinned(const PinLayout& layout) {
  absl::StatusOr<ConntrackMap> map = ConntrackMap::OpenPinned(layout.map(WEIR_CONNTRACK_MAP_NAME));
  if (!map.ok()) return map.status();
  return std::unique_ptr<BpfConntrackTable>(new BpfConntrackTable(*std::move(map)));
}

absl::StatusOr<std::unique_ptr<BpfConntrackTable>> BpfConntrackTable::FromFd(UniqueFd fd) {
  absl::StatusOr<ConntrackMap> map = ConntrackMap::FromFd(std::move(fd), WEIR_CONNTRACK_MAP_NAME);
  if (!map.ok()) return map.status();
  return std::unique_ptr<BpfConntrackTable>(new BpfConntrackTable(*std::move(map)));
}

// --- ConntrackGc ---

absl::StatusOr<ConntrackGc> ConntrackGc::OpenPinned(const PinLayout& layout, ConntrackGcOptions options) {
  absl::StatusOr<std::unique_ptr<BpfConntrackTable>> table = BpfConntrackTable::OpenPinned(layout);
  if (!table.ok()) return table.status();
  return ConntrackGc(*std::move(table), options);
}

ConntrackGc::Verdict ConntrackGc::Judge(const weir_ct_value& value, uint64_t now_ns,
                                        const std::function<bool(uint32_t)>& is_live_backend,
                                        uint8_t proto) const {
  if (value.backend_id != 0 && !is_live_backend(value.backend_id)) return Verdict::kStaleBackend;
  const std::chrono::nanoseconds lifetime = (value.flags & WEIR_CT_CLOSING) ? options_.closing_lifetime
                                            : proto == WEIR_PROTO_TCP       ? options_.tcp_lifetime
                                                                            : options_.other_lifetime;
  // An entry refreshed after the caller read the clock is newer than `now_ns`: idle for 0.
  const uint64_t idle_ns = now_ns > value.last_seen_ns ? now_ns - value.last_seen_ns : 0;
  if (idle_ns > static_cast<uint64_t>(lifetime.count())) return Verdict::kExpired;
  return Verdict::kKeep;
}

absl::StatusOr<ConntrackGcStats> ConntrackGc::Collect(uint64_t now_ns,
                                                      const std::function<bool(uint32_t)>& is_live_backend) {
  absl::StatusOr<std::vector<ConntrackEntry>> entries = table_->List();
  if (!entries.ok()) return entries.status();

  ConntrackGcStats stats;
  stats.scanned = entries->size();
  stats.capacity = table_->capacity();
  // Decide on the whole listing first and delete afterwards: deleting during the walk would make
  // get_next_key lose its place and restart.
  std::vector<weir_ct_key> doomed;
  for (const ConntrackEntry& entry : *entries) {
    if (Judge(entry.value, now_ns, is_live_backend, entry.key.proto) != Verdict::kKeep)
      doomed.push_back(entry.key);
  }
  for (const weir_ct_key& key : doomed) {
    // The datapath may have refreshed or re-created the entry since the listing: judge it afresh.
    absl::StatusOr<std::optional<weir_ct_value>> current = table_->Lookup(key);
    if (!current.ok()) return current.status();
    if (!current->has_value()) continue;  // gone already (LRU eviction, duplicate in the listing)
    const Verdict verdict = Judge(**current, now_ns, is_live_backend, key.proto);
    if (verdict == Verdict::kKeep) continue;
    if (absl::Status status = table_->Delete(key); !status.ok()) return status;
    ++(verdict == Verdict::kExpired ? stats.deleted_expired : stats.deleted_stale_backend);
  }
  const size_t deleted = stats.deleted_expired + stats.deleted_stale_backend;
  stats.entries_after = stats.scanned > deleted ? stats.scanned - deleted : 0;
  return stats;
}

uint64_t MonotonicNowNs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(now.tv_nsec);
}

}  // namespace weir::sync
