// RapidJSON plumbing for API server responses: parsing, reading the few fields the list/watch
// machinery needs (metadata, Status objects), and handing objects to the YAML::Node decoders of
// proxy/k8s/decode.h without re-serialising them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "rapidjson/document.h"
#include "yaml-cpp/yaml.h"

namespace weir::k8s {

// Parses one JSON document (integers stay exact: RapidJSON keeps int64/uint64 apart from doubles).
absl::StatusOr<rapidjson::Document> ParseJson(std::string_view text);

// The member `name` of an object, or nullptr when `object` is not an object or has no such member.
const rapidjson::Value* JsonMember(const rapidjson::Value& object, const char* name);

// The string member `name`, or "" when absent or not a string. The view points into `object`.
std::string_view JsonString(const rapidjson::Value& object, const char* name);

// An integer member, whether encoded as a JSON number or as a string of digits.
std::optional<int64_t> JsonInt(const rapidjson::Value& object, const char* name);

// A deep copy as yaml-cpp's node tree, what YAML::Load() of the JSON text gives the decoders:
// scalars become plain scalars (numbers and booleans as their text), null stays null. Several
// times faster than YAML::Load, whose scanner dominates decoding a large list.
YAML::Node JsonToYaml(const rapidjson::Value& value);

// Where an object lives in a cache: "namespace/name", or "name" for cluster-scoped objects.
struct ObjectIdentity {
  std::string key;
  std::string resource_version;
};
// Fails when metadata.name is missing: such an object cannot be cached or deleted.
absl::StatusOr<ObjectIdentity> IdentityOf(const rapidjson::Value& object);

// A metav1.Status, as carried by error responses and watch ERROR events.
struct ApiStatus {
  int code = 0;        // HTTP-like code, e.g. 410
  std::string reason;  // e.g. "Expired", "Gone"
  std::string message;
};
// nullopt when `value` is not a Status object.
std::optional<ApiStatus> ApiStatusOf(const rapidjson::Value& value);

// Compact JSON text of a value (for objects kept raw, and for messages).
std::string JsonText(const rapidjson::Value& value);

}  // namespace weir::k8s
