// Small RapidJSON helpers shared by the config and result codecs: parse an object, serialize a
// sub-value back to text, and read typed fields with CNI decode errors that name the field path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "rapidjson/document.h"

namespace weir::cni {

// Parses `text` into `document`, requiring a JSON object at the top.
// Failure is CniCode::kDecodeFailure, with `what` and the parse error position in the message.
absl::Status ParseJsonObject(absl::string_view text, absl::string_view what, rapidjson::Document& document);

// Compact JSON text of a value (used to keep sub-objects such as "ipam" verbatim).
std::string JsonToString(const rapidjson::Value& value);

// Typed reads of an object's members. An absent member (or JSON null) leaves the output untouched
// and returns false; a member of the wrong type records a kDecodeFailure (first one wins) and
// returns false. Check status() once after reading all fields.
class JsonFields {
 public:
  // `path` prefixes error messages, e.g. "prevResult.ips[0]".
  JsonFields(const rapidjson::Value& object, std::string path);

  bool Has(const char* key) const;
  bool String(const char* key, std::string& out);
  bool Int(const char* key, int64_t& out);
  bool Bool(const char* key, bool& out);
  bool StringArray(const char* key, std::vector<std::string>& out);
  // nullptr when absent or of the wrong type (the latter recorded as an error).
  const rapidjson::Value* Object(const char* key);
  const rapidjson::Value* Array(const char* key);

  std::string PathOf(absl::string_view key) const;
  const absl::Status& status() const { return status_; }

 private:
  const rapidjson::Value* Member(const char* key) const;
  void TypeError(const char* key, absl::string_view expected, const rapidjson::Value& got);

  const rapidjson::Value& object_;
  std::string path_;
  absl::Status status_;
};

// "string", "number", ... for messages.
absl::string_view JsonTypeName(const rapidjson::Value& value);

}  // namespace weir::cni
