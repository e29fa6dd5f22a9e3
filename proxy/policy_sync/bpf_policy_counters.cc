#include "proxy/policy_sync/bpf_policy_counters.h"

namespace weir::policy_sync {
namespace {

policy::VerdictCounts Sum(const std::vector<weir_policy_counters>& per_cpu, int direction) {
  policy::VerdictCounts counts;
  for (const weir_policy_counters& cpu : per_cpu) {
    counts.allowed += cpu.packets[direction][WEIR_POLICY_ALLOWED];
    counts.denied += cpu.packets[direction][WEIR_POLICY_DENIED];
    counts.audited += cpu.packets[direction][WEIR_POLICY_AUDITED];
  }
  return counts;
}

}  // namespace

absl::StatusOr<BpfPolicyCounters> BpfPolicyCounters::Open(const Datapath& datapath) {
  auto map = datapath.OpenMap<PolicyCountersMap>(DatapathMap::kPolicyCounters);
  if (!map.ok()) return map.status();
  return BpfPolicyCounters(*std::move(map));
}

absl::StatusOr<std::map<uint32_t, policy::EndpointCounters>> BpfPolicyCounters::Read() {
  auto entries = map_.ListPerCpu();
  if (!entries.ok()) return entries.status();
  std::map<uint32_t, policy::EndpointCounters> counters;
  for (const PolicyCountersMap::PerCpuEntry& entry : *entries) {
    if (entry.key == 0) continue;
    counters[entry.key] = {.ingress = Sum(entry.values, WEIR_POLICY_INGRESS),
                           .egress = Sum(entry.values, WEIR_POLICY_EGRESS)};
  }
  return counters;
}

}  // namespace weir::policy_sync
