// The datapath's per-CPU counters (bpf/abi/metrics.h), named and summed over CPUs: read by weirctl
// and by the agent's /metrics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bpf/abi/metrics.h"

namespace weir {

struct MetricTotal {
  uint32_t id = 0;         // enum weir_metric
  const char* name = "";   // e.g. "local_delivery"
  bool drop = false;       // the packet was dropped or rejected for this reason
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

// nullptr for ids the datapath does not use.
const char* MetricName(uint32_t id);

// Every named counter, in id order.
absl::StatusOr<std::vector<MetricTotal>> ReadMetrics(const std::string& pinned_path);

}  // namespace weir
