#include "proxy/weirctl/policy_directory.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "bpf/abi/policy.h"
#include "lib/abi_codec.h"
#include "proxy/weirctl/agent_answer.h"
#include "rapidjson/document.h"

namespace weir::weirctl {
namespace {

PolicyDirectory::Direction DirectionOf(const rapidjson::Value& endpoint, const char* key) {
  PolicyDirectory::Direction direction;
  auto member = endpoint.FindMember(key);
  if (member == endpoint.MemberEnd() || !member->value.IsObject()) return direction;
  const rapidjson::Value& value = member->value;
  direction.isolated = JsonBool(value, "isolated");
  direction.audit = JsonString(value, "mode") == "audit";
  direction.policies = JsonStrings(value, "policies");
  return direction;
}

}  // namespace

absl::StatusOr<PolicyDirectory> PolicyDirectory::Parse(const std::string& json) {
  absl::StatusOr<rapidjson::Document> parsed = ParseEndpointsAnswer(json);
  if (!parsed.ok()) return parsed.status();
  const rapidjson::Document& document = *parsed;
  PolicyDirectory directory;
  for (const auto& value : document["endpoints"].GetArray()) {
    if (!value.IsObject() || !value.HasMember("policy_id") || !value["policy_id"].IsUint()) continue;
    Endpoint endpoint{.policy_id = value["policy_id"].GetUint(),
                      .pod = absl::StrCat(JsonString(value, "namespace"), "/", JsonString(value, "name")),
                      .addresses = JsonStrings(value, "addresses"),
                      .ingress = DirectionOf(value, "ingress"),
                      .egress = DirectionOf(value, "egress")};
    for (const std::string& address : endpoint.addresses)
      directory.id_by_address_[address] = endpoint.policy_id;
    // policy_id 0: not given one yet (found by address only).
    if (endpoint.policy_id != 0)
      directory.by_id_[endpoint.policy_id] = endpoint;
    else
      directory.pending_[endpoint.addresses.empty() ? "" : endpoint.addresses.front()] = endpoint;
  }
  if (document.HasMember("identities") && document["identities"].IsObject()) {
    for (const auto& identity : document["identities"].GetObject()) {
      uint32_t number = 0;
      if (identity.value.IsString() && absl::SimpleAtoi(identity.name.GetString(), &number)) {
        directory.identities_[number] = identity.value.GetString();
      }
    }
  }
  return directory;
}

absl::StatusOr<PolicyDirectory> PolicyDirectory::Ask(const std::string& agent_socket) {
  absl::StatusOr<std::string> answer = AskAgentFor(agent_socket, "directory");
  if (!answer.ok()) return answer.status();
  return Parse(*answer);
}

const PolicyDirectory::Endpoint* PolicyDirectory::Find(uint32_t policy_id) const {
  auto found = by_id_.find(policy_id);
  return found == by_id_.end() ? nullptr : &found->second;
}

const PolicyDirectory::Endpoint* PolicyDirectory::FindByAddress(const std::string& address) const {
  auto id = id_by_address_.find(address);
  if (id == id_by_address_.end()) return nullptr;
  if (const Endpoint* endpoint = Find(id->second)) return endpoint;
  auto pending = pending_.find(address);
  return pending == pending_.end() ? nullptr : &pending->second;
}

std::string PolicyDirectory::IdentityName(uint32_t identity) const {
  auto found = identities_.find(identity);
  return found == identities_.end() ? absl::StrCat(identity) : found->second;
}

// The endpoint is the source of an egress record and the destination of an ingress one. A pending
// endpoint's records carry policy_id 0: its address names it.
const PolicyDirectory::Endpoint* PolicyDirectory::EndpointOf(const EventView& view) const {
  if (!view.policy) return nullptr;
  if (view.policy->policy_id != 0) return Find(view.policy->policy_id);
  const FlowSide& side = view.policy->direction == WEIR_POLICY_EGRESS ? view.source : view.destination;
  return FindByAddress(abi::RenderAddress(side.addr, view.family));
}

bool PolicyDirectory::Knows(const EventView& view) const {
  return !view.policy || (EndpointOf(view) != nullptr && identities_.count(view.policy->peer_identity) > 0);
}

void PolicyDirectory::Name(EventView& view) const {
  if (!view.policy) return;
  const PolicyRecord& record = *view.policy;
  if (const Endpoint* endpoint = EndpointOf(view)) {
    view.fields.push_back({"endpoint", endpoint->pod});
    const Direction& direction =
        record.direction == WEIR_POLICY_EGRESS ? endpoint->egress : endpoint->ingress;
    if (record.policy_id == 0) {
      // Denied both ways until the agent has computed and written the pod's policy.
      view.fields.push_back({"policy", std::string("pending")});
    } else {
      // No rule of the isolating policies admitted the flow: they decided, by their default deny.
      view.fields.push_back({"policy", std::string("default-deny")});
      view.fields.push_back({"isolated_by", direction.policies.empty()
                                                ? std::string("-")
                                                : absl::StrJoin(direction.policies, ",")});
    }
  }
  view.fields.push_back({"peer", IdentityName(record.peer_identity)});
  view.fields.push_back({"policy_id", uint64_t{record.policy_id}});
  view.fields.push_back({"peer_identity", uint64_t{record.peer_identity}});
}

}  // namespace weir::weirctl
