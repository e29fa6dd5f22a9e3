// Attaching the datapath's tc programs to devices: at tc, a tcx link (kernel 6.6+) pinned so that
// it outlives the process that made it, or, on older kernels, a clsact qdisc with a cls_bpf filter;
// on a netkit pair, a netkit link, pinned the same way.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace weir {

enum class TcDirection { kIngress, kEgress };

// Attaches `prog_fd` to `ifindex`. With tcx the link is pinned at `link_pin_path` (AlreadyExists if
// something is pinned there). Falls back to clsact when the kernel has no tcx.
absl::Status AttachTc(int ifindex, TcDirection direction, int prog_fd, const std::string& link_pin_path);

// Attaches `prog_fd` as the program of a netkit pair's peer (the end in the pod), which runs for
// every packet the pod sends, in that device's xmit. `primary_ifindex` is the host end: the kernel
// takes both ends' programs through it. The link is pinned at `link_pin_path` (AlreadyExists if
// something is pinned there); DetachTc and UpdatePinnedLinks handle it like a tcx link.
absl::Status AttachNetkitPeer(int primary_ifindex, int prog_fd, const std::string& link_pin_path);

// Removes the attachment pinned at `link_pin_path`; succeeds when there is none.
absl::Status DetachTc(const std::string& link_pin_path);

// Points every link pinned in `links_dir` at `prog_fd`, atomically per link: used when a new agent
// replaces the programs so that existing pods switch without a gap.
absl::Status UpdatePinnedLinks(const std::string& links_dir, int prog_fd);

}  // namespace weir
