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

bool IsHost(const weir_policy_peer_key& key) {
  return key.prefixlen == WEIR_POLICY_PEER_FAMILY_BITS + (key.family == WEIR_FAMILY_IPV4 ? 32 : 128);
}

weir_policy_host_key HostKey(const weir_policy_peer_key& key) {
  weir_policy_host_key host{};
  host.family = key.family;
  host.addr = key.addr;
  return host;
}

weir_policy_peer_key PeerKey(const weir_policy_host_key& host) {
  weir_policy_peer_key key{};
  key.prefixlen = WEIR_POLICY_PEER_FAMILY_BITS + (host.family == WEIR_FAMILY_IPV4 ? 32 : 128);
  key.family = host.family;
  key.addr = host.addr;
  return key;
}

}  // namespace

absl::StatusOr<BpfPolicyMaps> BpfPolicyMaps::Open(const Datapath& datapath) {
  auto peers = datapath.OpenMap<PolicyPeersMap>(DatapathMap::kPolicyPeers);
  if (!peers.ok()) return peers.status();
  auto hosts = datapath.OpenMap<PolicyHostsMap>(DatapathMap::kPolicyHosts);
  if (!hosts.ok()) return hosts.status();
  auto rules = datapath.OpenMap<PolicyRulesMap>(DatapathMap::kPolicyRules);
  if (!rules.ok()) return rules.status();
  auto cidrs = datapath.OpenMap<PolicyCidrsMap>(DatapathMap::kPolicyCidrs);
  if (!cidrs.ok()) return cidrs.status();
  auto counters = datapath.OpenMap<PolicyCountersMap>(DatapathMap::kPolicyCounters);
  if (!counters.ok()) return counters.status();
  auto endpoints = datapath.OpenMap<EndpointsMap>(DatapathMap::kEndpoints);
  if (!endpoints.ok()) return endpoints.status();
  BpfPolicyMaps maps(*std::move(peers), *std::move(hosts), *std::move(rules), *std::move(cidrs),
                     *std::move(counters), *std::move(endpoints));
  if (absl::Status moved = maps.MoveHostsOutOfTheTrie(); !moved.ok()) return moved;
  return maps;
}

// The datapath finds a whole address in either map (hosts first), so each entry moves without a
// moment in which it is in neither.
absl::Status BpfPolicyMaps::MoveHostsOutOfTheTrie() {
  auto peers = peers_.List();
  if (!peers.ok()) return peers.status();
  for (const auto& entry : *peers) {
    if (!IsHost(entry.key)) continue;
    if (absl::Status s = ExplainFull(hosts_, hosts_.Update(HostKey(entry.key), entry.value)); !s.ok())
      return s;
    if (absl::Status s = peers_.Delete(entry.key); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status BpfPolicyMaps::PutPeer(const weir_policy_peer_key& key, uint32_t identity) {
  if (IsHost(key)) return ExplainFull(hosts_, hosts_.Update(HostKey(key), identity));
  return ExplainFull(peers_, peers_.Update(key, identity));
}

absl::Status BpfPolicyMaps::PutRule(const weir_policy_rule_key& key) {
  return ExplainFull(rules_, rules_.Update(key, weir_policy_rule_value{}));
}

absl::Status BpfPolicyMaps::PutCidr(const weir_policy_cidr_key& key, uint32_t cidr_class) {
  return ExplainFull(cidrs_, cidrs_.Update(key, cidr_class));
}

absl::Status BpfPolicyMaps::DeletePeer(const weir_policy_peer_key& key) {
  return IsHost(key) ? hosts_.Delete(HostKey(key)) : peers_.Delete(key);
}
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
  auto hosts = hosts_.List();
  if (!hosts.ok()) return hosts.status();
  for (const auto& entry : *hosts) contents.peers.emplace_back(PeerKey(entry.key), entry.value);
  auto rules = rules_.List();
  if (!rules.ok()) return rules.status();
  for (const auto& entry : *rules) contents.rules.push_back(entry.key);
  auto cidrs = cidrs_.List();
  if (!cidrs.ok()) return cidrs.status();
  for (const auto& entry : *cidrs) contents.cidrs.emplace_back(entry.key, entry.value);
  return contents;
}

}  // namespace weir::policy_sync
