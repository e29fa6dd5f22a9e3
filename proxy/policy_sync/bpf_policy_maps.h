// PolicyMaps over the loaded datapath's maps. A write into a full map fails with
// ResourceExhausted naming the agent setting that sizes it. A peer that is a whole address goes
// into the hosts map (weir_pol_hosts, an exact-match hash the datapath looks up first), a wider
// prefix into the peers trie; both read back as peer keys.
#pragma once

#include "absl/status/statusor.h"
#include "lib/datapath.h"
#include "lib/endpoint_map.h"
#include "lib/policy_maps.h"
#include "proxy/policy_sync/policy_maps.h"

namespace weir::policy_sync {

class BpfPolicyMaps : public PolicyMaps {
 public:
  static absl::StatusOr<BpfPolicyMaps> Open(const Datapath& datapath);

  absl::Status PutPeer(const weir_policy_peer_key& key, uint32_t identity) override;
  absl::Status PutRule(const weir_policy_rule_key& key) override;
  absl::Status PutCidr(const weir_policy_cidr_key& key, uint32_t cidr_class) override;
  absl::Status DeletePeer(const weir_policy_peer_key& key) override;
  absl::Status DeleteRule(const weir_policy_rule_key& key) override;
  absl::Status DeleteCidr(const weir_policy_cidr_key& key) override;
  absl::Status DeleteCounters(uint32_t policy_id) override;
  absl::StatusOr<std::optional<weir_endpoint_value>> GetEndpoint(const weir_endpoint_key& key) override;
  absl::Status PutEndpoint(const weir_endpoint_key& key, const weir_endpoint_value& value) override;
  absl::StatusOr<PolicyMapContents> ReadAll() const override;

 private:
  using EndpointsMap = BpfMap<weir_endpoint_key, weir_endpoint_value>;
  BpfPolicyMaps(PolicyPeersMap peers, PolicyHostsMap hosts, PolicyRulesMap rules, PolicyCidrsMap cidrs,
                PolicyCountersMap counters, EndpointsMap endpoints)
      : peers_(std::move(peers)),
        hosts_(std::move(hosts)),
        rules_(std::move(rules)),
        cidrs_(std::move(cidrs)),
        counters_(std::move(counters)),
        endpoints_(std::move(endpoints)) {}

  // Moves the whole addresses an older agent wrote into the trie to the hosts map.
  absl::Status MoveHostsOutOfTheTrie();

  PolicyPeersMap peers_;
  PolicyHostsMap hosts_;
  PolicyRulesMap rules_;
  PolicyCidrsMap cidrs_;
  PolicyCountersMap counters_;
  EndpointsMap endpoints_;
};

}  // namespace weir::policy_sync
