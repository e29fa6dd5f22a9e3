#include "proxy/weirctl/agent_answer.h"

#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "lib/agent_socket.h"

namespace weir::weirctl {

absl::StatusOr<std::string> AskAgentFor(const std::string& agent_socket, const std::string& request) {
  absl::StatusOr<std::string> answer = AskAgent(agent_socket, request, std::chrono::seconds(5));
  if (!answer.ok()) return answer.status();
  if (absl::StartsWith(*answer, "error ")) {
    return absl::InternalError(std::string(absl::StripTrailingAsciiWhitespace(*answer)));
  }
  return answer;
}

absl::StatusOr<rapidjson::Document> ParseEndpointsAnswer(const std::string& json) {
  rapidjson::Document document;
  document.Parse(json.c_str(), json.size());
  if (document.HasParseError() || !document.IsObject() || !document.HasMember("endpoints") ||
      !document["endpoints"].IsArray()) {
    return absl::InternalError(absl::StrCat("unexpected answer from the agent: ",
                                            absl::StripTrailingAsciiWhitespace(json.substr(0, 200))));
  }
  return document;
}

std::string JsonString(const rapidjson::Value& object, const char* key) {
  auto member = object.FindMember(key);
  return member != object.MemberEnd() && member->value.IsString() ? member->value.GetString() : "";
}

std::vector<std::string> JsonStrings(const rapidjson::Value& object, const char* key) {
  std::vector<std::string> values;
  auto member = object.FindMember(key);
  if (member == object.MemberEnd() || !member->value.IsArray()) return values;
  for (const auto& value : member->value.GetArray()) {
    if (value.IsString()) values.push_back(value.GetString());
  }
  return values;
}

bool JsonBool(const rapidjson::Value& object, const char* key) {
  auto member = object.FindMember(key);
  return member != object.MemberEnd() && member->value.IsBool() && member->value.GetBool();
}

}  // namespace weir::weirctl
