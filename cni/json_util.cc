#include "cni/json_util.h"

#include "absl/strings/str_cat.h"
#include "cni/error.h"
#include "rapidjson/error/en.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace weir::cni {

absl::Status ParseJsonObject(absl::string_view text, absl::string_view what, rapidjson::Document& document) {
  // Explicit length: the input is not NUL-terminated and may legitimately contain anything.
  document.Parse(text.data(), text.size());
  if (document.HasParseError()) {
    return CniError(
        CniCode::kDecodeFailure,
        absl::StrCat(what, " is not valid JSON: ", rapidjson::GetParseError_En(document.GetParseError()),
                     " at offset ", document.GetErrorOffset()));
  }
  if (!document.IsObject()) {
    return CniError(CniCode::kDecodeFailure,
                    absl::StrCat(what, " must be a JSON object, got ", JsonTypeName(document)));
  }
  return absl::OkStatus();
}

std::string JsonToString(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::string_view JsonTypeName(const rapidjson::Value& value) {
  switch (value.GetType()) {
    case rapidjson::kNullType: return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType: return "boolean";
    case rapidjson::kObjectType: return "object";
    case rapidjson::kArrayType: return "array";
    case rapidjson::kStringType: return "string";
    case rapidjson::kNumberType: return "number";
  }
  return "unknown";
}

JsonFields::JsonFields(const rapidjson::Value& object, std::string path)
    : object_(object), path_(std::move(path)) {}

std::string JsonFields::PathOf(absl::string_view key) const {
  return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", key);
}

const rapidjson::Value* JsonFields::Member(const char* key) const {
  if (!object_.IsObject()) return nullptr;
  auto it = object_.FindMember(key);
  // JSON null is treated as absent, as Go's encoding/json (libcni) does for optional fields.
  if (it == object_.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

void JsonFields::TypeError(const char* key, absl::string_view expected, const rapidjson::Value& got) {
  if (!status_.ok()) return;
  status_ = CniError(CniCode::kDecodeFailure,
                     absl::StrCat(PathOf(key), " must be ", expected, ", found ", JsonTypeName(got)));
}

bool JsonFields::Has(const char* key) const { return Member(key) != nullptr; }

bool JsonFields::String(const char* key, std::string& out) {
  const rapidjson::Value* value = Member(key);
  if (value == nullptr) return false;
  if (!value->IsString()) {
    TypeError(key, "a string", *value);
    return false;
  }
  out.assign(value->GetString(), value->GetStringLength());
  return true;
}

bool JsonFields::Int(const char* key, int64_t& out) {
  const rapidjson::Value* value = Member(key);
  if (value == nullptr) return false;
  if (!value->IsInt64()) {
    TypeError(key, "an integer", *value);
    return false;
  }
  out = value->GetInt64();
  return true;
}

bool JsonFields::Bool(const char* key, bool& out) {
  const rapidjson::Value* value = Member(key);
  if (value == nullptr) return false;
  if (!value->IsBool()) {
    TypeError(key, "a boolean", *value);
    return false;
  }
  out = value->GetBool();
  return true;
}

bool JsonFields::StringArray(const char* key, std::vector<std::string>& out) {
  const rapidjson::Value* value = Member(key);
  if (value == nullptr) return false;
  if (!value->IsArray()) {
    TypeError(key, "an array of strings", *value);
    return false;
  }
  std::vector<std::string> strings;
  for (const rapidjson::Value& element : value->GetArray()) {
    if (!element.IsString()) {
      TypeError(key, "an array of strings", element);  // reports the offending element's type
      return false;
    }
    strings.emplace_back(element.GetString(), element.GetStringLength());
  }
  out = std::move(strings);
  return true;
}

const rapidjson::Value* JsonFields::Object(const char* key) {
  const rapidjson::Value* value = Member(key);
  if (value == nullptr) return nullptr;
  if (!value->IsObject()) {
    TypeError(key, "an object", *value);
    return nullptr;
  }
  return value;
}

const rapidjson::Value* JsonFields::Array(const char* key) {
  const rapidjson::Value* value = Member(key);
  if (value == nullptr) return nullptr;
  if (!value->IsArray()) {
    TypeError(key, "an array", *value);
    return nullptr;
  }
  return value;
}

}  // namespace weir::cni
