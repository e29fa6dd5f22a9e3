// CNI error codes and their transport inside absl::Status.
//
// Everything in weir returns absl::Status; the CNI-facing code a failure should be reported with
// travels as a Status payload, so lower layers can pick the precise code (e.g. "IPAM exhausted")
// without the command handlers having to re-classify messages.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace weir::cni {

// Codes 1-99 are reserved by the CNI spec (1.0.0/1.1.0 "Well-known error codes");
// plugins may use 100 and above for their own errors.
enum class CniCode : uint32_t {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnv = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidNetworkConfig = 7,
  kTryAgainLater = 11,
  kPluginNotAvailable = 50,
  kPluginNotAvailableLimitedConnectivity = 51,
  // weir's own codes.
  kInternal = 100,
  kIpamExhausted = 101,
  kInterfaceExists = 102,
  kDatapathNotReady = 103,
};

// Type URL of the payload carrying the CniCode (decimal text) and of the optional details text.
inline constexpr absl::string_view kCniCodePayloadUrl = "weir.dev/cni-code";
inline constexpr absl::string_view kCniDetailsPayloadUrl = "weir.dev/cni-details";

// Short human-readable name of a code, e.g. "invalid network config".
absl::string_view CniCodeName(CniCode code);

// The absl code used for the Status built by CniError(code, ...), so generic absl-aware callers
// (retry loops, logging) still see a sensible canonical code.
absl::StatusCode AbslCodeFor(CniCode code);

// A failed Status carrying `code` as payload. `details` (optional) becomes the CNI "details" field.
absl::Status CniError(CniCode code, absl::string_view msg, absl::string_view details = {});

// The CNI code carried by `status`. Without a payload it is derived from the absl code:
// transient codes (Unavailable, Aborted, DeadlineExceeded) map to kTryAgainLater, everything else
// to kInternal. An OK status maps to kInternal too (there is no "success" error code).
CniCode CniCodeOf(const absl::Status& status);

// The details payload, or empty.
std::string CniDetailsOf(const absl::Status& status);

// Adds context to an error while keeping its CNI code; if `cause` has no CNI payload yet,
// `fallback` is attached. Result message: "<context>: <cause message>".
absl::Status WrapCniError(const absl::Status& cause, CniCode fallback, absl::string_view context);

// The CNI error object written to stdout on failure:
// {"cniVersion": ..., "code": N, "msg": ..., "details": ...} ("details" omitted when empty).
// An empty `cni_version` is reported as the newest supported version.
std::string CniErrorJson(const absl::Status& status, absl::string_view cni_version);

}  // namespace weir::cni
