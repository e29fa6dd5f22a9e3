// PolicyCounters over the datapath's per-CPU counters map (bpf/abi/policy.h): each endpoint's
// verdicts summed over the CPUs. Entry 0 (endpoints still pending their first policy) is left out.
#pragma once

#include "absl/status/statusor.h"
#include "lib/datapath.h"
#include "lib/policy_maps.h"
#include "proxy/policy/policy_counters.h"

namespace weir::policy_sync {

class BpfPolicyCounters : public policy::PolicyCounters {
 public:
  static absl::StatusOr<BpfPolicyCounters> Open(const Datapath& datapath);

  absl::StatusOr<std::map<uint32_t, policy::EndpointCounters>> Read() override;

 private:
  explicit BpfPolicyCounters(PolicyCountersMap map) : map_(std::move(map)) {}
  PolicyCountersMap map_;
};

}  // namespace weir::policy_sync
