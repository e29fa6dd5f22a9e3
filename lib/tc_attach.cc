#include "lib/tc_attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/errno_status.h"
#include "lib/unique_fd.h"

namespace weir {
namespace {

// Debian 12's UAPI headers predate tcx; the kernel's enum bpf_attach_type values are stable ABI.
constexpr int kTcxIngress = 46;
constexpr int kTcxEgress = 47;
constexpr int kNetkitPeer = 55;  // BPF_NETKIT_PEER, Linux 6.7

absl::Status PinLink(int link_fd, const std::string& link_pin_path, const char* what) {
  UniqueFd link(link_fd);
  if (bpf_obj_pin(link.get(), link_pin_path.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("pin ", what, " link at ", link_pin_path));
  }
  return absl::OkStatus();
}

absl::Status AttachClsact(int ifindex, TcDirection direction, int prog_fd) {
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
                      .attach_point = direction == TcDirection::kIngress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST) return ErrnoStatus(-err, "create clsact qdisc");
  DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE, .handle = 1,
                      .priority = 1);
  err = bpf_tc_attach(&hook, &opts);
  if (err) return ErrnoStatus(-err, "attach cls_bpf filter");
  return absl::OkStatus();
}

}  // namespace

absl::Status AttachTc(int ifindex, TcDirection direction, int prog_fd, const std::string& link_pin_path) {
  if (access(link_pin_path.c_str(), F_OK) == 0) {
    return absl::AlreadyExistsError(absl::StrCat("a tc link is already pinned at ", link_pin_path));
  }
  int link_fd = bpf_link_create(
      prog_fd, ifindex,
      static_cast<bpf_attach_type>(direction == TcDirection::kIngress ? kTcxIngress : kTcxEgress), nullptr);
  if (link_fd < 0) {
    int err = errno;
    if (err == EINVAL || err == EOPNOTSUPP) return AttachClsact(ifindex, direction, prog_fd);
    return ErrnoStatus(err, absl::StrCat("create tcx link on ifindex ", ifindex));
  }
  return PinLink(link_fd, link_pin_path, "tcx");
}

absl::Status AttachNetkitPeer(int primary_ifindex, int prog_fd, const std::string& link_pin_path) {
  if (access(link_pin_path.c_str(), F_OK) == 0) {
    return absl::AlreadyExistsError(absl::StrCat("a link is already pinned at ", link_pin_path));
  }
  int link_fd = bpf_link_create(prog_fd, primary_ifindex, static_cast<bpf_attach_type>(kNetkitPeer), nullptr);
  if (link_fd < 0) {
    return ErrnoStatus(errno, absl::StrCat("create netkit peer link on ifindex ", primary_ifindex));
  }
  return PinLink(link_fd, link_pin_path, "netkit");
}

absl::Status DetachTc(const std::string& link_pin_path) {
  if (unlink(link_pin_path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("unpin tc link ", link_pin_path));
  }
  return absl::OkStatus();
}

absl::Status OpenPinnedLinks(const std::string& links_dir, int prog_fd, std::vector<LinkSwitch>& links) {
  DIR* dir = opendir(links_dir.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("open ", links_dir));
  }
  absl::Status result;
  while (dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    std::string path = absl::StrCat(links_dir, "/", name);
    UniqueFd link(bpf_obj_get(path.c_str()));
    if (!link.valid()) {
      result.Update(ErrnoStatus(errno, absl::StrCat("open link ", path)));
      continue;
    }
    links.push_back({std::move(link), prog_fd, std::move(path)});
  }
  closedir(dir);
  return result;
}

absl::Status SwitchLinks(const std::vector<LinkSwitch>& links) {
  std::vector<std::pair<size_t, int>> failed;
  for (size_t i = 0; i < links.size(); ++i) {
    if (bpf_link_update(links[i].link.get(), links[i].prog_fd, nullptr) != 0) failed.emplace_back(i, errno);
  }
  absl::Status result;
  for (const auto& [i, error] : failed) {
    result.Update(ErrnoStatus(error, absl::StrCat("update link ", links[i].path)));
  }
  return result;
}

absl::Status UpdatePinnedLinks(const std::string& links_dir, int prog_fd) {
  std::vector<LinkSwitch> links;
  absl::Status result = OpenPinnedLinks(links_dir, prog_fd, links);
  result.Update(SwitchLinks(links));
  return result;
}

}  // namespace weir
