// The reconciler's only way into the service maps: single-entry writes and deletes, in the order
// the reconciler issues them (the order is what keeps established flows intact), plus a full read
// for adopting the maps an earlier agent left pinned.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/abi/service.h"
#include "lib/service_maps.h"

namespace weir::sync {

// Everything in the four maps, in no particular order.
struct ServiceMapContents {
  std::vector<ServicesMap::Entry> services;
  std::vector<SlotsMap::Entry> slots;
  std::vector<BackendsMap::Entry> backends;
  std::vector<MaglevMap::Entry> maglev;
};

class ServiceMapWriter {
 public:
  virtual ~ServiceMapWriter() = default;

  virtual absl::Status PutService(const weir_service_key& key, const weir_service_value& value) = 0;
  virtual absl::Status PutSlot(const weir_slot_key& key, uint32_t backend_id) = 0;
  virtual absl::Status PutBackend(uint32_t backend_id, const weir_backend& backend) = 0;
  // The whole table in one update.
  virtual absl::Status PutMaglev(uint32_t service_id, const std::vector<uint32_t>& table) = 0;

  // Deletes succeed when the entry is already gone.
  virtual absl::Status DeleteService(const weir_service_key& key) = 0;
  virtual absl::Status DeleteSlot(const weir_slot_key& key) = 0;
  virtual absl::Status DeleteBackend(uint32_t backend_id) = 0;
  virtual absl::Status DeleteMaglev(uint32_t service_id) = 0;

  virtual absl::StatusOr<ServiceMapContents> ReadAll() const = 0;
};

}  // namespace weir::sync
