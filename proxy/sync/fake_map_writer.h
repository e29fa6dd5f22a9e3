// In-memory ServiceMapWriter for tests: holds the map contents and logs every mutation in order,
// so tests can check both the final state and the make-before-break order that produced it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/sync/map_writer.h"

namespace weir::sync {

class FakeMapWriter : public ServiceMapWriter {
 public:
  enum class Map { kServices, kSlots, kBackends, kMaglev };
  struct Operation {
    Map map;
    bool is_delete = false;
    // Readable form, e.g. "put slot 1/2 = 3", "delete service 10.96.0.1:80/TCP/external".
    std::string text;
  };

  absl::Status PutService(const weir_service_key& key, const weir_service_value& value) override;
  absl::Status PutSlot(const weir_slot_key& key, uint32_t backend_id) override;
  absl::Status PutBackend(uint32_t backend_id, const weir_backend& backend) override;
  absl::Status PutMaglev(uint32_t service_id, const std::vector<uint32_t>& table) override;
  absl::Status DeleteService(const weir_service_key& key) override;
  absl::Status DeleteSlot(const weir_slot_key& key) override;
  absl::Status DeleteBackend(uint32_t backend_id) override;
  absl::Status DeleteMaglev(uint32_t service_id) override;
  absl::StatusOr<ServiceMapContents> ReadAll() const override;

  const std::vector<Operation>& operations() const { return operations_; }
  // Just the texts, for EXPECT_THAT(..., ElementsAre(...)).
  std::vector<std::string> operation_texts() const;
  void ClearOperations() { operations_.clear(); }

  // The next `successful` mutations succeed, every later one fails (and changes nothing) until
  // StopFailing(): for testing that an interrupted Apply recovers on the next one.
  void FailAfter(size_t successful) { failures_start_after_ = successful; }
  void StopFailing() { failures_start_after_.reset(); }

  // Current contents, for assertions and for prefilling before Adopt().
  std::optional<weir_service_value> service(const weir_service_key& key) const;
  std::optional<uint32_t> slot(uint32_t service_id, uint32_t slot) const;
  std::optional<weir_backend> backend(uint32_t backend_id) const;
  std::optional<std::vector<uint32_t>> maglev(uint32_t service_id) const;
  size_t service_count() const { return services_.size(); }
  size_t slot_count() const { return slots_.size(); }
  size_t backend_count() const { return backends_.size(); }
  size_t maglev_count() const { return maglev_.size(); }

  // Every entry of the four maps as one sorted line each: for comparing two writers, and for the
  // golden tests' map entries.
  std::vector<std::string> DumpLines() const;

 private:
  // Byte-wise order for the ABI structs, which have no operator<.
  struct BytesLess {
    bool operator()(const weir_service_key& a, const weir_service_key& b) const {
      return std::memcmp(&a, &b, sizeof(a)) < 0;
    }
  };

  // Records the operation; false (and nothing recorded) when failure injection says so.
  bool Record(Map map, bool is_delete, std::string text);

  std::map<weir_service_key, weir_service_value, BytesLess> services_;
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> slots_;
  std::map<uint32_t, weir_backend> backends_;
  std::map<uint32_t, std::vector<uint32_t>> maglev_;
  std::vector<Operation> operations_;
  std::optional<size_t> failures_start_after_;
};

}  // namespace weir::sync
