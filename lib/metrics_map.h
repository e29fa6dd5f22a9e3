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
  uint32_t id = 0;        // enum weir_metric
  const char* name = "";  // e.g. "local_delivery"
  bool drop = false;      // the packet was dropped or rejected for this reason
  // A socket-LB counter (name "sock_..."): `packets` counts calls (connect()s, datagrams), `bytes` is 0.
  bool socket_lb = false;
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

// nullptr for ids the datapath does not use.
const char* MetricName(uint32_t id);

// Every named counter, in id order.
absl::StatusOr<std::vector<MetricTotal>> ReadMetrics(const std::string& pinned_path);
// The same from an open map (a datapath loaded without pins, in tests).
absl::StatusOr<std::vector<MetricTotal>> ReadMetricsFromFd(int map_fd);

}  // namespace weir
