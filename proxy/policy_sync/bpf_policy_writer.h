// PolicyWriter onto the datapath's maps (through PolicyMaps): an endpoint's EndpointEnforcement
// becomes rules and CIDR-class entries keyed by its policy_id, and the policy fields of its
// endpoint entries. A rewrite changes only the difference, in an order that never shows a packet
// less than the old or the new rule set: new entries first, then the endpoint flags, then the
// stale entries go. In between a flow may see the union of both (briefly more permissive).
//
// The writer remembers what it wrote, so it must be the only writer of these maps; after a failed
// call its memory still matches the maps, and the next call completes the change. A new agent
// calls Adopt() first: what an earlier one left is then known, and replaced or removed by the next
// calls like the writer's own entries.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <utility>

#include "proxy/policy/policy_writer.h"
#include "proxy/policy_sync/policy_entries.h"
#include "proxy/policy_sync/policy_maps.h"

namespace weir::policy_sync {

class BpfPolicyWriter : public policy::PolicyWriter {
 public:
  explicit BpfPolicyWriter(PolicyMaps& maps) : maps_(maps) {}

  absl::Status SetPeers(const std::map<IpPrefix, policy::Identity>& peers) override;
  absl::Status WriteEndpoint(const policy::EndpointEnforcement& endpoint) override;
  absl::Status RemoveEndpoint(uint32_t policy_id) override;

  // Takes the maps' current entries as written. Entries this build cannot read are left alone.
  absl::Status Adopt();

  // The endpoint flags (bpf/abi/endpoint.h) an enforcement sets.
  static uint16_t FlagsOf(const policy::EndpointEnforcement& endpoint);

 private:
  using DirectionalRule = std::pair<uint8_t, RuleEntry>;  // (direction, rule)
  using DirectionalCidr = std::pair<uint8_t, IpPrefix>;   // (direction, prefix)
  struct Written {
    std::set<DirectionalRule> rules;
    std::map<DirectionalCidr, uint32_t> cidrs;
    CidrClasses classes[2];  // by direction
  };

  absl::Status PutRule(uint32_t policy_id, const DirectionalRule& rule);
  absl::Status DeleteRule(uint32_t policy_id, const DirectionalRule& rule);
  absl::Status FlipEndpoints(const policy::EndpointEnforcement& endpoint);

  PolicyMaps& maps_;
  std::map<IpPrefix, policy::Identity> peers_;  // as written
  std::map<uint32_t, Written> endpoints_;       // by policy_id
};

}  // namespace weir::policy_sync
