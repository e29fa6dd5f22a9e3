// The one way userspace reads and writes a BPF map: BpfMap<Key, Value> over the structs of bpf/abi.
// Opening checks the map's key and value sizes against this build's, so a map pinned by an
// incompatible build fails loudly instead of being misread. Listing reads in batches where the
// kernel and map type allow it: a walk key by key restarts from the first bucket whenever the key it
// stands on is deleted (conntrack and the LRU churn), and costs two system calls per entry.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "lib/abi_codec.h"
#include "lib/unique_fd.h"

namespace weir {

// A map as byte strings: what BpfMap<Key, Value> is made of, and what tools that inspect every
// pinned map whatever its types (weirctl status, the map-fill metrics) use directly.
class UntypedBpfMap {
 public:
  // `key_size`/`value_size` nullopt: any size (tools; the Maglev map, sized at load time). An empty
  // `name` takes the kernel's name of the map.
  static absl::StatusOr<UntypedBpfMap> FromFd(UniqueFd fd, std::string name, std::optional<uint32_t> key_size,
                                              std::optional<uint32_t> value_size);
  // NotFound when nothing is pinned at `path`. The map's name is the pin's file name.
  static absl::StatusOr<UntypedBpfMap> OpenPinned(const std::string& path, std::optional<uint32_t> key_size,
                                                  std::optional<uint32_t> value_size);

  absl::Status Update(const void* key, const void* value) const;
  // Succeeds when the entry is already gone.
  absl::Status Delete(const void* key) const;
  // false when absent. Per-CPU maps fill value_stride() bytes.
  absl::StatusOr<bool> Lookup(const void* key, void* value) const;

  // How many entries the map holds; arrays count as full (every slot exists).
  absl::StatusOr<uint64_t> Count() const;

  // The two ways of reading every entry (`visit` gets key bytes and value_stride() value bytes).
  // In batches where the map supports it: Unimplemented when the kernel or map type has none, or
  // a bucket is larger than a batch, possibly after some entries were visited. Key by key otherwise,
  // bounded so that heavy churn cannot keep the walk going forever. Either way entries created
  // during the walk may be missed and an entry may come twice.
  absl::Status ReadInBatches(absl::FunctionRef<void(const uint8_t* key, const uint8_t* value)> visit) const;
  absl::Status ReadOneByOne(absl::FunctionRef<void(const uint8_t* key, const uint8_t* value)> visit) const;

  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }
  uint32_t type() const { return type_; }
  uint32_t key_size() const { return key_size_; }
  uint32_t value_size() const { return value_size_; }
  uint32_t max_entries() const { return max_entries_; }
  uint32_t flags() const { return flags_; }
  bool per_cpu() const;
  bool is_array() const;
  // Bytes of one value as lookups return it: for per-CPU maps, one 8-byte aligned copy per CPU.
  size_t value_stride() const { return value_stride_; }

 private:
  UntypedBpfMap() = default;
  UniqueFd fd_;
  std::string name_;
  uint32_t type_ = 0;
  uint32_t key_size_ = 0;
  uint32_t value_size_ = 0;
  uint32_t max_entries_ = 0;
  uint32_t flags_ = 0;
  size_t value_stride_ = 0;
};

// How a value type is laid out in a map. Fixed-size structs by default; std::vector<Element> for a
// map whose value is an array sized when the map was created (the Maglev tables).
template <typename Value>
struct BpfMapValue {
  static_assert(std::is_trivially_copyable_v<Value>);
  static constexpr std::optional<uint32_t> kSize = sizeof(Value);
  static absl::Status CheckMapSize(uint32_t) { return absl::OkStatus(); }
  static Value Make(uint32_t) { return Value{}; }
  static absl::Status CheckFits(const Value&, uint32_t) { return absl::OkStatus(); }
  static void* Data(Value& value) { return &value; }
  static const void* Data(const Value& value) { return &value; }
};

template <typename Element>
struct BpfMapValue<std::vector<Element>> {
  static_assert(std::is_trivially_copyable_v<Element>);
  static constexpr std::optional<uint32_t> kSize = std::nullopt;
  static absl::Status CheckMapSize(uint32_t size) {
    if (size == 0 || size % sizeof(Element) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("value size ", size, " is not a whole number of ", sizeof(Element), "-byte elements"));
    }
    return absl::OkStatus();
  }
  static std::vector<Element> Make(uint32_t size) { return std::vector<Element>(size / sizeof(Element)); }
  static absl::Status CheckFits(const std::vector<Element>& value, uint32_t size) {
    if (value.size() * sizeof(Element) != size) {
      return absl::InvalidArgumentError(
          absl::StrCat(value.size(), " elements, the map holds ", size / sizeof(Element)));
    }
    return absl::OkStatus();
  }
  static void* Data(std::vector<Element>& value) { return value.data(); }
  static const void* Data(const std::vector<Element>& value) { return value.data(); }
};

// A map of bpf/abi key and value types. Errors name the map and the entry (abi::Render).
template <typename Key, typename Value>
class BpfMap {
  static_assert(std::is_trivially_copyable_v<Key>);
  using Layout = BpfMapValue<Value>;

 public:
  struct Entry {
    Key key;
    Value value;
  };

