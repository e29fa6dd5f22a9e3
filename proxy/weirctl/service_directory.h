// The namespace/name:port behind each service id, as the agent published them
// (lib/agent_state_maps.h). An id the agent did not name (an older agent, or an id that changed
// meanwhile) shows as its number.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "lib/agent_state_maps.h"
#include "lib/pin_layout.h"
#include "proxy/weirctl/output.h"

namespace weir::weirctl {

class ServiceDirectory {
 public:
  ServiceDirectory() = default;
  explicit ServiceDirectory(std::map<uint32_t, ServiceName> names) : names_(std::move(names)) {}
  // Empty when nothing was published there.
  static ServiceDirectory Load(const PinLayout& layout);

  const ServiceName* Find(uint32_t service_id) const;
  // "default/web:http"; the id ("7") when unnamed; "-" for 0 (no service).
  std::string Describe(uint32_t service_id) const;
  // {"id": 7, "namespace": "default", "name": "web", "port_name": "http"}, the three names null when
  // unknown; null for 0.
  void WriteJson(Json& json, uint32_t service_id) const;
  // Distinct namespace/name pairs.
  size_t service_count() const;

 private:
  std::map<uint32_t, ServiceName> names_;
};

}  // namespace weir::weirctl
