#include "proxy/sync/conntrack_gc.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <time.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "lib/errno_status.h"

namespace weir::sync {

// --- BpfConntrackTable ---

absl::StatusOr<std::unique_ptr<BpfConntrackTable>> BpfConntrackTable::OpenPinned(const PinLayout& layout) {
  const std::string path = layout.map(WEIR_CONNTRACK_MAP_NAME);
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open pinned map ", path));
  return FromFd(UniqueFd(fd));
}

absl::StatusOr<std::unique_ptr<BpfConntrackTable>> BpfConntrackTable::FromFd(UniqueFd fd) {
  bpf_map_info info{};
  uint32_t info_length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &info_length) != 0) {
    return ErrnoStatus(errno, "query map " WEIR_CONNTRACK_MAP_NAME);
  }
  if (info.key_size != sizeof(weir_ct_key) || info.value_size != sizeof(weir_ct_value)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "map " WEIR_CONNTRACK_MAP_NAME " has key/value sizes ", info.key_size, "/", info.value_size,
        ", this build expects ", sizeof(weir_ct_key), "/", sizeof(weir_ct_value)));
  }
  return std::unique_ptr<BpfConntrackTable>(new BpfConntrackTable(std::move(fd), info.max_entries));
}

absl::StatusOr<std::vector<ConntrackEntry>> BpfConntrackTable::List() const {
  // In batches: a busy node holds 100k entries or more, and the walk below costs two system calls
  // per entry (about a second at that size) on the agent's sync thread.
  absl::StatusOr<std::vector<ConntrackEntry>> batched = ListInBatches();
  if (batched.ok() || !absl::IsUnimplemented(batched.status())) return batched;
  return ListOneByOne();
}

absl::StatusOr<std::vector<ConntrackEntry>> BpfConntrackTable::ListInBatches() const {
  constexpr uint32_t kBatchSize = 1024;
  std::vector<ConntrackEntry> entries;
  std::vector<weir_ct_key> keys(kBatchSize);
  std::vector<weir_ct_value> values(kBatchSize);
  // The position token; for hash maps the kernel keeps a bucket index in it.
  uint64_t position = 0;
  bool first = true;
  while (true) {
    uint32_t count = kBatchSize;
    const int result = bpf_map_lookup_batch(fd_.get(), first ? nullptr : &position, &position, keys.data(),
                                            values.data(), &count, nullptr);
    const int error = result == 0 ? 0 : errno;
    if (error != 0 && error != ENOENT) {
      if (error == EINVAL || error == ENOTSUP || error == EOPNOTSUPP || error == ENOSPC) {
        // Older kernels, or a bucket larger than a batch: the caller walks the map instead.
        return absl::UnimplementedError("batch lookup unavailable");
      }
      return ErrnoStatus(error, "read map " WEIR_CONNTRACK_MAP_NAME);
    }
    for (uint32_t i = 0; i < count; ++i) entries.push_back(ConntrackEntry{.key = keys[i], .value = values[i]});
    if (error == ENOENT) return entries;  // the end of the map
    first = false;
  }
}

absl::StatusOr<std::vector<ConntrackEntry>> BpfConntrackTable::ListOneByOne() const {
  std::vector<ConntrackEntry> entries;
  weir_ct_key key{};
  weir_ct_key next{};
  const weir_ct_key* previous = nullptr;
  // When the previous key has been deleted (the LRU evicts under load), get_next_key restarts from
  // the first bucket: bound the walk so that heavy churn cannot keep it going forever.
  const uint64_t max_steps = 2ull * max_entries_ + 16;
  for (uint64_t step = 0; step < max_steps; ++step) {
    if (bpf_map_get_next_key(fd_.get(), previous, &next) != 0) {
      if (errno == ENOENT) return entries;  // the end of the map
      return ErrnoStatus(errno, "walk map " WEIR_CONNTRACK_MAP_NAME);
    }
    ConntrackEntry entry{.key = next, .value = {}};
    if (bpf_map_lookup_elem(fd_.get(), &next, &entry.value) == 0) {
      entries.push_back(entry);
    } else if (errno != ENOENT) {
      return ErrnoStatus(errno, "read map " WEIR_CONNTRACK_MAP_NAME);
    }
    key = next;
    previous = &key;
  }
  return entries;
}

absl::StatusOr<std::optional<weir_ct_value>> BpfConntrackTable::Lookup(const weir_ct_key& key) const {
  weir_ct_value value{};
  if (bpf_map_lookup_elem(fd_.get(), &key, &value) != 0) {
    if (errno == ENOENT) return std::nullopt;
    return ErrnoStatus(errno, "look up in map " WEIR_CONNTRACK_MAP_NAME);
  }
  return value;
}

absl::Status BpfConntrackTable::Delete(const weir_ct_key& key) {
  if (bpf_map_delete_elem(fd_.get(), &key) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "delete from map " WEIR_CONNTRACK_MAP_NAME);
  }
  return absl::OkStatus();
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
                                            : proto == WEIR_PROTO_TCP     ? options_.tcp_lifetime
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
    if (Judge(entry.value, now_ns, is_live_backend, entry.key.proto) != Verdict::kKeep) doomed.push_back(entry.key);
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
