#include "proxy/policy_sync/bpf_policy_maps.h"

#include "absl/strings/str_cat.h"

namespace weir::policy_sync {
namespace {

// A failed write into a map that is at its size is the size's fault: say which setting to raise.
template <typename Map>
absl::Status ExplainFull(const Map& map, absl::Status status) {
  if (status.ok()) return status;
  absl::StatusOr<uint64_t> count = map.Count();
  if (!count.ok() || *count < map.max_entries()) return status;
  const char* setting = PolicyMapSizeSetting(map.name());
  return absl::ResourceExhaustedError(
      absl::StrCat("map ", map.name(), " is full (", map.max_entries(), " entries)",
                   setting ? absl::StrCat(": raise ", setting) : "", "; ", status.message()));
}

}  // namespace

absl::StatusOr<BpfPolicyMaps> BpfPolicyMaps::Open(const Datapath& datapath) {
  auto peers = datapath.OpenMap<PolicyPeersMap>(DatapathMap::kPolicyPeers);
  if (!peers.ok()) return peers.status();
  auto rules = datapath.OpenMap<PolicyRulesMap>(DatapathMap::kPolicyRules);
  if (!rules.ok()) return rules.status();
  auto cidrs = datapath.OpenMap<PolicyCidrsMap>(DatapathMap::kPolicyCidrs);
  if (!cidrs.ok()) return cidrs.status();
  auto counters = datapath.OpenMap<PolicyCountersMap>(DatapathMap::kPolicyCounters);
  if (!counters.ok()) return counters.status();
  auto endpoints = datapath.OpenMap<EndpointsMap>(DatapathMap::kEndpoints);
  if (!endpoints.ok()) return endpoints.status();
  return BpfPolicyMaps(*std::move(peers), *std::move(rules), *std::move(cidrs), *std::move(counters),
                       *std::move(endpoints));
}

absl::Status BpfPolicyMaps::PutPeer(const weir_policy_peer_key& key, uint32_t identity) {
  return ExplainFull(peers_, peers_.Update(key, identity));
}

absl::Status BpfPolicyMaps::PutRule(const weir_policy_rule_key& key) {
  return ExplainFull(rules_, rules_.Update(key, weir_policy_rule_value{}));
}

absl::Status BpfPolicyMaps::PutCidr(const weir_policy_cidr_key& key, uint32_t cidr_class) {
  return ExplainFull(cidrs_, cidrs_.Update(key, cidr_class));
}

absl::Status BpfPolicyMaps::DeletePeer(const weir_policy_peer_key& key) { return peers_.Delete(key); }
absl::Status BpfPolicyMaps::DeleteRule(const weir_policy_rule_key& key) { return rules_.Delete(key); }
absl::Status BpfPolicyMaps::DeleteCidr(const weir_policy_cidr_key& key) { return cidrs_.Delete(key); }
absl::Status BpfPolicyMaps::DeleteCounters(uint32_t policy_id) { return counters_.Delete(policy_id); }

absl::StatusOr<std::optional<weir_endpoint_value>> BpfPolicyMaps::GetEndpoint(const weir_endpoint_key& key) {
  return endpoints_.Lookup(key);
}

absl::Status BpfPolicyMaps::PutEndpoint(const weir_endpoint_key& key, const weir_endpoint_value& value) {
  return endpoints_.Update(key, value);
}

absl::StatusOr<PolicyMapContents> BpfPolicyMaps::ReadAll() const {
  PolicyMapContents contents;
  auto peers = peers_.List();
  if (!peers.ok()) return peers.status();
  for (const auto& entry : *peers) contents.peers.emplace_back(entry.key, entry.value);
  auto rules = rules_.List();
  if (!rules.ok()) return rules.status();
  for (const auto& entry : *rules) contents.rules.push_back(entry.key);
  auto cidrs = cidrs_.List();
  if (!cidrs.ok()) return cidrs.status();
  for (const auto& entry : *cidrs) contents.cidrs.emplace_back(entry.key, entry.value);
  return contents;
}

}  // namespace weir::policy_sync
