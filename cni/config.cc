#include "cni/config.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cni/error.h"
#include "cni/json_util.h"
#include "lib/agent_socket.h"

namespace weir::cni {
namespace {

absl::Status Invalid(absl::string_view message) { return CniError(CniCode::kInvalidNetworkConfig, message); }

absl::Status Incompatible(absl::string_view message) {
  return CniError(CniCode::kIncompatibleVersion, message,
                  absl::StrCat("weir supports CNI versions ", SupportedVersionsText()));
}

std::optional<LogLevel> ParseLogLevel(absl::string_view text) {
  for (LogLevel level : {LogLevel::kError, LogLevel::kWarn, LogLevel::kInfo, LogLevel::kDebug}) {
    if (text == LogLevelName(level)) return level;
  }
  return std::nullopt;
}

// cniVersion decides everything else (result format, which fields exist), so settle it first.
absl::Status ResolveVersion(JsonFields& fields, NetConfig& config) {
  fields.StringArray("cniVersions", config.cni_versions);
  const bool has_version = fields.String("cniVersion", config.cni_version);
  if (!fields.status().ok()) return fields.status();
  if (!has_version) {
    for (const std::string& candidate : config.cni_versions) {
      if (IsSupportedVersion(candidate) &&
          (config.cni_version.empty() || VersionAtLeast(candidate, config.cni_version))) {
        config.cni_version = candidate;
      }
    }
    if (config.cni_version.empty()) {
      return Incompatible(config.cni_versions.empty()
                              ? "network config has no cniVersion (which means 0.1.0, unsupported)"
                              : absl::StrCat("none of cniVersions [",
                                             absl::StrJoin(config.cni_versions, ", "), "] is supported"));
    }
    return absl::OkStatus();
  }
  if (!IsSupportedVersion(config.cni_version)) {
    return Incompatible(
        absl::StrCat("network config cniVersion \"", config.cni_version, "\" is not supported"));
  }
  return absl::OkStatus();
}

absl::Status ParsePodCidrs(JsonFields& fields, NetConfig& config) {
  std::vector<std::string> texts;
  fields.StringArray("podCIDRs", texts);
  if (!fields.status().ok()) return fields.status();
  bool seen_v4 = false, seen_v6 = false;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string where = absl::StrCat("podCIDRs[", i, "] \"", texts[i], "\"");
    absl::StatusOr<IpPrefix> prefix = IpPrefix::Parse(texts[i]);
    if (!prefix.ok()) return Invalid(absl::StrCat(where, " is not a CIDR"));
    if (prefix->Network() != *prefix) {
      return Invalid(
          absl::StrCat(where, " has host bits set; did you mean ", prefix->Network().ToString(), "?"));
    }
    bool& seen = prefix->address().is_v4() ? seen_v4 : seen_v6;
    if (seen) {
      return Invalid(absl::StrCat(where, ": at most one IPv", prefix->address().is_v4() ? "4" : "6",
                                  " range is allowed"));
    }
    seen = true;
    // The allocator never hands out the network address, nor the IPv4 broadcast address.
    const int max_length = prefix->address().is_v4() ? 30 : 127;
    if (prefix->length() > max_length) {
      return Invalid(
          absl::StrCat(where, " is too small to hold any pod address (longest allowed: /", max_length, ")"));
    }
    config.pod_cidrs.push_back(*prefix);
  }
  return absl::OkStatus();
}

absl::Status ParseMtu(JsonFields& fields, NetConfig& config) {
  int64_t mtu = kDefaultMtu;
  fields.Int("mtu", mtu);
  if (!fields.status().ok()) return fields.status();
  if (mtu < kMinMtu || mtu > kMaxMtu) {
    return Invalid(absl::StrCat("mtu ", mtu, " is out of range [", kMinMtu, ", ", kMaxMtu, "]"));
  }
  config.mtu = static_cast<int>(mtu);
  return absl::OkStatus();
}

absl::Status ParseDeviceMode(JsonFields& fields, NetConfig& config) {
  std::string text;
  if (!fields.String("deviceMode", text)) return fields.status();
  for (DeviceMode mode : {DeviceMode::kVeth, DeviceMode::kNetkit}) {
    if (text == DeviceModeName(mode)) {
      config.device_mode = mode;
      return absl::OkStatus();
    }
  }
  return Invalid(absl::StrCat("deviceMode \"", text, "\" is not one of veth, netkit"));
}

absl::Status ParseIpam(JsonFields& fields, NetConfig& config) {
  const rapidjson::Value* ipam = fields.Object("ipam");
  if (!fields.status().ok()) return fields.status();
  if (ipam == nullptr) return absl::OkStatus();
  config.ipam_raw = JsonToString(*ipam);
  JsonFields ipam_fields(*ipam, "ipam");
  const bool has_type = ipam_fields.String("type", config.ipam_type);
  if (!ipam_fields.status().ok()) return ipam_fields.status();
  if (has_type && config.ipam_type.empty()) return Invalid("ipam.type must not be empty");
  // A plugin type becomes an executable name looked up in CNI_PATH: keep it a plain file name.
  if (config.ipam_type.find('/') != std::string::npos || config.ipam_type == "." ||
      config.ipam_type == "..") {
    return Invalid(absl::StrCat("ipam.type \"", config.ipam_type, "\" is not a plugin name"));
  }
  return absl::OkStatus();
}

absl::Status ParseValidAttachments(JsonFields& fields, NetConfig& config) {
  constexpr const char* kKey = "cni.dev/valid-attachments";
  const rapidjson::Value* array = fields.Array(kKey);
  if (!fields.status().ok()) return fields.status();
  if (array == nullptr) return absl::OkStatus();
  std::vector<ValidAttachment> attachments;
  rapidjson::SizeType index = 0;
  for (const rapidjson::Value& element : array->GetArray()) {
    const std::string path = absl::StrCat(kKey, "[", index++, "]");
    if (!element.IsObject()) {
      return CniError(CniCode::kDecodeFailure, absl::StrCat(path, " must be an object"));
    }
    JsonFields attachment_fields(element, path);
    ValidAttachment attachment;
    attachment_fields.String("containerID", attachment.container_id);
    attachment_fields.String("ifname", attachment.ifname);
    if (!attachment_fields.status().ok()) return attachment_fields.status();
    if (attachment.container_id.empty()) return Invalid(absl::StrCat(path, " has no containerID"));
    attachments.push_back(std::move(attachment));
  }
  config.valid_attachments = std::move(attachments);
  return absl::OkStatus();
}

}  // namespace

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
  }
  return "info";
}

