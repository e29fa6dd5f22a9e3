#include "cni/version.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cni/error.h"
#include "cni/json_util.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace weir::cni {
namespace {

std::optional<std::tuple<uint32_t, uint32_t, uint32_t>> ParseSemver(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, '.');
  if (parts.size() != 3) return std::nullopt;
  uint32_t numbers[3];
  for (int i = 0; i < 3; ++i) {
    if (parts[i].empty() || !std::all_of(parts[i].begin(), parts[i].end(), absl::ascii_isdigit) ||
        !absl::SimpleAtoi(parts[i], &numbers[i])) {
      return std::nullopt;
    }
  }
  return std::make_tuple(numbers[0], numbers[1], numbers[2]);
}

}  // namespace

bool IsSupportedVersion(absl::string_view version) {
  return std::find(kSupportedVersions.begin(), kSupportedVersions.end(), version) != kSupportedVersions.end();
}

std::string SupportedVersionsText() {
  std::string text;
  for (absl::string_view version : kSupportedVersions) {
    if (!text.empty()) text += ", ";
    text.append(version.data(), version.size());
  }
  return text;
}

bool VersionAtLeast(absl::string_view a, absl::string_view b) {
  auto parsed_a = ParseSemver(a);
  auto parsed_b = ParseSemver(b);
  return parsed_a.has_value() && parsed_b.has_value() && *parsed_a >= *parsed_b;
}

absl::Status RequireVersionFor(absl::string_view command, absl::string_view config_version,
                               absl::string_view since) {
  if (VersionAtLeast(config_version, since)) return absl::OkStatus();
  return CniError(CniCode::kIncompatibleVersion,
                  absl::StrCat("config version ", config_version, " does not allow ", command,
                               " (defined since CNI ", since, ")"));
}

std::string VersionInfoJson(absl::string_view requested_version) {
  const absl::string_view version =
      IsSupportedVersion(requested_version) ? requested_version : kLatestVersion;
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("cniVersion");
  writer.String(version.data(), version.size());
  writer.Key("supportedVersions");
  writer.StartArray();
  for (absl::string_view supported : kSupportedVersions) writer.String(supported.data(), supported.size());
  writer.EndArray();
  writer.EndObject();
  return buffer.GetString();
}

absl::StatusOr<std::string> ParseVersionRequest(absl::string_view stdin_text) {
  if (std::all_of(stdin_text.begin(), stdin_text.end(), absl::ascii_isspace)) return std::string();
  rapidjson::Document document;
  if (absl::Status status = ParseJsonObject(stdin_text, "VERSION request", document); !status.ok()) {
    return status;
  }
  JsonFields fields(document, "VERSION request");
  std::string version;
  fields.String("cniVersion", version);
  if (!fields.status().ok()) return fields.status();
  return version;
}

}  // namespace weir::cni