  static absl::StatusOr<BpfMap> FromFd(UniqueFd fd, std::string name = "") {
    return Checked(UntypedBpfMap::FromFd(std::move(fd), std::move(name), sizeof(Key), Layout::kSize));
  }
  static absl::StatusOr<BpfMap> OpenPinned(const std::string& path) {
    return Checked(UntypedBpfMap::OpenPinned(path, sizeof(Key), Layout::kSize));
  }

  absl::Status Update(const Key& key, const Value& value) const {
    if (absl::Status fits = Layout::CheckFits(value, map_.value_size()); !fits.ok()) {
      return Context(fits, "write", key);
    }
    return Context(map_.Update(&key, Layout::Data(value)), "write", key);
  }
  // Succeeds when the entry is already gone.
  absl::Status Delete(const Key& key) const { return Context(map_.Delete(&key), "delete", key); }
  // nullopt when absent.
  absl::StatusOr<std::optional<Value>> Lookup(const Key& key) const {
    if (map_.per_cpu()) return PerCpuError();
    Value value = Layout::Make(map_.value_size());
    absl::StatusOr<bool> found = map_.Lookup(&key, Layout::Data(value));
    if (!found.ok()) return Context(found.status(), "look up", key);
    if (!*found) return std::nullopt;
    return value;
  }
  // One value per possible CPU (per-CPU maps); nullopt when absent.
  absl::StatusOr<std::optional<std::vector<Value>>> LookupPerCpu(const Key& key) const {
    static_assert(sizeof(Value) % 8 == 0, "per-CPU values are copied at 8-byte strides");
    if (!map_.per_cpu()) return absl::FailedPreconditionError(absl::StrCat(map_.name(), " is not per-CPU"));
    std::vector<Value> values(map_.value_stride() / sizeof(Value));
    absl::StatusOr<bool> found = map_.Lookup(&key, values.data());
    if (!found.ok()) return Context(found.status(), "look up", key);
    if (!*found) return std::nullopt;
    return values;
  }
  // Every entry, in no particular order: in batches where the map allows, else key by key
  // (UntypedBpfMap::ReadInBatches says what churn does).
  absl::StatusOr<std::vector<Entry>> List() const {
    if (map_.per_cpu()) return PerCpuError();
    std::vector<Entry> entries;
    auto collect = [&](const uint8_t* key, const uint8_t* value) { entries.push_back(Decode(key, value)); };
    absl::Status status = map_.ReadInBatches(collect);
    if (absl::IsUnimplemented(status)) {
      entries.clear();
      status = map_.ReadOneByOne(collect);
    }
    if (!status.ok()) return status;
    return entries;
  }
  // Every entry of a per-CPU map with one value per possible CPU, read as List reads.
  struct PerCpuEntry {
    Key key;
    std::vector<Value> values;
  };
  absl::StatusOr<std::vector<PerCpuEntry>> ListPerCpu() const {
    static_assert(sizeof(Value) % 8 == 0, "per-CPU values are copied at 8-byte strides");
    if (!map_.per_cpu()) return absl::FailedPreconditionError(absl::StrCat(map_.name(), " is not per-CPU"));
    std::vector<PerCpuEntry> entries;
    auto collect = [&](const uint8_t* key, const uint8_t* value) {
      PerCpuEntry& entry = entries.emplace_back();
      std::memcpy(&entry.key, key, sizeof(Key));
      entry.values.resize(map_.value_stride() / sizeof(Value));
      std::memcpy(entry.values.data(), value, map_.value_stride());
    };
    absl::Status status = map_.ReadInBatches(collect);
    if (absl::IsUnimplemented(status)) {
      entries.clear();
      status = map_.ReadOneByOne(collect);
    }
    if (!status.ok()) return status;
    return entries;
  }
  absl::StatusOr<uint64_t> Count() const { return map_.Count(); }

  const UntypedBpfMap& untyped() const { return map_; }
  int fd() const { return map_.fd(); }
  const std::string& name() const { return map_.name(); }
  uint32_t max_entries() const { return map_.max_entries(); }
  uint32_t value_size() const { return map_.value_size(); }

 private:
  explicit BpfMap(UntypedBpfMap map) : map_(std::move(map)) {}

  static absl::StatusOr<BpfMap> Checked(absl::StatusOr<UntypedBpfMap> map) {
    if (!map.ok()) return map.status();
    if (absl::Status size = Layout::CheckMapSize(map->value_size()); !size.ok()) {
      return absl::Status(size.code(), absl::StrCat("map ", map->name(), ": ", size.message()));
    }
    return BpfMap(*std::move(map));
  }

  Entry Decode(const uint8_t* key_bytes, const uint8_t* value_bytes) const {
    Entry entry{Key{}, Layout::Make(map_.value_size())};
    std::memcpy(&entry.key, key_bytes, sizeof(Key));
    std::memcpy(Layout::Data(entry.value), value_bytes, map_.value_size());
    return entry;
  }

  absl::Status PerCpuError() const {
    return absl::FailedPreconditionError(absl::StrCat(map_.name(), " is per-CPU: use LookupPerCpu"));
  }

  absl::Status Context(const absl::Status& status, absl::string_view verb, const Key& key) const {
    if (status.ok()) return status;
    return absl::Status(status.code(), absl::StrCat(verb, " ", abi::Render(key), " in ", map_.name(), ": ",
                                                    status.message()));
  }

  UntypedBpfMap map_;
};

}  // namespace weir
