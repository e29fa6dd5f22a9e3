// The conntrack map: every tracked direction of every translated or masqueraded flow.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proxy/sync/conntrack_gc.h"
#include "proxy/weirctl/command.h"
#include "proxy/weirctl/service_directory.h"

namespace weir::weirctl {

// --addr and --port match the key's source or destination or the address it translates to.
std::string RenderConntrack(std::vector<sync::ConntrackEntry> entries, uint32_t capacity, uint64_t now_ns,
                            const ServiceDirectory& names, const FlowFilter& filter, OutputFormat format);

absl::Status RunConntrack(const CommandOptions& options);

}  // namespace weir::weirctl
