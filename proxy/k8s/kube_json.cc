#include "proxy/k8s/kube_json.h"

#include <charconv>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "rapidjson/error/en.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace weir::k8s {

absl::StatusOr<rapidjson::Document> ParseJson(std::string_view text) {
  rapidjson::Document document;
  document.Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
  if (document.HasParseError()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON at offset ", document.GetErrorOffset(), ": ",
                                                   rapidjson::GetParseError_En(document.GetParseError())));
  }
  return document;
}

const rapidjson::Value* JsonMember(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

std::string_view JsonString(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* member = JsonMember(object, name);
  if (member == nullptr || !member->IsString()) return {};
  return {member->GetString(), member->GetStringLength()};
}

std::optional<int64_t> JsonInt(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* member = JsonMember(object, name);
  if (member == nullptr) return std::nullopt;
  if (member->IsInt64()) return member->GetInt64();
  int64_t value = 0;
  if (member->IsString() &&
      absl::SimpleAtoi(absl::string_view(member->GetString(), member->GetStringLength()), &value)) {
    return value;
  }
  return std::nullopt;
}

YAML::Node JsonToYaml(const rapidjson::Value& value) {
  switch (value.GetType()) {
    case rapidjson::kNullType: return YAML::Node(YAML::NodeType::Null);
    case rapidjson::kFalseType: return YAML::Node("false");
    case rapidjson::kTrueType: return YAML::Node("true");
    case rapidjson::kStringType: return YAML::Node(std::string(value.GetString(), value.GetStringLength()));
    case rapidjson::kNumberType:
      if (value.IsInt64()) return YAML::Node(absl::StrCat(value.GetInt64()));
      if (value.IsUint64()) return YAML::Node(absl::StrCat(value.GetUint64()));
      {
        // Shortest text that reads back as the same double.
        char text[32];
        auto [end, error] = std::to_chars(text, text + sizeof(text), value.GetDouble());
        return YAML::Node(std::string(text, error == std::errc() ? end : text));
      }
    case rapidjson::kArrayType: {
      YAML::Node sequence(YAML::NodeType::Sequence);
      for (const rapidjson::Value& item : value.GetArray()) sequence.push_back(JsonToYaml(item));
      return sequence;
    }
    case rapidjson::kObjectType: {
      YAML::Node map(YAML::NodeType::Map);
      // force_insert skips the key lookup; the API server never sends duplicate keys.
      for (const auto& member : value.GetObject()) {
        map.force_insert(std::string(member.name.GetString(), member.name.GetStringLength()),
                         JsonToYaml(member.value));
      }
      return map;
    }
  }
  return YAML::Node();
}

absl::StatusOr<ObjectIdentity> IdentityOf(const rapidjson::Value& object) {
  const rapidjson::Value* metadata = JsonMember(object, "metadata");
  if (metadata == nullptr || !metadata->IsObject())
    return absl::InvalidArgumentError("object without metadata");
  std::string_view name = JsonString(*metadata, "name");
  if (name.empty()) return absl::InvalidArgumentError("object without metadata.name");
  std::string_view namespace_ = JsonString(*metadata, "namespace");
  ObjectIdentity identity;
  identity.key = namespace_.empty() ? std::string(name)
                                    : absl::StrCat(absl::string_view(namespace_.data(), namespace_.size()),
                                                   "/", absl::string_view(name.data(), name.size()));
  identity.resource_version = std::string(JsonString(*metadata, "resourceVersion"));
  return identity;
}

std::optional<ApiStatus> ApiStatusOf(const rapidjson::Value& value) {
  if (JsonString(value, "kind") != "Status") return std::nullopt;
  ApiStatus status;
  status.code = static_cast<int>(JsonInt(value, "code").value_or(0));
  status.reason = std::string(JsonString(value, "reason"));
  status.message = std::string(JsonString(value, "message"));
  return status;
}

std::string JsonText(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace weir::k8s
