// Attaching the datapath's tc programs to devices: at tc, a tcx link (kernel 6.6+) pinned so that
// it outlives the process that made it, or, on older kernels, a clsact qdisc with a cls_bpf filter;
// on a netkit pair, a netkit link, pinned the same way.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lib/unique_fd.h"

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

// A pinned link, open, and the program it is to run next.
struct LinkSwitch {
  UniqueFd link;
  int prog_fd = -1;
  std::string path;
};
// Opens every link pinned in `links_dir`, for SwitchLinks to point at `prog_fd`.
absl::Status OpenPinnedLinks(const std::string& links_dir, int prog_fd, std::vector<LinkSwitch>& links);
// Updates the links back to back, with nothing but the updates in the loop: while it runs, packets
// of one flow can meet an old program on one link and a new one on another.
absl::Status SwitchLinks(const std::vector<LinkSwitch>& links);

}  // namespace weir
