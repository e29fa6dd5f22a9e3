#include "proxy/sync/bpf_map_writer.h"

namespace weir::sync {

absl::StatusOr<BpfMapWriter> BpfMapWriter::OpenPinned(const PinLayout& layout) {
  absl::StatusOr<ServicesMap> services = ServicesMap::OpenPinned(layout.services_map());
  if (!services.ok()) return services.status();
  absl::StatusOr<SlotsMap> slots = SlotsMap::OpenPinned(layout.slots_map());
  if (!slots.ok()) return slots.status();
  absl::StatusOr<BackendsMap> backends = BackendsMap::OpenPinned(layout.backends_map());
  if (!backends.ok()) return backends.status();
  absl::StatusOr<MaglevMap> maglev = MaglevMap::OpenPinned(layout.maglev_map());
  if (!maglev.ok()) return maglev.status();
  return BpfMapWriter(*std::move(services), *std::move(slots), *std::move(backends), *std::move(maglev));
}

absl::Status BpfMapWriter::PutService(const weir_service_key& key, const weir_service_value& value) {
  return services_.Update(key, value);
}

absl::Status BpfMapWriter::PutSlot(const weir_slot_key& key, uint32_t backend_id) {
  return slots_.Update(key, backend_id);
}

absl::Status BpfMapWriter::PutBackend(uint32_t backend_id, const weir_backend& backend) {
  return backends_.Update(backend_id, backend);
}

absl::Status BpfMapWriter::PutMaglev(uint32_t service_id, const std::vector<uint32_t>& table) {
  return maglev_.Update(service_id, table);
}

absl::Status BpfMapWriter::DeleteService(const weir_service_key& key) { return services_.Delete(key); }

absl::Status BpfMapWriter::DeleteSlot(const weir_slot_key& key) { return slots_.Delete(key); }

absl::Status BpfMapWriter::DeleteBackend(uint32_t backend_id) { return backends_.Delete(backend_id); }

absl::Status BpfMapWriter::DeleteMaglev(uint32_t service_id) { return maglev_.Delete(service_id); }

absl::StatusOr<ServiceMapContents> BpfMapWriter::ReadAll() const {
  ServiceMapContents contents;
  absl::StatusOr<std::vector<ServicesMap::Entry>> services = services_.List();
  if (!services.ok()) return services.status();
  contents.services = *std::move(services);
  absl::StatusOr<std::vector<SlotsMap::Entry>> slots = slots_.List();
  if (!slots.ok()) return slots.status();
  contents.slots = *std::move(slots);
  absl::StatusOr<std::vector<BackendsMap::Entry>> backends = backends_.List();
  if (!backends.ok()) return backends.status();
  contents.backends = *std::move(backends);
  absl::StatusOr<std::vector<MaglevMap::Entry>> maglev = maglev_.List();
  if (!maglev.ok()) return maglev.status();
  contents.maglev = *std::move(maglev);
  return contents;
}

}  // namespace weir::sync
