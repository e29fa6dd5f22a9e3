#include "lib/service_maps.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "lib/errno_status.h"
#include "lib/ip.h"

namespace weir {
namespace {

// Prefixes the entry a failed operation was about, keeping the status code.
absl::Status WithContext(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

std::string DescribeAddress(const weir_addr& addr, uint8_t family) {
  if (family != WEIR_FAMILY_IPV4 && family != WEIR_FAMILY_IPV6) return absl::StrCat("<family ", family, ">");
  return IpAddress::FromBytes(family == WEIR_FAMILY_IPV4 ? IpFamily::kV4 : IpFamily::kV6, addr.bytes)
      .ToString();
}

std::string DescribeServiceKey(const weir_service_key& key) {
  return absl::StrCat("service ", DescribeAddress(key.addr, key.family), " port ", ntohs(key.port),
                      " proto ", key.proto, " scope ", key.scope);
}

std::string DescribeSlotKey(const weir_slot_key& key) {
  return absl::StrCat("slot ", key.slot, " of service id ", key.service_id);
}

template <typename Entry, typename Decode>
absl::StatusOr<std::vector<Entry>> DecodeAll(const RawBpfMap& map, Decode decode) {
  absl::StatusOr<std::vector<std::vector<uint8_t>>> raw = map.ListRaw();
  if (!raw.ok()) return raw.status();
  std::vector<Entry> entries;
  entries.reserve(raw->size());
  for (const std::vector<uint8_t>& bytes : *raw) {
    entries.push_back(decode(bytes.data(), bytes.data() + map.key_size()));
  }
  return entries;
}

}  // namespace

absl::StatusOr<RawBpfMap> RawBpfMap::Open(UniqueFd fd, std::string name, uint32_t key_size,
                                          std::optional<uint32_t> value_size) {
  bpf_map_info info{};
  uint32_t info_length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &info_length) != 0) {
    return ErrnoStatus(errno, absl::StrCat("query map ", name));
  }
  if (info.key_size != key_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "map ", name, " has key size ", info.key_size, ", this build expects ", key_size));
  }
  if (value_size.has_value() && info.value_size != *value_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "map ", name, " has value size ", info.value_size, ", this build expects ", *value_size));
  }
  return RawBpfMap(std::move(fd), std::move(name), key_size, info.value_size);
}

absl::StatusOr<RawBpfMap> RawBpfMap::OpenPinned(const std::string& path, std::string name,
                                                uint32_t key_size, std::optional<uint32_t> value_size) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open pinned map ", path));
  return Open(UniqueFd(fd), std::move(name), key_size, value_size);
}

absl::Status RawBpfMap::Update(const void* key, const void* value) const {
  if (bpf_map_update_elem(fd_.get(), key, value, BPF_ANY) != 0) {
    return ErrnoStatus(errno, absl::StrCat("update ", name_));
  }
  return absl::OkStatus();
}

absl::Status RawBpfMap::Delete(const void* key) const {
  if (bpf_map_delete_elem(fd_.get(), key) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("delete from ", name_));
  }
  return absl::OkStatus();
}

