#include "proxy/policy_sync/bpf_policy_writer.h"

#include "absl/strings/str_cat.h"
#include "lib/abi_codec.h"

namespace weir::policy_sync {
namespace {

using policy::EndpointEnforcement;
using policy::EnforcementMode;

abi::PolicyRuleFields RuleFields(uint32_t policy_id, uint8_t direction, const RuleEntry& rule) {
  return abi::PolicyRuleFields{.policy_id = policy_id,
                               .direction = direction,
                               .peer = rule.peer,
                               .proto = rule.proto,
                               .port = rule.port,
                               .port_prefix_length = rule.port_prefix_length};
}

weir_policy_cidr_key CidrKey(uint32_t policy_id, uint8_t direction, const IpPrefix& prefix) {
  return abi::EncodePolicyCidrKey({.policy_id = policy_id, .direction = direction, .cidr = prefix});
}

}  // namespace

uint16_t BpfPolicyWriter::FlagsOf(const EndpointEnforcement& endpoint) {
  uint16_t flags = 0;
  if (endpoint.policy.ingress.isolated) flags |= WEIR_ENDPOINT_INGRESS_ISOLATED;
  if (endpoint.policy.egress.isolated) flags |= WEIR_ENDPOINT_EGRESS_ISOLATED;
  if (endpoint.ingress_mode == EnforcementMode::kAudit) flags |= WEIR_ENDPOINT_INGRESS_AUDIT;
  if (endpoint.egress_mode == EnforcementMode::kAudit) flags |= WEIR_ENDPOINT_EGRESS_AUDIT;
  return flags;
}

absl::Status BpfPolicyWriter::SetPeers(const std::map<IpPrefix, policy::Identity>& peers) {
  std::map<IpPrefix, policy::Identity> wanted;
  for (const auto& [prefix, identity] : peers) wanted[prefix.Network()] = identity;
  for (const auto& [prefix, identity] : wanted) {
    auto written = peers_.find(prefix);
    if (written != peers_.end() && written->second == identity) continue;
    if (absl::Status s = maps_.PutPeer(abi::EncodePolicyPeerKey(prefix), identity); !s.ok()) return s;
    peers_[prefix] = identity;
  }
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    if (absl::Status s = maps_.DeletePeer(abi::EncodePolicyPeerKey(it->first)); !s.ok()) return s;
    it = peers_.erase(it);
  }
  return absl::OkStatus();
}

absl::Status BpfPolicyWriter::PutRule(uint32_t policy_id, const DirectionalRule& rule) {
  return maps_.PutRule(abi::EncodePolicyRuleKey(RuleFields(policy_id, rule.first, rule.second)));
}

absl::Status BpfPolicyWriter::DeleteRule(uint32_t policy_id, const DirectionalRule& rule) {
  return maps_.DeleteRule(abi::EncodePolicyRuleKey(RuleFields(policy_id, rule.first, rule.second)));
}

