#include "lib/map_copy.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/errno_status.h"

namespace weir {
namespace {

absl::StatusOr<std::vector<MapEntryBytes>> ReadAll(const UntypedBpfMap& map) {
  std::vector<MapEntryBytes> entries;
  auto collect = [&](const uint8_t* key, const uint8_t* value) {
    entries.push_back({std::vector<uint8_t>(key, key + map.key_size()),
                       std::vector<uint8_t>(value, value + map.value_stride())});
  };
  absl::Status status = map.ReadInBatches(collect);
  if (absl::IsUnimplemented(status)) {
    entries.clear();
    status = map.ReadOneByOne(collect);
  }
  if (!status.ok()) return status;
  return entries;
}

// Runs the calling thread on one CPU at a time, and back on the CPUs it had when it goes.
class CpuHopper {
 public:
  CpuHopper() {
    CPU_ZERO(&original_);
    if (sched_getaffinity(0, sizeof(original_), &original_) != 0) return;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &original_)) cpus_.push_back(cpu);
    }
  }
  ~CpuHopper() {
    if (!cpus_.empty()) sched_setaffinity(0, sizeof(original_), &original_);
  }
  CpuHopper(const CpuHopper&) = delete;
  CpuHopper& operator=(const CpuHopper&) = delete;

  size_t count() const { return cpus_.empty() ? 1 : cpus_.size(); }
  absl::Status RunOn(size_t index) const {
    if (cpus_.empty()) return absl::OkStatus();
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpus_[index], &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0) {
      return ErrnoStatus(errno, absl::StrCat("move the copying thread to CPU ", cpus_[index]));
    }
    return absl::OkStatus();
  }

 private:
  cpu_set_t original_;
  std::vector<int> cpus_;
};

}  // namespace

MapShape ShapeOf(const UntypedBpfMap& map, uint32_t layout) {
  return {.type = map.type(),
          .key_size = map.key_size(),
          .value_size = map.value_size(),
          .max_entries = map.max_entries(),
          .flags = map.flags(),
          .layout = layout};
}

absl::StatusOr<CopyCounts> CopyEntries(const UntypedBpfMap& from, const MapShape& from_shape,
                                       const UntypedBpfMap& to, const MapShape& to_shape,
                                       const AdoptionPlan& plan, CopyMode mode, CopiedKeys& copied) {
  CopyCounts counts;
  if (plan.adoption == Adoption::kRecreate || plan.adoption == Adoption::kReuse) return counts;
  // Every slot of an array always exists: arrays are copied once, whole.
  if (mode == CopyMode::kNew && to.is_array()) return counts;
  absl::StatusOr<std::vector<MapEntryBytes>> entries = ReadAll(from);
  if (!entries.ok()) return entries.status();
  counts.read = entries->size();

  const bool lru_per_cpu =
      (to.type() == BPF_MAP_TYPE_LRU_HASH || to.type() == BPF_MAP_TYPE_LRU_PERCPU_HASH) &&
      (to.flags() & BPF_F_NO_COMMON_LRU) != 0;
  CpuHopper hopper;
  const size_t hops = lru_per_cpu ? hopper.count() : 1;
  const size_t per_hop = (entries->size() + hops - 1) / hops;
  for (size_t i = 0; i < entries->size(); ++i) {
    if (lru_per_cpu && per_hop > 0 && i % per_hop == 0) {
      if (absl::Status moved = hopper.RunOn(i / per_hop); !moved.ok()) return moved;
    }
    MapEntryBytes& entry = (*entries)[i];
    std::string key(entry.key.begin(), entry.key.end());
    if (mode == CopyMode::kNew && copied.count(key) > 0) {
      ++counts.copied_before;
      continue;
    }
    absl::StatusOr<bool> kept = ConvertEntry(plan, from_shape, to_shape, entry);
    if (!kept.ok())
      return absl::Status(kept.status().code(), absl::StrCat(to.name(), ": ", kept.status().message()));
    if (!*kept) {
      ++counts.dropped;
      continue;
    }
    if (to.is_array()) {
      uint32_t index = 0;
      std::memcpy(&index, entry.key.data(), sizeof(index));
      if (index >= to.max_entries()) {
        ++counts.dropped;
        continue;
      }
    }
    if (bpf_map_update_elem(to.fd(), entry.key.data(), entry.value.data(), BPF_ANY) == 0) {
      ++counts.written;
      copied.insert(std::move(key));
      continue;
    }
    const int error = errno;
    if (error == E2BIG || error == ENOSPC || error == ENOMEM) {
      return absl::FailedPreconditionError(
          absl::StrCat("its ", counts.read, " entries do not fit the new map of ", to.max_entries(), " (",
                       std::strerror(error), " after ", counts.written, ")"));
    }
    return ErrnoStatus(error, absl::StrCat("copy an entry into the new ", to.name()));
  }
  return counts;
}

}  // namespace weir
