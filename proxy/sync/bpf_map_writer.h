// ServiceMapWriter over the pinned BPF maps of a running datapath.
#pragma once

#include "absl/status/statusor.h"
#include "lib/pin_layout.h"
#include "lib/service_maps.h"
#include "proxy/sync/map_writer.h"

namespace weir::sync {

class BpfMapWriter : public ServiceMapWriter {
 public:
  // Opens the services, slots, backends and Maglev maps pinned under `layout.root`.
  static absl::StatusOr<BpfMapWriter> OpenPinned(const PinLayout& layout);
  BpfMapWriter(ServicesMap services, SlotsMap slots, BackendsMap backends, MaglevMap maglev)
      : services_(std::move(services)),
        slots_(std::move(slots)),
        backends_(std::move(backends)),
        maglev_(std::move(maglev)) {}

  absl::Status PutService(const weir_service_key& key, const weir_service_value& value) override;
  absl::Status PutSlot(const weir_slot_key& key, uint32_t backend_id) override;
  absl::Status PutBackend(uint32_t backend_id, const weir_backend& backend) override;
  absl::Status PutMaglev(uint32_t service_id, const std::vector<uint32_t>& table) override;
  absl::Status DeleteService(const weir_service_key& key) override;
  absl::Status DeleteSlot(const weir_slot_key& key) override;
  absl::Status DeleteBackend(uint32_t backend_id) override;
  absl::Status DeleteMaglev(uint32_t service_id) override;
  absl::StatusOr<ServiceMapContents> ReadAll() const override;

  // The table length the Maglev map was created with: the reconciler must build tables this long.
  uint32_t maglev_table_size() const { return MaglevTableSize(maglev_); }

 private:
  ServicesMap services_;
  SlotsMap slots_;
  BackendsMap backends_;
  MaglevMap maglev_;
};

}  // namespace weir::sync
