#include "cni/error.h"

#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cni/config.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace weir::cni {
namespace {

std::optional<CniCode> PayloadCode(const absl::Status& status) {
  auto payload = status.GetPayload(kCniCodePayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  uint32_t value = 0;
  if (!absl::SimpleAtoi(std::string(*payload), &value) || value == 0) return std::nullopt;
  return static_cast<CniCode>(value);
}

}  // namespace

absl::string_view CniCodeName(CniCode code) {
  switch (code) {
    case CniCode::kIncompatibleVersion: return "incompatible CNI version";
    case CniCode::kUnsupportedField: return "unsupported field in network configuration";
    case CniCode::kUnknownContainer: return "container unknown or does not exist";
    case CniCode::kInvalidEnv: return "invalid necessary environment variables";
    case CniCode::kIoFailure: return "I/O failure";
    case CniCode::kDecodeFailure: return "failed to decode content";
    case CniCode::kInvalidNetworkConfig: return "invalid network config";
    case CniCode::kTryAgainLater: return "try again later";
    case CniCode::kPluginNotAvailable: return "plugin not available";
    case CniCode::kPluginNotAvailableLimitedConnectivity:
      return "plugin not available, existing containers may have limited connectivity";
    case CniCode::kInternal: return "internal error";
    case CniCode::kIpamExhausted: return "IP addresses exhausted";
    case CniCode::kInterfaceExists: return "interface already exists";
    case CniCode::kDatapathNotReady: return "datapath not ready";
  }
  return "unknown error";
}

absl::StatusCode AbslCodeFor(CniCode code) {
  switch (code) {
    case CniCode::kIncompatibleVersion: return absl::StatusCode::kFailedPrecondition;
    case CniCode::kUnsupportedField:
    case CniCode::kInvalidEnv:
    case CniCode::kDecodeFailure:
    case CniCode::kInvalidNetworkConfig: return absl::StatusCode::kInvalidArgument;
    case CniCode::kUnknownContainer: return absl::StatusCode::kNotFound;
    case CniCode::kTryAgainLater:
    case CniCode::kPluginNotAvailable:
    case CniCode::kPluginNotAvailableLimitedConnectivity:
    case CniCode::kDatapathNotReady: return absl::StatusCode::kUnavailable;
    case CniCode::kIpamExhausted: return absl::StatusCode::kResourceExhausted;
    case CniCode::kInterfaceExists: return absl::StatusCode::kAlreadyExists;
    case CniCode::kIoFailure:
    case CniCode::kInternal: return absl::StatusCode::kInternal;
  }
  return absl::StatusCode::kInternal;
}

absl::Status CniError(CniCode code, absl::string_view msg, absl::string_view details) {
  absl::Status status(AbslCodeFor(code), msg);
  status.SetPayload(kCniCodePayloadUrl, absl::Cord(absl::StrCat(static_cast<uint32_t>(code))));
  if (!details.empty()) status.SetPayload(kCniDetailsPayloadUrl, absl::Cord(details));
  return status;
}

CniCode CniCodeOf(const absl::Status& status) {
  if (std::optional<CniCode> code = PayloadCode(status)) return *code;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kDeadlineExceeded: return CniCode::kTryAgainLater;
    default: return CniCode::kInternal;
  }
}

std::string CniDetailsOf(const absl::Status& status) {
  auto details = status.GetPayload(kCniDetailsPayloadUrl);
  return details.has_value() ? std::string(*details) : std::string();
}

absl::Status WrapCniError(const absl::Status& cause, CniCode fallback, absl::string_view context) {
  if (cause.ok()) return cause;
  const CniCode code = PayloadCode(cause).value_or(fallback);
  return CniError(code, absl::StrCat(context, ": ", cause.message()), CniDetailsOf(cause));
}

std::string CniErrorJson(const absl::Status& status, absl::string_view cni_version) {
  const absl::string_view version = cni_version.empty() ? kLatestVersion : cni_version;
  const std::string details = CniDetailsOf(status);
  // An OK status reaching here is a caller bug; still emit a well-formed error object.
  const absl::string_view msg = status.ok() ? absl::string_view("unknown error") : status.message();

  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("cniVersion");
  writer.String(version.data(), version.size());
  writer.Key("code");
  writer.Uint(static_cast<uint32_t>(CniCodeOf(status)));
  writer.Key("msg");
  writer.String(msg.data(), msg.size());
  if (!details.empty()) {
    writer.Key("details");
    writer.String(details.data(), details.size());
  }
  writer.EndObject();
  return buffer.GetString();
}

}  // namespace weir::cni
