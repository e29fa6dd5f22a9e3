// The agent's JSON answers on its socket (`policy`, `directory`; lib/agent_socket.h), as weirctl's
// commands read them: the request, its "error ..." answer as a status, the endpoints document's
// shape check, and lenient field readers (a missing or mistyped field reads as empty).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rapidjson/document.h"

namespace weir::weirctl {

// Sends `request` to the agent on `agent_socket`; an answer starting "error " becomes an error.
absl::StatusOr<std::string> AskAgentFor(const std::string& agent_socket, const std::string& request);

// Parses an answer whose top level is an object with an "endpoints" array.
absl::StatusOr<rapidjson::Document> ParseEndpointsAnswer(const std::string& json);

std::string JsonString(const rapidjson::Value& object, const char* key);
std::vector<std::string> JsonStrings(const rapidjson::Value& object, const char* key);
bool JsonBool(const rapidjson::Value& object, const char* key);

}  // namespace weir::weirctl
