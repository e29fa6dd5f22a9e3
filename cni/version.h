// CNI spec versions weir speaks, and version negotiation helpers.
#pragma once

#include <array>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace weir::cni {

// 0.1.0/0.2.0 used a different result shape (ip4/ip6 objects) that no current runtime sends.
inline constexpr std::array<absl::string_view, 5> kSupportedVersions = {"0.3.0", "0.3.1", "0.4.0", "1.0.0",
                                                                        "1.1.0"};
inline constexpr absl::string_view kLatestVersion = "1.1.0";
// The first spec versions that define CHECK and STATUS/GC. A config of an older version asking for
// them is refused as libcni and the reference plugins' skel do (kIncompatibleVersion).
inline constexpr absl::string_view kCheckSince = "0.4.0";
inline constexpr absl::string_view kStatusAndGcSince = "1.1.0";

bool IsSupportedVersion(absl::string_view version);

// "0.3.0, 0.3.1, ..." for messages.
std::string SupportedVersionsText();

// Semantic-version comparison "a >= b" over "major.minor.patch". Malformed input compares false.
bool VersionAtLeast(absl::string_view a, absl::string_view b);

// OK when `config_version` defines `command` (introduced in `since`); otherwise a
// kIncompatibleVersion error naming both versions.
absl::Status RequireVersionFor(absl::string_view command, absl::string_view config_version,
                               absl::string_view since);

// Output of the VERSION command: {"cniVersion": ..., "supportedVersions": [...]}. The reported
// cniVersion is the requested one if weir supports it, otherwise kLatestVersion.
std::string VersionInfoJson(absl::string_view requested_version);

// The cniVersion of the VERSION command's stdin ({"cniVersion": X}); empty input yields "".
// Not JSON -> kDecodeFailure.
absl::StatusOr<std::string> ParseVersionRequest(absl::string_view stdin_text);

}  // namespace weir::cni
