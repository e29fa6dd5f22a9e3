#include "proxy/weirctl/policy_command.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "proxy/weirctl/agent_answer.h"
#include "rapidjson/document.h"

namespace weir::weirctl {
namespace {

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

void AppendDirection(std::string& out, const char* name, const rapidjson::Value& endpoint) {
  auto member = endpoint.FindMember(name);
  if (member == endpoint.MemberEnd() || !member->value.IsObject()) return;
  const rapidjson::Value& direction = member->value;
  const bool isolated = JsonBool(direction, "isolated");
  const std::string mode = JsonString(direction, "mode");
  if (!isolated) {
    absl::StrAppend(&out, "  ", name, ": not isolated", mode == "audit" ? " (audit)" : "", "\n");
    return;
  }
  const std::vector<std::string> allowed = JsonStrings(direction, "allowed");
  absl::StrAppend(&out, "  ", name, ": isolated by ", absl::StrJoin(JsonStrings(direction, "policies"), ", "),
                  " (", mode == "audit" ? "audit: reported, not dropped" : "enforced", ")",
                  allowed.empty() ? ", nothing allowed" : "", "\n");
  for (const std::string& entry : allowed) absl::StrAppend(&out, "    allow ", entry, "\n");
}

}  // namespace

absl::StatusOr<std::string> RenderPolicy(const std::string& agent_json, OutputFormat format) {
  absl::StatusOr<rapidjson::Document> parsed = ParseEndpointsAnswer(agent_json);
  if (!parsed.ok()) return parsed.status();
  const rapidjson::Document& document = *parsed;
  if (format == OutputFormat::kJson) {
    return absl::StrCat(absl::StripTrailingAsciiWhitespace(agent_json), "\n");
  }
  std::string out;
  const bool node_audit = JsonBool(document, "node_audit");
  absl::StrAppend(&out, "node ", JsonString(document, "node"),
                  node_audit ? " (audit mode: nothing dropped)" : "", ", ",
                  document.HasMember("identities") ? document["identities"].GetUint64() : 0, " identities\n");
  for (const auto& endpoint : document["endpoints"].GetArray()) {
    if (!endpoint.IsObject()) continue;
    const bool written = JsonBool(endpoint, "written");
    const std::vector<std::string> addresses = JsonStrings(endpoint, "addresses");
    absl::StrAppend(&out, "\n", JsonString(endpoint, "namespace"), "/", JsonString(endpoint, "name"),
                    "  policy_id ", endpoint.HasMember("policy_id") ? endpoint["policy_id"].GetUint() : 0,
                    "  identity ", endpoint.HasMember("identity") ? endpoint["identity"].GetUint() : 0, "  ",
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
  absl::StatusOr<std::string> answer = AskAgentFor(options.agent_socket, request);
  if (!answer.ok() && !absl::StartsWith(answer.status().message(), "error ")) {
    return absl::Status(answer.status().code(),
                        absl::StrCat(answer.status().message(),
                                     " (is weir-agent running with network policy on? --agent_socket)"));
  }
  if (!answer.ok()) return answer.status();
  absl::StatusOr<std::string> rendered = RenderPolicy(*answer, options.format);
  if (!rendered.ok()) return rendered.status();
  absl::PrintF("%s", *rendered);
  return absl::OkStatus();
}

}  // namespace weir::weirctl
