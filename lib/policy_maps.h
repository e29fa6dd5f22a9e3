// The NetworkPolicy maps (bpf/abi/policy.h) as typed maps, and the agent setting that sizes each.
#pragma once

#include <cstdint>
#include <string_view>

#include "bpf/abi/conntrack.h"
#include "bpf/abi/policy.h"
#include "lib/bpf_map.h"

namespace weir {

// Address or CIDR -> identity.
using PolicyPeersMap = BpfMap<weir_policy_peer_key, uint32_t>;
// Whole address -> identity: the peers that are host prefixes.
using PolicyHostsMap = BpfMap<weir_policy_host_key, uint32_t>;
using PolicyRulesMap = BpfMap<weir_policy_rule_key, weir_policy_rule_value>;
// Per endpoint-direction prefix -> CIDR class (0: none).
using PolicyCidrsMap = BpfMap<weir_policy_cidr_key, uint32_t>;
using PolicyConntrackMap = BpfMap<weir_ct_key, weir_policy_ct_value>;
// policy_id -> per-CPU verdict counters.
using PolicyCountersMap = BpfMap<uint32_t, weir_policy_counters>;

// The weir-agent setting a policy map's size comes from, for errors that say what to raise;
// nullptr for a map that is not one of them.
inline const char* PolicyMapSizeSetting(std::string_view map_name) {
  if (map_name == WEIR_POLICY_PEERS_MAP_NAME || map_name == WEIR_POLICY_HOSTS_MAP_NAME)
    return "policyPeersMax";
  if (map_name == WEIR_POLICY_RULES_MAP_NAME) return "policyRulesMax";
  if (map_name == WEIR_POLICY_CIDRS_MAP_NAME) return "policyCIDRsMax";
  if (map_name == WEIR_POLICY_CT_MAP_NAME) return "policyConntrackMax";
  return nullptr;
}

}  // namespace weir
