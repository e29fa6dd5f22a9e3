#include "proxy/weirctl/policy_command.h"

#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "lib/agent_socket.h"
#include "rapidjson/document.h"

namespace weir::weirctl {
namespace {

std::string String(const rapidjson::Value& object, const char* key) {
  auto member = object.FindMember(key);
  return member != object.MemberEnd() && member->value.IsString() ? member->value.GetString() : "";
}

std::string LabelsText(const rapidjson::Value& object, const char* key) {
  auto member = object.FindMember(key);
  if (member == object.MemberEnd() || !member->value.IsObject() || member->value.MemberCount() == 0)
    return "(none)";
  std::vector<std::string> pairs;
  for (const auto& label : member->value.GetObject()) {
    pairs.push_back(
        absl::StrCat(label.name.GetString(), "=", label.value.IsString() ? label.value.GetString() : ""));
  }
  return absl::StrJoin(pairs, ",");
}

std::vector<std::string> Strings(const rapidjson::Value& object, const char* key) {
  std::vector<std::string> values;
  auto member = object.FindMember(key);
  if (member == object.MemberEnd() || !member->value.IsArray()) return values;
  for (const auto& value : member->value.GetArray()) {
    if (value.IsString()) values.push_back(value.GetString());
  }
  return values;
}

void AppendDirection(std::string& out, const char* name, const rapidjson::Value& endpoint) {
  auto member = endpoint.FindMember(name);
  if (member == endpoint.MemberEnd() || !member->value.IsObject()) return;
  const rapidjson::Value& direction = member->value;
  const bool isolated =
      direction.HasMember("isolated") && direction["isolated"].IsBool() && direction["isolated"].GetBool();
  const std::string mode = String(direction, "mode");
  if (!isolated) {
    absl::StrAppend(&out, "  ", name, ": not isolated", mode == "audit" ? " (audit)" : "", "\n");
    return;
  }
  const std::vector<std::string> allowed = Strings(direction, "allowed");
  absl::StrAppend(&out, "  ", name, ": isolated by ", absl::StrJoin(Strings(direction, "policies"), ", "),
                  " (", mode == "audit" ? "audit: reported, not dropped" : "enforced", ")",
                  allowed.empty() ? ", nothing allowed" : "", "\n");
  for (const std::string& entry : allowed) absl::StrAppend(&out, "    allow ", entry, "\n");
}

}  // namespace

absl::StatusOr<std::string> RenderPolicy(const std::string& agent_json, OutputFormat format) {
  rapidjson::Document document;
  document.Parse(agent_json.c_str(), agent_json.size());
  if (document.HasParseError() || !document.IsObject() || !document.HasMember("endpoints") ||
      !document["endpoints"].IsArray()) {
    return absl::InternalError(absl::StrCat("unexpected answer from the agent: ",
                                            absl::StripTrailingAsciiWhitespace(agent_json.substr(0, 200))));
  }
  if (format == OutputFormat::kJson) {
    return absl::StrCat(absl::StripTrailingAsciiWhitespace(agent_json), "\n");
  }
  std::string out;
  const bool node_audit =
      document.HasMember("node_audit") && document["node_audit"].IsBool() && document["node_audit"].GetBool();
  absl::StrAppend(&out, "node ", String(document, "node"), node_audit ? " (audit mode: nothing dropped)" : "",
                  ", ", document.HasMember("identities") ? document["identities"].GetUint64() : 0,
                  " identities\n");
  for (const auto& endpoint : document["endpoints"].GetArray()) {
    if (!endpoint.IsObject()) continue;
    const bool written =
        endpoint.HasMember("written") && endpoint["written"].IsBool() && endpoint["written"].GetBool();
    const std::vector<std::string> addresses = Strings(endpoint, "addresses");
    absl::StrAppend(&out, "\n", String(endpoint, "namespace"), "/", String(endpoint, "name"), "  policy_id ",
                    endpoint.HasMember("policy_id") ? endpoint["policy_id"].GetUint() : 0, "  identity ",
                    endpoint.HasMember("identity") ? endpoint["identity"].GetUint() : 0, "  ",
                    addresses.empty() ? "(no address yet)" : absl::StrJoin(addresses, ","),
                    written ? "" : "  (not written yet)", "\n");
    absl::StrAppend(&out, "  labels: ", LabelsText(endpoint, "labels"),
                    "\n  namespace labels: ", LabelsText(endpoint, "namespace_labels"), "\n");
    AppendDirection(out, "ingress", endpoint);
    AppendDirection(out, "egress", endpoint);
  }
  if (document["endpoints"].Empty()) absl::StrAppend(&out, "no matching endpoint on this node\n");
  return out;
}

absl::Status RunPolicy(const CommandOptions& options) {
  const std::string request = options.argument.empty() ? "policy" : absl::StrCat("policy ", options.argument);
  absl::StatusOr<std::string> answer = AskAgent(options.agent_socket, request, std::chrono::seconds(5));
  if (!answer.ok()) {
    return absl::Status(answer.status().code(),
                        absl::StrCat(answer.status().message(),
                                     " (is weir-agent running with network policy on? --agent_socket)"));
  }
  if (absl::StartsWith(*answer, "error ")) {
    return absl::InternalError(std::string(absl::StripTrailingAsciiWhitespace(*answer)));
  }
  absl::StatusOr<std::string> rendered = RenderPolicy(*answer, options.format);
  if (!rendered.ok()) return rendered.status();
  absl::PrintF("%s", *rendered);
  return absl::OkStatus();
}

}  // namespace weir::weirctl