absl::Status RawBpfMap::Lookup(const void* key, void* value) const {
  if (bpf_map_lookup_elem(fd_.get(), key, value) != 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("no such entry in ", name_));
    return ErrnoStatus(errno, absl::StrCat("look up in ", name_));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<uint8_t>>> RawBpfMap::ListRaw() const {
  std::vector<std::vector<uint8_t>> entries;
  std::vector<uint8_t> key(key_size_);
  std::vector<uint8_t> next(key_size_);
  const void* previous = nullptr;
  while (bpf_map_get_next_key(fd_.get(), previous, next.data()) == 0) {
    std::vector<uint8_t> entry(key_size_ + value_size_);
    std::memcpy(entry.data(), next.data(), key_size_);
    if (bpf_map_lookup_elem(fd_.get(), next.data(), entry.data() + key_size_) == 0) {
      entries.push_back(std::move(entry));
    } else if (errno != ENOENT) {
      return ErrnoStatus(errno, absl::StrCat("read ", name_));
    }
    key.swap(next);
    previous = key.data();
  }
  if (errno != ENOENT) return ErrnoStatus(errno, absl::StrCat("list ", name_));
  return entries;
}

// --- ServicesMap ---

absl::StatusOr<ServicesMap> ServicesMap::OpenPinned(const std::string& path) {
  absl::StatusOr<RawBpfMap> map = RawBpfMap::OpenPinned(
      path, WEIR_SERVICES_MAP_NAME, sizeof(weir_service_key), sizeof(weir_service_value));
  if (!map.ok()) return map.status();
  return ServicesMap(*std::move(map));
}

absl::StatusOr<ServicesMap> ServicesMap::FromFd(UniqueFd fd) {
  absl::StatusOr<RawBpfMap> map = RawBpfMap::Open(
      std::move(fd), WEIR_SERVICES_MAP_NAME, sizeof(weir_service_key), sizeof(weir_service_value));
  if (!map.ok()) return map.status();
  return ServicesMap(*std::move(map));
}

absl::Status ServicesMap::Put(const weir_service_key& key, const weir_service_value& value) const {
  return WithContext(map_.Update(&key, &value), absl::StrCat("write ", DescribeServiceKey(key)));
}

absl::Status ServicesMap::Delete(const weir_service_key& key) const {
  return WithContext(map_.Delete(&key), absl::StrCat("delete ", DescribeServiceKey(key)));
}

absl::StatusOr<weir_service_value> ServicesMap::Lookup(const weir_service_key& key) const {
  weir_service_value value{};
  absl::Status status = map_.Lookup(&key, &value);
  if (!status.ok()) return WithContext(status, DescribeServiceKey(key));
  return value;
}

absl::StatusOr<std::vector<ServicesMap::Entry>> ServicesMap::List() const {
  return DecodeAll<Entry>(map_, [](const uint8_t* key, const uint8_t* value) {
    Entry entry{};
    std::memcpy(&entry.key, key, sizeof(entry.key));
    std::memcpy(&entry.value, value, sizeof(entry.value));
    return entry;
  });
}

// --- SlotsMap ---

absl::StatusOr<SlotsMap> SlotsMap::OpenPinned(const std::string& path) {
  absl::StatusOr<RawBpfMap> map = RawBpfMap::OpenPinned(path, WEIR_BACKEND_SLOTS_MAP_NAME,
                                                        sizeof(weir_slot_key), sizeof(uint32_t));
  if (!map.ok()) return map.status();
  return SlotsMap(*std::move(map));
}

absl::StatusOr<SlotsMap> SlotsMap::FromFd(UniqueFd fd) {
  absl::StatusOr<RawBpfMap> map = RawBpfMap::Open(std::move(fd), WEIR_BACKEND_SLOTS_MAP_NAME,
                                                  sizeof(weir_slot_key), sizeof(uint32_t));
  if (!map.ok()) return map.status();
  return SlotsMap(*std::move(map));
}

absl::Status SlotsMap::Put(const weir_slot_key& key, uint32_t backend_id) const {
  return WithContext(map_.Update(&key, &backend_id), absl::StrCat("write ", DescribeSlotKey(key)));
}

absl::Status SlotsMap::Delete(const weir_slot_key& key) const {
  return WithContext(map_.Delete(&key), absl::StrCat("delete ", DescribeSlotKey(key)));
}

absl::StatusOr<uint32_t> SlotsMap::Lookup(const weir_slot_key& key) const {
  uint32_t backend_id = 0;
  absl::Status status = map_.Lookup(&key, &backend_id);
  if (!status.ok()) return WithContext(status, DescribeSlotKey(key));
  return backend_id;
}

absl::StatusOr<std::vector<SlotsMap::Entry>> SlotsMap::List() const {
  return DecodeAll<Entry>(map_, [](const uint8_t* key, const uint8_t* value) {
    Entry entry{};
    std::memcpy(&entry.key, key, sizeof(entry.key));
    std::memcpy(&entry.backend_id, value, sizeof(entry.backend_id));
    return entry;
  });
}

// --- BackendsMap ---

absl::StatusOr<BackendsMap> BackendsMap::OpenPinned(const std::string& path) {
  absl::StatusOr<RawBpfMap> map = RawBpfMap::OpenPinned(path, WEIR_BACKENDS_MAP_NAME,
                                                        sizeof(uint32_t), sizeof(weir_backend));
  if (!map.ok()) return map.status();
  return BackendsMap(*std::move(map));
}

absl::StatusOr<BackendsMap> BackendsMap::FromFd(UniqueFd fd) {
  absl::StatusOr<RawBpfMap> map = RawBpfMap::Open(std::move(fd), WEIR_BACKENDS_MAP_NAME,
                                                  sizeof(uint32_t), sizeof(weir_backend));
  if (!map.ok()) return map.status();
  return BackendsMap(*std::move(map));
}

absl::Status BackendsMap::Put(uint32_t backend_id, const weir_backend& backend) const {
  return WithContext(map_.Update(&backend_id, &backend), absl::StrCat("write backend ", backend_id));
}

absl::Status BackendsMap::Delete(uint32_t backend_id) const {
  return WithContext(map_.Delete(&backend_id), absl::StrCat("delete backend ", backend_id));
}

absl::StatusOr<weir_backend> BackendsMap::Lookup(uint32_t backend_id) const {
  weir_backend backend{};
  absl::Status status = map_.Lookup(&backend_id, &backend);
  if (!status.ok()) return WithContext(status, absl::StrCat("backend ", backend_id));
  return backend;
}

absl::StatusOr<std::vector<BackendsMap::Entry>> BackendsMap::List() const {
  return DecodeAll<Entry>(map_, [](const uint8_t* key, const uint8_t* value) {
    Entry entry{};
    std::memcpy(&entry.backend_id, key, sizeof(entry.backend_id));
    std::memcpy(&entry.backend, value, sizeof(entry.backend));
    return entry;
  });
}

// --- MaglevMap ---

namespace {

absl::Status CheckMaglevValueSize(const RawBpfMap& map) {
  const uint32_t size = map.value_size();
  if (size == 0 || size % sizeof(uint32_t) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("map ", map.name(), " has value size ", size, ", not a whole number of backend ids"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MaglevMap> MaglevMap::OpenPinned(const std::string& path) {
  absl::StatusOr<RawBpfMap> map =
      RawBpfMap::OpenPinned(path, WEIR_MAGLEV_MAP_NAME, sizeof(uint32_t), std::nullopt);
  if (!map.ok()) return map.status();
  if (absl::Status status = CheckMaglevValueSize(*map); !status.ok()) return status;
  return MaglevMap(*std::move(map));
}

absl::StatusOr<MaglevMap> MaglevMap::FromFd(UniqueFd fd) {
  absl::StatusOr<RawBpfMap> map =
      RawBpfMap::Open(std::move(fd), WEIR_MAGLEV_MAP_NAME, sizeof(uint32_t), std::nullopt);
  if (!map.ok()) return map.status();
  if (absl::Status status = CheckMaglevValueSize(*map); !status.ok()) return status;
  return MaglevMap(*std::move(map));
}

absl::Status MaglevMap::Put(uint32_t service_id, const std::vector<uint32_t>& table) const {
  if (table.size() != table_size()) {
    return absl::InvalidArgumentError(absl::StrCat("Maglev table for service id ", service_id, " has ",
                                                   table.size(), " entries, the map holds ", table_size()));
  }
  return WithContext(map_.Update(&service_id, table.data()),
                     absl::StrCat("write Maglev table of service id ", service_id));
}

absl::Status MaglevMap::Delete(uint32_t service_id) const {
  return WithContext(map_.Delete(&service_id), absl::StrCat("delete Maglev table of service id ", service_id));
}

absl::StatusOr<std::vector<uint32_t>> MaglevMap::Lookup(uint32_t service_id) const {
  std::vector<uint32_t> table(table_size());
  absl::Status status = map_.Lookup(&service_id, table.data());
  if (!status.ok()) return WithContext(status, absl::StrCat("Maglev table of service id ", service_id));
  return table;
}

absl::StatusOr<std::vector<MaglevMap::Entry>> MaglevMap::List() const {
  const uint32_t entries = table_size();
  return DecodeAll<Entry>(map_, [entries](const uint8_t* key, const uint8_t* value) {
    Entry entry{};
    std::memcpy(&entry.service_id, key, sizeof(entry.service_id));
    entry.table.resize(entries);
    std::memcpy(entry.table.data(), value, entries * sizeof(uint32_t));
    return entry;
  });
}

}  // namespace weir