absl::Status BpfPolicyWriter::FlipEndpoints(const EndpointEnforcement& endpoint) {
  const uint16_t flags = FlagsOf(endpoint);
  for (const IpAddress& address : endpoint.policy.addresses) {
    const weir_endpoint_key key = abi::EncodeEndpointKey(address);
    absl::StatusOr<std::optional<weir_endpoint_value>> entry = maps_.GetEndpoint(key);
    if (!entry.ok()) return entry.status();
    // No entry yet: the CNI's request for this pod writes the endpoint again once it has one.
    if (!entry->has_value()) continue;
    weir_endpoint_value value = **entry;
    const uint16_t new_flags = static_cast<uint16_t>((value.flags & ~WEIR_ENDPOINT_POLICY_FLAGS) | flags);
    if (value.flags == new_flags && value.policy_id == endpoint.policy_id) continue;
    value.flags = new_flags;
    value.policy_id = endpoint.policy_id;
    if (absl::Status s = maps_.PutEndpoint(key, value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status BpfPolicyWriter::WriteEndpoint(const EndpointEnforcement& endpoint) {
  if (endpoint.policy_id == 0 || (endpoint.policy_id & WEIR_POLICY_PEER_CIDR_CLASS)) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy id ", endpoint.policy_id, " is not usable: it must be in 1..2^31-1"));
  }
  const uint32_t id = endpoint.policy_id;
  Written& written = endpoints_[id];

  std::set<DirectionalRule> rules;
  std::map<DirectionalCidr, uint32_t> cidrs;
  const policy::DirectionPolicy* directions[2] = {&endpoint.policy.ingress, &endpoint.policy.egress};
  for (uint8_t direction : {uint8_t{WEIR_POLICY_INGRESS}, uint8_t{WEIR_POLICY_EGRESS}}) {
    DirectionEntries entries = DirectionEntriesOf(*directions[direction], written.classes[direction]);
    for (const RuleEntry& rule : entries.rules) rules.emplace(direction, rule);
    std::set<uint32_t> in_use;
    for (const auto& [prefix, cidr_class] : entries.cidrs) {
      cidrs[{direction, prefix}] = cidr_class;
      in_use.insert(cidr_class);
    }
    // Classes still written stay reserved until their entries are gone.
    for (const auto& [key, cidr_class] : written.cidrs) {
      if (key.first == direction) in_use.insert(cidr_class);
    }
    written.classes[direction].Retain(in_use);
  }

  // 1. What is new: rules before the prefixes that lead to them.
  for (const DirectionalRule& rule : rules) {
    if (written.rules.contains(rule)) continue;
    if (absl::Status s = PutRule(id, rule); !s.ok()) return s;
    written.rules.insert(rule);
  }
  for (const auto& [key, cidr_class] : cidrs) {
    auto old = written.cidrs.find(key);
    if (old != written.cidrs.end() && old->second == cidr_class) continue;
    if (absl::Status s = maps_.PutCidr(CidrKey(id, key.first, key.second), cidr_class); !s.ok()) return s;
    written.cidrs[key] = cidr_class;
  }
  // 2. The endpoint entries switch to this policy (and out of pending).
  if (absl::Status s = FlipEndpoints(endpoint); !s.ok()) return s;
  // 3. What is stale: prefixes before the rules they led to.
  for (auto it = written.cidrs.begin(); it != written.cidrs.end();) {
    if (cidrs.contains(it->first)) {
      ++it;
      continue;
    }
    if (absl::Status s = maps_.DeleteCidr(CidrKey(id, it->first.first, it->first.second)); !s.ok()) return s;
    it = written.cidrs.erase(it);
  }
  for (auto it = written.rules.begin(); it != written.rules.end();) {
    if (rules.contains(*it)) {
      ++it;
      continue;
    }
    if (absl::Status s = DeleteRule(id, *it); !s.ok()) return s;
    it = written.rules.erase(it);
  }
  return absl::OkStatus();
}

absl::Status BpfPolicyWriter::Adopt() {
  absl::StatusOr<PolicyMapContents> contents = maps_.ReadAll();
  if (!contents.ok()) return contents.status();
  for (const auto& [key, identity] : contents->peers) {
    if (std::optional<IpPrefix> prefix = abi::DecodePolicyPeerKey(key)) peers_[*prefix] = identity;
  }
  for (const weir_policy_rule_key& key : contents->rules) {
    std::optional<abi::PolicyRuleFields> fields = abi::DecodePolicyRuleKey(key);
    if (!fields.has_value() || fields->direction > WEIR_POLICY_EGRESS) continue;
    Written& written = endpoints_[fields->policy_id];
    written.rules.emplace(fields->direction, RuleEntry{.peer = fields->peer,
                                                       .proto = fields->proto,
                                                       .port = fields->port,
                                                       .port_prefix_length = fields->port_prefix_length});
    if (fields->peer & WEIR_POLICY_PEER_CIDR_CLASS) {
      written.classes[fields->direction].ReserveUpTo(fields->peer & ~WEIR_POLICY_PEER_CIDR_CLASS);
    }
  }
  for (const auto& [key, cidr_class] : contents->cidrs) {
    std::optional<abi::PolicyCidrFields> fields = abi::DecodePolicyCidrKey(key);
    if (!fields.has_value() || fields->direction > WEIR_POLICY_EGRESS) continue;
    Written& written = endpoints_[fields->policy_id];
    written.cidrs[{fields->direction, fields->cidr}] = cidr_class;
    written.classes[fields->direction].ReserveUpTo(cidr_class);
  }
  return absl::OkStatus();
}

absl::Status BpfPolicyWriter::RemoveEndpoint(uint32_t policy_id) {
  auto found = endpoints_.find(policy_id);
  if (found == endpoints_.end()) return absl::OkStatus();
  Written& written = found->second;
  for (auto it = written.cidrs.begin(); it != written.cidrs.end();) {
    if (absl::Status s = maps_.DeleteCidr(CidrKey(policy_id, it->first.first, it->first.second)); !s.ok())
      return s;
    it = written.cidrs.erase(it);
  }
  for (auto it = written.rules.begin(); it != written.rules.end();) {
    if (absl::Status s = DeleteRule(policy_id, *it); !s.ok()) return s;
    it = written.rules.erase(it);
  }
  if (absl::Status s = maps_.DeleteCounters(policy_id); !s.ok()) return s;
  endpoints_.erase(found);
  return absl::OkStatus();
}

}  // namespace weir::policy_sync
