// Typed access to the pinned service load-balancing maps (bpf/abi/service.h): frontends, backend
// slots, backends and Maglev tables. Each wrapper checks on open that the map's key and value sizes
// match the ABI, so a map pinned by an incompatible build fails loudly instead of being misread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bpf/abi/service.h"
#include "lib/unique_fd.h"

namespace weir {

// A BPF hash map seen as fixed-size byte strings; the typed maps below are built on it.
class RawBpfMap {
 public:
  // `value_size` nullopt: any value size (the Maglev map, sized at load time).
  static absl::StatusOr<RawBpfMap> Open(UniqueFd fd, std::string name, uint32_t key_size,
                                        std::optional<uint32_t> value_size);
  static absl::StatusOr<RawBpfMap> OpenPinned(const std::string& path, std::string name,
                                              uint32_t key_size, std::optional<uint32_t> value_size);

  absl::Status Update(const void* key, const void* value) const;
  // Succeeds when the entry is already gone.
  absl::Status Delete(const void* key) const;
  // NotFound when absent.
  absl::Status Lookup(const void* key, void* value) const;
  // Every entry, as key bytes followed by value bytes. Entries deleted meanwhile are skipped.
  absl::StatusOr<std::vector<std::vector<uint8_t>>> ListRaw() const;

  int fd() const { return fd_.get(); }
  uint32_t key_size() const { return key_size_; }
  uint32_t value_size() const { return value_size_; }
  const std::string& name() const { return name_; }

 private:
  RawBpfMap(UniqueFd fd, std::string name, uint32_t key_size, uint32_t value_size)
      : fd_(std::move(fd)), name_(std::move(name)), key_size_(key_size), value_size_(value_size) {}
  UniqueFd fd_;
  std::string name_;
  uint32_t key_size_;
  uint32_t value_size_;
};

// Frontends: (address, port, protocol, scope) -> service id, backend count, flags.
class ServicesMap {
 public:
  struct Entry {
    weir_service_key key;
    weir_service_value value;
  };
  static absl::StatusOr<ServicesMap> OpenPinned(const std::string& path);
  static absl::StatusOr<ServicesMap> FromFd(UniqueFd fd);

  absl::Status Put(const weir_service_key& key, const weir_service_value& value) const;
  absl::Status Delete(const weir_service_key& key) const;
  absl::StatusOr<weir_service_value> Lookup(const weir_service_key& key) const;
  absl::StatusOr<std::vector<Entry>> List() const;
  int fd() const { return map_.fd(); }

 private:
  explicit ServicesMap(RawBpfMap map) : map_(std::move(map)) {}
  RawBpfMap map_;
};

// Backend slots: (service id, 1-based slot) -> backend id.
class SlotsMap {
 public:
  struct Entry {
    weir_slot_key key;
    uint32_t backend_id;
  };
  static absl::StatusOr<SlotsMap> OpenPinned(const std::string& path);
  static absl::StatusOr<SlotsMap> FromFd(UniqueFd fd);

  absl::Status Put(const weir_slot_key& key, uint32_t backend_id) const;
  absl::Status Delete(const weir_slot_key& key) const;
  absl::StatusOr<uint32_t> Lookup(const weir_slot_key& key) const;
  absl::StatusOr<std::vector<Entry>> List() const;
  int fd() const { return map_.fd(); }

 private:
  explicit SlotsMap(RawBpfMap map) : map_(std::move(map)) {}
  RawBpfMap map_;
};

// Backends: backend id -> address, port, protocol, flags.
class BackendsMap {
 public:
  struct Entry {
    uint32_t backend_id;
    weir_backend backend;
  };
  static absl::StatusOr<BackendsMap> OpenPinned(const std::string& path);
  static absl::StatusOr<BackendsMap> FromFd(UniqueFd fd);

  absl::Status Put(uint32_t backend_id, const weir_backend& backend) const;
  absl::Status Delete(uint32_t backend_id) const;
  absl::StatusOr<weir_backend> Lookup(uint32_t backend_id) const;
  absl::StatusOr<std::vector<Entry>> List() const;
  int fd() const { return map_.fd(); }

 private:
  explicit BackendsMap(RawBpfMap map) : map_(std::move(map)) {}
  RawBpfMap map_;
};

// Maglev lookup tables: service id -> backend id[table_size]. The table size is the map's value
// size / 4, chosen when the map was created; tables of any other length are rejected.
class MaglevMap {
 public:
  struct Entry {
    uint32_t service_id;
    std::vector<uint32_t> table;
  };
  static absl::StatusOr<MaglevMap> OpenPinned(const std::string& path);
  static absl::StatusOr<MaglevMap> FromFd(UniqueFd fd);

  // One map update: the datapath sees the old table or the new one, never a mix.
  absl::Status Put(uint32_t service_id, const std::vector<uint32_t>& table) const;
  absl::Status Delete(uint32_t service_id) const;
  absl::StatusOr<std::vector<uint32_t>> Lookup(uint32_t service_id) const;
  absl::StatusOr<std::vector<Entry>> List() const;
  uint32_t table_size() const { return map_.value_size() / sizeof(uint32_t); }
  int fd() const { return map_.fd(); }

 private:
  explicit MaglevMap(RawBpfMap map) : map_(std::move(map)) {}
  RawBpfMap map_;
};

}  // namespace weir
