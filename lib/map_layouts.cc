#include "lib/map_layouts.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "bpf/abi/constants.h"
#include "bpf/abi/service.h"
#include "lib/errno_status.h"

namespace weir {
namespace {

constexpr size_t kNameBytes = 16;  // BPF_OBJ_NAME_LEN
constexpr uint32_t kRecordCapacity = 256;

std::array<uint8_t, kNameBytes> NameKey(const std::string& name) {
  std::array<uint8_t, kNameBytes> key{};
  std::memcpy(key.data(), name.data(), std::min(name.size(), kNameBytes - 1));
  return key;
}

}  // namespace

uint32_t LayoutVersion(const std::string& name) {
  static const std::map<std::string, uint32_t> versions = {
      {WEIR_CONNTRACK_MAP_NAME, WEIR_CONNTRACK_LAYOUT},
      {WEIR_ENDPOINTS_MAP_NAME, WEIR_ENDPOINTS_LAYOUT},
      {WEIR_SERVICES_MAP_NAME, WEIR_SERVICES_LAYOUT},
      {WEIR_BACKENDS_MAP_NAME, WEIR_BACKENDS_LAYOUT},
      {WEIR_BACKEND_SLOTS_MAP_NAME, WEIR_BACKEND_SLOTS_LAYOUT},
      {WEIR_AFFINITY_MAP_NAME, WEIR_AFFINITY_LAYOUT},
      {WEIR_SOCK_REVNAT_MAP_NAME, WEIR_SOCK_REVNAT_LAYOUT},
      {WEIR_NONMASQ_MAP_NAME, WEIR_NONMASQ_LAYOUT},
  };
  auto found = versions.find(name);
  return found == versions.end() ? 1 : found->second;
}

bool AddInlineBackends(const MapShape& from, const MapShape& to, MapEntryBytes& entry) {
  // Layout 1's value is layout 2's first 16 bytes, with 0 where inline_count now is: an entry that
  // carries no backends, whose slots the datapath looks up as before until the agent rewrites it.
  constexpr size_t kLayout1Value = 16;
  if (entry.value.size() != kLayout1Value || to.value_size < kLayout1Value) return false;
  entry.value.resize(to.value_size, 0);
  entry.value[offsetof(weir_service_value, inline_count)] = 0;
  return true;
}

bool ResampleMaglevTable(const MapShape& from, const MapShape& to, MapEntryBytes& entry) {
  const size_t old_slots = from.value_size / sizeof(uint32_t);
  const size_t new_slots = to.value_size / sizeof(uint32_t);
  if (old_slots == 0 || new_slots == 0) return false;
  std::vector<uint8_t> table(new_slots * sizeof(uint32_t));
  for (size_t slot = 0; slot < new_slots; ++slot) {
    const size_t source = slot * old_slots / new_slots;
    std::memcpy(&table[slot * sizeof(uint32_t)], &entry.value[source * sizeof(uint32_t)], sizeof(uint32_t));
  }
  entry.value = std::move(table);
  return true;
}

const MapMigrations& WeirMapMigrations() {
  static const MapMigrations migrations = [] {
    MapMigrations m;
    // A layout change of a map adds its step here: m.AddLayoutStep(WEIR_CONNTRACK_MAP_NAME, 2, ...).
    m.AddLayoutStep(WEIR_SERVICES_MAP_NAME, 2, AddInlineBackends);
    m.AddValueResize(WEIR_MAGLEV_MAP_NAME, ResampleMaglevTable);
    // Records nobody read yet are all the ring holds.
    m.AddDisposable(WEIR_EVENTS_MAP_NAME);
    return m;
  }();
  return migrations;
}

absl::StatusOr<PinnedLayouts> PinnedLayouts::OpenOrCreate(const std::string& path) {
  absl::StatusOr<UntypedBpfMap> pinned = UntypedBpfMap::OpenPinned(path, kNameBytes, sizeof(uint32_t));
  if (pinned.ok()) return PinnedLayouts(*std::move(pinned));
  if (!absl::IsNotFound(pinned.status())) return pinned.status();
  UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_HASH, WEIR_LAYOUTS_MAP_NAME, kNameBytes, sizeof(uint32_t),
                             kRecordCapacity, nullptr));
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("create ", path));
  if (bpf_obj_pin(fd.get(), path.c_str()) != 0) return ErrnoStatus(errno, absl::StrCat("pin ", path));
  absl::StatusOr<UntypedBpfMap> created =
      UntypedBpfMap::FromFd(std::move(fd), WEIR_LAYOUTS_MAP_NAME, kNameBytes, sizeof(uint32_t));
  if (!created.ok()) return created.status();
  return PinnedLayouts(*std::move(created));
}

absl::StatusOr<uint32_t> PinnedLayouts::Of(const std::string& map_name) const {
  std::array<uint8_t, kNameBytes> key = NameKey(map_name);
  uint32_t layout = 0;
  absl::StatusOr<bool> found = map_.Lookup(key.data(), &layout);
  if (!found.ok()) return found.status();
  return *found ? layout : 1;
}

absl::Status PinnedLayouts::Record(const std::string& map_name, uint32_t layout) const {
  std::array<uint8_t, kNameBytes> key = NameKey(map_name);
  return map_.Update(key.data(), &layout);
}

}  // namespace weir
