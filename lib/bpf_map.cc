#include "lib/bpf_map.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>

#include "lib/errno_status.h"

namespace weir {
namespace {

std::string PinName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool SupportsBatches(uint32_t type) {
  switch (type) {
    case BPF_MAP_TYPE_HASH:
    case BPF_MAP_TYPE_LRU_HASH:
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_ARRAY:
    case BPF_MAP_TYPE_PERCPU_ARRAY: return true;
    default: return false;
  }
}

}  // namespace

absl::StatusOr<UntypedBpfMap> UntypedBpfMap::FromFd(UniqueFd fd, std::string name,
                                                    std::optional<uint32_t> key_size,
                                                    std::optional<uint32_t> value_size) {
  bpf_map_info info{};
  uint32_t info_length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &info_length) != 0) {
    return ErrnoStatus(errno, absl::StrCat("query map ", name));
  }
  if (key_size.has_value() && info.key_size != *key_size) {
    return absl::FailedPreconditionError(
        absl::StrCat("map ", name, " has key size ", info.key_size, ", this build expects ", *key_size));
  }
  if (value_size.has_value() && info.value_size != *value_size) {
    return absl::FailedPreconditionError(absl::StrCat("map ", name, " has value size ", info.value_size,
                                                      ", this build expects ", *value_size));
  }
  UntypedBpfMap map;
  map.fd_ = std::move(fd);
  map.name_ = name.empty() ? std::string(info.name) : std::move(name);
  map.type_ = info.type;
  map.key_size_ = info.key_size;
  map.value_size_ = info.value_size;
  map.max_entries_ = info.max_entries;
  map.flags_ = info.map_flags;
  map.value_stride_ = info.value_size;
  if (map.per_cpu()) {
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) return ErrnoStatus(-cpus, "count possible CPUs");
    map.value_stride_ = (info.value_size + 7) / 8 * 8 * static_cast<size_t>(cpus);
  }
  return map;
}

absl::StatusOr<UntypedBpfMap> UntypedBpfMap::OpenPinned(const std::string& path,
                                                        std::optional<uint32_t> key_size,
                                                        std::optional<uint32_t> value_size) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("open pinned map ", path));
  return FromFd(std::move(fd), PinName(path), key_size, value_size);
}

bool UntypedBpfMap::per_cpu() const {
  return type_ == BPF_MAP_TYPE_PERCPU_HASH || type_ == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
         type_ == BPF_MAP_TYPE_PERCPU_ARRAY;
}

bool UntypedBpfMap::is_array() const {
  return type_ == BPF_MAP_TYPE_ARRAY || type_ == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type_ == BPF_MAP_TYPE_PROG_ARRAY || type_ == BPF_MAP_TYPE_ARRAY_OF_MAPS;
}

absl::Status UntypedBpfMap::Update(const void* key, const void* value) const {
  if (bpf_map_update_elem(fd_.get(), key, value, BPF_ANY) != 0) return ErrnoStatus(errno, "update");
  return absl::OkStatus();
}

absl::Status UntypedBpfMap::Delete(const void* key) const {
  if (bpf_map_delete_elem(fd_.get(), key) != 0 && errno != ENOENT) return ErrnoStatus(errno, "delete");
  return absl::OkStatus();
}

absl::StatusOr<bool> UntypedBpfMap::Lookup(const void* key, void* value) const {
  if (bpf_map_lookup_elem(fd_.get(), key, value) != 0) {
    if (errno == ENOENT) return false;
    return ErrnoStatus(errno, "look up");
  }
  return true;
}

absl::Status UntypedBpfMap::ReadInBatches(
    absl::FunctionRef<void(const uint8_t* key, const uint8_t* value)> visit) const {
  if (!SupportsBatches(type_)) return absl::UnimplementedError("no batch lookup for this map type");
  // About 4 MiB of buffers whatever the entry size (Maglev tables are kilobytes each).
  const uint32_t batch =
      static_cast<uint32_t>(std::clamp<size_t>((4u << 20) / (key_size_ + value_stride_), 64, 4096));
  std::vector<uint8_t> keys(static_cast<size_t>(batch) * key_size_);
  std::vector<uint8_t> values(batch * value_stride_);
  // The position token; for hash maps the kernel keeps a bucket index in it.
  uint64_t position = 0;
  bool first = true;
  while (true) {
    uint32_t count = batch;
    const int result = bpf_map_lookup_batch(fd_.get(), first ? nullptr : &position, &position, keys.data(),
                                            values.data(), &count, nullptr);
    const int error = result == 0 ? 0 : errno;
    if (error != 0 && error != ENOENT) {
      if (error == EINVAL || error == ENOTSUP || error == EOPNOTSUPP || error == ENOSPC) {
        // Older kernels, or a bucket larger than a batch: the caller walks the map instead.
        return absl::UnimplementedError("batch lookup unavailable");
      }
      return ErrnoStatus(error, absl::StrCat("read map ", name_));
    }
    for (uint32_t i = 0; i < count; ++i) {
      visit(keys.data() + static_cast<size_t>(i) * key_size_, values.data() + i * value_stride_);
    }
    if (error == ENOENT) return absl::OkStatus();  // the end of the map
    first = false;
  }
}

absl::Status UntypedBpfMap::ReadOneByOne(
    absl::FunctionRef<void(const uint8_t* key, const uint8_t* value)> visit) const {
  std::vector<uint8_t> key(key_size_), next(key_size_), value(value_stride_);
  const void* previous = nullptr;
  // When the previous key has been deleted, get_next_key restarts from the first bucket: bound the
  // walk so that heavy churn cannot keep it going forever.
  const uint64_t max_steps = 2ull * max_entries_ + 16;
  for (uint64_t step = 0; step < max_steps; ++step) {
    if (bpf_map_get_next_key(fd_.get(), previous, next.data()) != 0) {
      if (errno == ENOENT) return absl::OkStatus();  // the end of the map
      return ErrnoStatus(errno, absl::StrCat("walk map ", name_));
    }
    if (bpf_map_lookup_elem(fd_.get(), next.data(), value.data()) == 0) {
      visit(next.data(), value.data());
    } else if (errno != ENOENT) {
      return ErrnoStatus(errno, absl::StrCat("read map ", name_));
    }
    key.swap(next);
    previous = key.data();
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> UntypedBpfMap::Count() const {
  if (is_array()) return max_entries_;
  uint64_t count = 0;
  absl::Status batched = ReadInBatches([&](const uint8_t*, const uint8_t*) { ++count; });
  if (batched.ok()) return count;
  if (!absl::IsUnimplemented(batched)) return batched;
  count = 0;
  absl::Status walked = ReadOneByOne([&](const uint8_t*, const uint8_t*) { ++count; });
  if (!walked.ok()) return walked;
  // A walk restarted by churn counts some entries twice.
  return std::min<uint64_t>(count, max_entries_);
}

}  // namespace weir