absl::string_view DeviceModeName(DeviceMode mode) {
  switch (mode) {
    case DeviceMode::kVeth: return "veth";
    case DeviceMode::kNetkit: return "netkit";
  }
  return "veth";
}

bool IsValidNetworkName(absl::string_view name) {
  if (name.empty() || !absl::ascii_isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<NetConfig> ParseNetConfig(absl::string_view json) {
  rapidjson::Document document;
  if (absl::Status status = ParseJsonObject(json, "network config", document); !status.ok()) return status;
  NetConfig config;
  config.raw = std::string(json);
  JsonFields fields(document, "");

  if (absl::Status status = ResolveVersion(fields, config); !status.ok()) return status;

  const bool has_name = fields.String("name", config.name);
  const bool has_type = fields.String("type", config.type);
  fields.String("bpfRoot", config.bpf_root);
  fields.String("dataDir", config.data_dir);
  fields.String("logFile", config.log_file);
  fields.String("policySocket", config.policy_socket);
  fields.Int("policyTimeoutMs", config.policy_timeout_ms);
  std::string log_level = std::string(LogLevelName(config.log_level));
  fields.String("logLevel", log_level);
  if (!fields.status().ok()) return fields.status();

  if (!has_name || config.name.empty()) return Invalid("network config has no \"name\"");
  if (!IsValidNetworkName(config.name)) {
    return Invalid(absl::StrCat("network name \"", config.name,
                                "\" is invalid: it must start with a letter or digit and contain only "
                                "letters, digits, '_', '.' and '-'"));
  }
  if (!has_type || config.type.empty()) return Invalid("network config has no \"type\"");
  if (config.bpf_root.empty() || config.bpf_root[0] != '/') {
    return Invalid(absl::StrCat("bpfRoot \"", config.bpf_root, "\" must be an absolute path"));
  }
  if (config.data_dir.empty() || config.data_dir[0] != '/') {
    return Invalid(absl::StrCat("dataDir \"", config.data_dir, "\" must be an absolute path"));
  }
  if (!config.policy_socket.empty() && config.policy_socket[0] != '/' &&
      (config.policy_socket[0] != '@' || config.policy_socket.size() < 2)) {
    return Invalid(absl::StrCat("policySocket \"", config.policy_socket,
                                "\" must be an absolute path or @name (an abstract socket)"));
  }
  if (config.policy_timeout_ms < 1 || config.policy_timeout_ms > 60000) {
    return Invalid(absl::StrCat("policyTimeoutMs ", config.policy_timeout_ms, " is not in 1-60000"));
  }
  std::optional<LogLevel> level = ParseLogLevel(log_level);
  if (!level.has_value()) {
    return Invalid(absl::StrCat("logLevel \"", log_level, "\" is not one of error, warn, info, debug"));
  }
  config.log_level = *level;

  if (absl::Status status = ParseMtu(fields, config); !status.ok()) return status;
  fields.Bool("policy", config.policy);
  if (!fields.status().ok()) return fields.status();
  // A pod that starts denied needs the agent's answer: the agent's own socket unless one is named.
  if (config.policy && config.policy_socket.empty()) config.policy_socket = kDefaultAgentSocket;
  if (absl::Status status = ParseDeviceMode(fields, config); !status.ok()) return status;
  if (absl::Status status = ParsePodCidrs(fields, config); !status.ok()) return status;
  if (absl::Status status = ParseIpam(fields, config); !status.ok()) return status;
  if (config.pod_cidrs.empty() && !config.delegates_ipam()) {
    return Invalid(
        "network config needs either \"podCIDRs\" (built-in IPAM) or \"ipam.type\" (delegated IPAM)");
  }
  if (!config.pod_cidrs.empty() && config.delegates_ipam()) {
    return Invalid(absl::StrCat("network config sets both \"podCIDRs\" and \"ipam.type\" (\"",
                                config.ipam_type, "\"); choose built-in or delegated IPAM"));
  }
  for (const IpPrefix& cidr : config.pod_cidrs) {
    if (!cidr.address().is_v4() && config.mtu < kMinMtuV6) {
      return Invalid(absl::StrCat("mtu ", config.mtu, " is below the IPv6 minimum of ", kMinMtuV6,
                                  " but podCIDRs contains ", cidr.ToString()));
    }
  }

  if (const rapidjson::Value* dns = fields.Object("dns")) {
    absl::StatusOr<Dns> parsed = DnsFromJson(*dns, "dns");
    if (!parsed.ok()) return parsed.status();
    config.dns = *std::move(parsed);
  }
  if (const rapidjson::Value* prev_result = fields.Object("prevResult")) {
    config.prev_result_raw = JsonToString(*prev_result);
    absl::StatusOr<Result> parsed = ResultFromJson(*prev_result, "prevResult");
    if (!parsed.ok()) return parsed.status();
    config.prev_result = *std::move(parsed);
  }
  if (const rapidjson::Value* runtime_config = fields.Object("runtimeConfig")) {
    config.runtime_config_raw = JsonToString(*runtime_config);
  }
  if (const rapidjson::Value* args = fields.Object("args")) config.args_raw = JsonToString(*args);
  if (!fields.status().ok()) return fields.status();

  if (absl::Status status = ParseValidAttachments(fields, config); !status.ok()) return status;
  return config;
}

}  // namespace weir::cni
