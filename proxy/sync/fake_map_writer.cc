#include "proxy/sync/fake_map_writer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lib/abi_codec.h"

namespace weir::sync {

bool FakeMapWriter::Record(Map map, bool is_delete, std::string text) {
  if (failures_start_after_.has_value()) {
    if (*failures_start_after_ == 0) return false;
    --*failures_start_after_;
  }
  operations_.push_back({map, is_delete, std::move(text)});
  return true;
}

std::vector<std::string> FakeMapWriter::operation_texts() const {
  std::vector<std::string> texts;
  texts.reserve(operations_.size());
  for (const Operation& operation : operations_) texts.push_back(operation.text);
  return texts;
}

absl::Status FakeMapWriter::PutService(const weir_service_key& key, const weir_service_value& value) {
  if (!Record(Map::kServices, false,
              absl::StrCat("put service ", abi::Render(key), " ", abi::Render(value)))) {
    return absl::UnavailableError("injected failure");
  }
  services_[key] = value;
  return absl::OkStatus();
}

absl::Status FakeMapWriter::PutSlot(const weir_slot_key& key, uint32_t backend_id) {
  if (!Record(Map::kSlots, false, absl::StrCat("put slot ", abi::Render(key), " = ", backend_id))) {
    return absl::UnavailableError("injected failure");
  }
  slots_[{key.service_id, key.slot}] = backend_id;
  return absl::OkStatus();
}

absl::Status FakeMapWriter::PutBackend(uint32_t backend_id, const weir_backend& backend) {
  if (!Record(Map::kBackends, false, absl::StrCat("put backend ", backend_id, " ", abi::Render(backend)))) {
    return absl::UnavailableError("injected failure");
  }
  backends_[backend_id] = backend;
  return absl::OkStatus();
}

absl::Status FakeMapWriter::PutMaglev(uint32_t service_id, const std::vector<uint32_t>& table) {
  if (!Record(Map::kMaglev, false, absl::StrCat("put maglev ", service_id))) {
    return absl::UnavailableError("injected failure");
  }
  maglev_[service_id] = table;
  return absl::OkStatus();
}

absl::Status FakeMapWriter::DeleteService(const weir_service_key& key) {
  if (!Record(Map::kServices, true, absl::StrCat("delete service ", abi::Render(key)))) {
    return absl::UnavailableError("injected failure");
  }
  services_.erase(key);
  return absl::OkStatus();
}

absl::Status FakeMapWriter::DeleteSlot(const weir_slot_key& key) {
  if (!Record(Map::kSlots, true, absl::StrCat("delete slot ", abi::Render(key)))) {
    return absl::UnavailableError("injected failure");
  }
  slots_.erase({key.service_id, key.slot});
  return absl::OkStatus();
}

absl::Status FakeMapWriter::DeleteBackend(uint32_t backend_id) {
  if (!Record(Map::kBackends, true, absl::StrCat("delete backend ", backend_id))) {
    return absl::UnavailableError("injected failure");
  }
  backends_.erase(backend_id);
  return absl::OkStatus();
}

absl::Status FakeMapWriter::DeleteMaglev(uint32_t service_id) {
  if (!Record(Map::kMaglev, true, absl::StrCat("delete maglev ", service_id))) {
    return absl::UnavailableError("injected failure");
  }
  maglev_.erase(service_id);
  return absl::OkStatus();
}

absl::StatusOr<ServiceMapContents> FakeMapWriter::ReadAll() const {
  ServiceMapContents contents;
  for (const auto& [key, value] : services_) contents.services.push_back({key, value});
  for (const auto& [key, backend_id] : slots_) {
    contents.slots.push_back({weir_slot_key{key.first, key.second}, backend_id});
  }
  for (const auto& [backend_id, backend] : backends_) contents.backends.push_back({backend_id, backend});
  for (const auto& [service_id, table] : maglev_) contents.maglev.push_back({service_id, table});
  return contents;
}

std::optional<weir_service_value> FakeMapWriter::service(const weir_service_key& key) const {
  auto it = services_.find(key);
  if (it == services_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint32_t> FakeMapWriter::slot(uint32_t service_id, uint32_t slot) const {
  auto it = slots_.find({service_id, slot});
  if (it == slots_.end()) return std::nullopt;
  return it->second;
}

std::optional<weir_backend> FakeMapWriter::backend(uint32_t backend_id) const {
  auto it = backends_.find(backend_id);
  if (it == backends_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::vector<uint32_t>> FakeMapWriter::maglev(uint32_t service_id) const {
  auto it = maglev_.find(service_id);
  if (it == maglev_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> FakeMapWriter::DumpLines() const {
  absl::StatusOr<ServiceMapContents> contents = ReadAll();
  std::vector<std::string> lines;
  for (const auto& e : contents->services) {
    lines.push_back(absl::StrCat("service ", abi::Render(e.key), " id=", e.value.service_id,
                                 " count=", e.value.backend_count, " flags=", e.value.flags,
                                 " timeout=", e.value.affinity_timeout));
  }
  for (const auto& e : contents->slots)
    lines.push_back(absl::StrCat("slot ", abi::Render(e.key), " = ", e.value));
  for (const auto& e : contents->backends)
    lines.push_back(absl::StrCat("backend ", e.key, " ", abi::Render(e.value)));
  for (const auto& e : contents->maglev) {
    std::string line = absl::StrCat("maglev ", e.key, ":");
    for (uint32_t id : e.value) absl::StrAppend(&line, " ", id);
    lines.push_back(std::move(line));
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

}  // namespace weir::sync
