// Garbage collection of the conntrack map (bpf/abi/conntrack.h). The datapath only creates and
// refreshes entries; the map is an LRU, so without collection it fills up and then evicts live flows
// at random. The collector removes entries idle past their protocol's lifetime, and entries whose
// backend is gone: a UDP client that keeps sending to a removed backend would otherwise refresh its
// entry forever and never be balanced again (kube-proxy clears UDP conntrack for the same reason).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/abi/conntrack.h"
#include "lib/conntrack_map.h"
#include "lib/pin_layout.h"
#include "lib/unique_fd.h"

namespace weir::sync {

using ConntrackEntry = ConntrackMap::Entry;

// The conntrack map as the collector (and weirctl) sees it.
class ConntrackTable {
 public:
  virtual ~ConntrackTable() = default;
  // Every entry, in no particular order. The datapath keeps writing meanwhile: entries created
  // during the walk may be missed, and an entry may appear twice.
  virtual absl::StatusOr<std::vector<ConntrackEntry>> List() const = 0;
  // nullopt when the entry is gone.
  virtual absl::StatusOr<std::optional<weir_ct_value>> Lookup(const weir_ct_key& key) const = 0;
  // Succeeds when the entry is already gone.
  virtual absl::Status Delete(const weir_ct_key& key) = 0;
  // The map's max_entries.
  virtual uint32_t capacity() const = 0;
};

// The pinned map <bpf root>/weir_ct.
class BpfConntrackTable : public ConntrackTable {
 public:
  // Fails when the map's key or value size differs from this build's ABI.
  static absl::StatusOr<std::unique_ptr<BpfConntrackTable>> OpenPinned(const PinLayout& layout);
  static absl::StatusOr<std::unique_ptr<BpfConntrackTable>> FromFd(UniqueFd fd);

  // In batches where the kernel allows: a busy node holds 100k entries or more, and a walk key by
  // key costs two system calls per entry (about a second at that size) on the agent's sync thread.
  absl::StatusOr<std::vector<ConntrackEntry>> List() const override { return map_.List(); }
  absl::StatusOr<std::optional<weir_ct_value>> Lookup(const weir_ct_key& key) const override {
    return map_.Lookup(key);
  }
  absl::Status Delete(const weir_ct_key& key) override { return map_.Delete(key); }
  uint32_t capacity() const override { return map_.max_entries(); }

 private:
  explicit BpfConntrackTable(ConntrackMap map) : map_(std::move(map)) {}
  ConntrackMap map_;
};

struct ConntrackGcOptions {
  // How long an entry may go unused before it is removed. A TCP entry must outlive any plausible
  // idle connection, unless the datapath saw it close (FIN or RST: WEIR_CT_CLOSING).
  std::chrono::nanoseconds tcp_lifetime = std::chrono::hours(6);
  std::chrono::nanoseconds closing_lifetime = std::chrono::seconds(10);
  std::chrono::nanoseconds other_lifetime = std::chrono::seconds(60);  // UDP, SCTP, anything else
};

struct ConntrackGcStats {
  size_t scanned = 0;
  size_t deleted_expired = 0;
  size_t deleted_stale_backend = 0;
  size_t entries_after = 0;  // scanned minus deleted: the datapath adds entries meanwhile
  uint32_t capacity = 0;
};

class ConntrackGc {
 public:
  explicit ConntrackGc(std::unique_ptr<ConntrackTable> table, ConntrackGcOptions options = {})
      : table_(std::move(table)), options_(options) {}
  static absl::StatusOr<ConntrackGc> OpenPinned(const PinLayout& layout, ConntrackGcOptions options = {});

  // One pass: lists the map, then deletes every entry that is expired at `now_ns` (a
  // MonotonicNowNs() reading: the datapath stamps entries with bpf_ktime_get_ns(), which is
  // CLOCK_MONOTONIC) or whose backend id is not live (`is_live_backend`). Each doomed entry is looked
  // up again just before deletion, so a flow the datapath refreshed or re-created during the pass
  // survives. Entries without a backend id (0) are judged by age only.
  //
  // `is_live_backend` must answer for exactly the ids in the backends map: ask the reconciler's
  // mirror (Reconciler::HasBackend) on the sync thread, after the first successful reconcile (an id
  // just added and unknown to the collector would cost new flows their entries).
  absl::StatusOr<ConntrackGcStats> Collect(uint64_t now_ns,
                                           const std::function<bool(uint32_t)>& is_live_backend);

  const ConntrackGcOptions& options() const { return options_; }

 private:
  enum class Verdict { kKeep, kExpired, kStaleBackend };
  Verdict Judge(const weir_ct_value& value, uint64_t now_ns,
                const std::function<bool(uint32_t)>& is_live_backend, uint8_t proto) const;

  std::unique_ptr<ConntrackTable> table_;
  ConntrackGcOptions options_;
};

// clock_gettime(CLOCK_MONOTONIC) in nanoseconds: the clock of bpf_ktime_get_ns().
uint64_t MonotonicNowNs();

}  // namespace weir::sync
