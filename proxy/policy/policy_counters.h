// Per-endpoint verdict counters, as the datapath keeps them: the agent renders them as metrics
// (weir_policy_packets_total) with the endpoint's pod name. The BPF implementation lives beside
// the PolicyWriter's (proxy/policy_sync/); unit tests use a fake.
#pragma once

#include <cstdint>
#include <map>

#include "absl/status/statusor.h"

namespace weir::policy {

// Packets of new flows, by verdict: allowed by a rule (or not isolated), denied, or allowed only
// because the endpoint-direction is in audit mode (it would have been denied).
struct VerdictCounts {
  uint64_t allowed = 0;
  uint64_t denied = 0;
  uint64_t audited = 0;
  bool operator==(const VerdictCounts&) const = default;
};

struct EndpointCounters {
  VerdictCounts ingress;
  VerdictCounts egress;
  bool operator==(const EndpointCounters&) const = default;
};

class PolicyCounters {
 public:
  virtual ~PolicyCounters() = default;
  // Totals since each endpoint's policy_id was first written, keyed by policy_id.
  virtual absl::StatusOr<std::map<uint32_t, EndpointCounters>> Read() = 0;
};

}  // namespace weir::policy
