// Services as the datapath holds them: frontends with their backends in slot order, and the
// session-affinity entries clients have made.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "bpf/abi/service.h"
#include "lib/service_maps.h"
#include "proxy/weirctl/command.h"
#include "proxy/weirctl/service_directory.h"

namespace weir::weirctl {

// The three service maps, read.
struct ServiceTables {
  std::vector<ServicesMap::Entry> frontends;
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> slots;  // (service id, slot) -> backend id
  std::map<uint32_t, weir_backend> backends;                // by backend id
};

using AffinityEntry = AffinityMap::Entry;

// --addr, --port and --proto match the frontend or any of its backends; --service the frontend.
std::string RenderServices(ServiceTables tables, const ServiceDirectory& names, const FlowFilter& filter,
                           OutputFormat format);
// `timeouts`: service id -> affinity timeout in seconds, for the services that have affinity.
std::string RenderAffinity(std::vector<AffinityEntry> entries,
                           const std::map<uint32_t, weir_backend>& backends,
                           const std::map<uint32_t, uint32_t>& timeouts, uint64_t now_ns,
                           const ServiceDirectory& names, const FlowFilter& filter, OutputFormat format);

absl::StatusOr<ServiceTables> ReadServiceTables(const PinLayout& layout);

absl::Status RunServices(const CommandOptions& options);
absl::Status RunAffinity(const CommandOptions& options);

}  // namespace weir::weirctl
