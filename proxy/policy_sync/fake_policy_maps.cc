#include "proxy/policy_sync/fake_policy_maps.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/abi_codec.h"

namespace weir::policy_sync {
namespace {

std::string EndpointText(const weir_endpoint_key& key, const weir_endpoint_value& value) {
  std::vector<std::string> flags = abi::EndpointFlagList(value.flags);
  return absl::StrCat(abi::Render(key), " policy ", value.policy_id, " ", absl::StrJoin(flags, ","));
}

}  // namespace

absl::Status FakePolicyMaps::Record(std::string text) {
  if (failures_start_after_.has_value()) {
    if (*failures_start_after_ == 0) return absl::UnavailableError("injected failure");
    --*failures_start_after_;
  }
  operations_.push_back(std::move(text));
  return absl::OkStatus();
}

absl::Status FakePolicyMaps::PutPeer(const weir_policy_peer_key& key, uint32_t identity) {
  if (absl::Status s = Record(absl::StrCat("put peer ", abi::Render(key), " = ", identity)); !s.ok())
    return s;
  peers_[key] = identity;
  return absl::OkStatus();
}

absl::Status FakePolicyMaps::PutRule(const weir_policy_rule_key& key) {
  if (absl::Status s = Record(absl::StrCat("put rule ", abi::Render(key))); !s.ok()) return s;
  rules_[key] = true;
  return absl::OkStatus();
}

absl::Status FakePolicyMaps::PutCidr(const weir_policy_cidr_key& key, uint32_t cidr_class) {
  if (absl::Status s = Record(absl::StrCat("put cidr ", abi::Render(key), " = class ", cidr_class)); !s.ok())
    return s;
  cidrs_[key] = cidr_class;
  return absl::OkStatus();
}

absl::Status FakePolicyMaps::DeletePeer(const weir_policy_peer_key& key) {
  if (absl::Status s = Record(absl::StrCat("delete peer ", abi::Render(key))); !s.ok()) return s;
  peers_.erase(key);
  return absl::OkStatus();
}

absl::Status FakePolicyMaps::DeleteRule(const weir_policy_rule_key& key) {
  if (absl::Status s = Record(absl::StrCat("delete rule ", abi::Render(key))); !s.ok()) return s;
  rules_.erase(key);
  return absl::OkStatus();
}

absl::Status FakePolicyMaps::DeleteCidr(const weir_policy_cidr_key& key) {
  if (absl::Status s = Record(absl::StrCat("delete cidr ", abi::Render(key))); !s.ok()) return s;
  cidrs_.erase(key);
  return absl::OkStatus();
}

absl::Status FakePolicyMaps::DeleteCounters(uint32_t policy_id) {
  return Record(absl::StrCat("delete counters ", policy_id));
}

absl::StatusOr<std::optional<weir_endpoint_value>> FakePolicyMaps::GetEndpoint(const weir_endpoint_key& key) {
  auto found = endpoints_.find(key);
  if (found == endpoints_.end()) return std::nullopt;
  return found->second;
}

absl::Status FakePolicyMaps::PutEndpoint(const weir_endpoint_key& key, const weir_endpoint_value& value) {
  if (absl::Status s = Record(absl::StrCat("put endpoint ", EndpointText(key, value))); !s.ok()) return s;
  endpoints_[key] = value;
  return absl::OkStatus();
}

absl::StatusOr<PolicyMapContents> FakePolicyMaps::ReadAll() const {
  PolicyMapContents contents;
  for (const auto& [key, identity] : peers_) contents.peers.emplace_back(key, identity);
  for (const auto& [key, unused] : rules_) contents.rules.push_back(key);
  for (const auto& [key, cidr_class] : cidrs_) contents.cidrs.emplace_back(key, cidr_class);
  return contents;
}

std::vector<std::string> FakePolicyMaps::DumpLines() const {
  std::vector<std::string> lines;
  for (const auto& [key, identity] : peers_)
    lines.push_back(absl::StrCat("peer ", abi::Render(key), " = ", identity));
  for (const auto& [key, unused] : rules_) lines.push_back(absl::StrCat("rule ", abi::Render(key)));
  for (const auto& [key, cidr_class] : cidrs_)
    lines.push_back(absl::StrCat("cidr ", abi::Render(key), " = class ", cidr_class));
  for (const auto& [key, value] : endpoints_)
    lines.push_back(absl::StrCat("endpoint ", EndpointText(key, value)));
  std::sort(lines.begin(), lines.end());
  return lines;
}

}  // namespace weir::policy_sync
