#include "lib/xdp_attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "lib/errno_status.h"
#include "lib/unique_fd.h"

namespace weir {

const char* XdpModeName(XdpMode mode) {
  switch (mode) {
    case XdpMode::kDisabled: return "disabled";
    case XdpMode::kNative: return "native";
    case XdpMode::kGeneric: return "generic";
  }
  return "disabled";
}

absl::StatusOr<XdpMode> ParseXdpMode(const std::string& text) {
  for (XdpMode mode : {XdpMode::kDisabled, XdpMode::kNative, XdpMode::kGeneric}) {
    if (text == XdpModeName(mode)) return mode;
  }
  return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": expected native, generic or disabled"));
}

absl::Status AttachXdp(int ifindex, XdpMode mode, int prog_fd, const std::string& link_pin_path) {
  if (mode == XdpMode::kDisabled)
    return absl::InvalidArgumentError("XDP mode disabled has nothing to attach");
  if (access(link_pin_path.c_str(), F_OK) == 0) {
    return absl::AlreadyExistsError(absl::StrCat("an XDP link is already pinned at ", link_pin_path));
  }
  DECLARE_LIBBPF_OPTS(
      bpf_link_create_opts, opts,
      .flags = static_cast<__u32>(mode == XdpMode::kNative ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE));
  UniqueFd link(bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts));
  if (!link.valid()) {
    const int err = errno;
    if (mode == XdpMode::kNative && err == ERANGE) {
      return absl::FailedPreconditionError(absl::StrCat(
          "ifindex ", ifindex, ": its driver takes no native XDP program at this MTU (",
          ErrnoStatus(err, "").message(), "): lower the MTU, or set nodePortAcceleration to generic"));
    }
    if (mode == XdpMode::kNative && (err == EOPNOTSUPP || err == EINVAL)) {
      return absl::FailedPreconditionError(
          absl::StrCat("ifindex ", ifindex, " has no native XDP in its driver (",
                       ErrnoStatus(err, "").message(), "): set nodePortAcceleration to generic or disabled"));
    }
    return ErrnoStatus(err, absl::StrCat("attach XDP (", XdpModeName(mode), ") to ifindex ", ifindex));
  }
  if (bpf_obj_pin(link.get(), link_pin_path.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("pin XDP link at ", link_pin_path));
  }
  return absl::OkStatus();
}

absl::Status DetachXdp(const std::string& link_pin_path) {
  UniqueFd link(bpf_obj_get(link_pin_path.c_str()));
  if (!link.valid()) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("open XDP link ", link_pin_path));
  }
  if (bpf_link_detach(link.get()) != 0)
    return ErrnoStatus(errno, absl::StrCat("detach XDP link ", link_pin_path));
  if (unlink(link_pin_path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("unpin XDP link ", link_pin_path));
  }
  return absl::OkStatus();
}

}  // namespace weir
