// The node's own tables: endpoints (pods and host addresses), masquerade (in-cluster CIDRs and
// uplinks) and the datapath's counters.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lib/endpoint_map.h"
#include "lib/ip.h"
#include "lib/metrics_map.h"
#include "proxy/weirctl/command.h"

namespace weir::weirctl {

struct Uplink {
  uint32_t ifindex = 0;
  std::string name;  // empty when the interface is not in weirctl's namespace
};

std::string RenderEndpoints(std::vector<Endpoint> endpoints, OutputFormat format);
std::string RenderMasquerade(std::vector<IpPrefix> cidrs, std::vector<Uplink> uplinks, OutputFormat format);
std::string RenderMetrics(const std::vector<MetricTotal>& totals, OutputFormat format);

absl::Status RunEndpoints(const CommandOptions& options);
absl::Status RunMasquerade(const CommandOptions& options);
absl::Status RunMetrics(const CommandOptions& options);

}  // namespace weir::weirctl
