// The policy writer's only way into the datapath: single-entry writes and deletes of the
// NetworkPolicy maps (bpf/abi/policy.h) and of the policy fields of endpoint entries, in the order
// the writer issues them (the order is what keeps a packet from seeing a partial rule set). The
// BPF implementation is BpfPolicyMaps; tests use FakePolicyMaps.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/abi/endpoint.h"
#include "bpf/abi/policy.h"

namespace weir::policy_sync {

// Everything in the peers, rules and CIDR maps, in no particular order.
struct PolicyMapContents {
  std::vector<std::pair<weir_policy_peer_key, uint32_t>> peers;
  std::vector<weir_policy_rule_key> rules;
  std::vector<std::pair<weir_policy_cidr_key, uint32_t>> cidrs;
};

class PolicyMaps {
 public:
  virtual ~PolicyMaps() = default;

  virtual absl::Status PutPeer(const weir_policy_peer_key& key, uint32_t identity) = 0;
  virtual absl::Status PutRule(const weir_policy_rule_key& key) = 0;
  virtual absl::Status PutCidr(const weir_policy_cidr_key& key, uint32_t cidr_class) = 0;
  // Deletes succeed when the entry is already gone.
  virtual absl::Status DeletePeer(const weir_policy_peer_key& key) = 0;
  virtual absl::Status DeleteRule(const weir_policy_rule_key& key) = 0;
  virtual absl::Status DeleteCidr(const weir_policy_cidr_key& key) = 0;
  virtual absl::Status DeleteCounters(uint32_t policy_id) = 0;

  // Endpoint entries belong to the CNI plugin; the writer reads one and writes it back with its
  // policy fields changed. nullopt: no entry (yet).
  virtual absl::StatusOr<std::optional<weir_endpoint_value>> GetEndpoint(const weir_endpoint_key& key) = 0;
  virtual absl::Status PutEndpoint(const weir_endpoint_key& key, const weir_endpoint_value& value) = 0;

  // For adopting what an earlier agent left in the pinned maps.
  virtual absl::StatusOr<PolicyMapContents> ReadAll() const = 0;
};

}  // namespace weir::policy_sync
