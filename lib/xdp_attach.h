// Attaching the uplink's XDP program: a BPF link (kernel 5.9+), pinned so that it outlives the
// process that made it, in the driver (native) or in the generic hook every device has.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace weir {

// The nodePortAcceleration setting.
enum class XdpMode { kDisabled, kNative, kGeneric };

// "disabled", "native", "generic".
const char* XdpModeName(XdpMode mode);
absl::StatusOr<XdpMode> ParseXdpMode(const std::string& text);

// Attaches `prog_fd` at XDP of `ifindex` in `mode` (not kDisabled) and pins the link at
// `link_pin_path` (AlreadyExists if something is pinned there). A device whose driver has no native
// XDP is an error that says to use generic.
absl::Status AttachXdp(int ifindex, XdpMode mode, int prog_fd, const std::string& link_pin_path);

// Detaches the XDP link pinned at `link_pin_path` from its device at once and removes the pin
// (nothing pinned there: OK). Unpinning alone would leave the program attached until the kernel
// releases the link in a worker, and until then the device takes no XDP program of the other mode.
absl::Status DetachXdp(const std::string& link_pin_path);

}  // namespace weir
