#include "proxy/agent/netfilter_conntrack.h"

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "lib/errno_status.h"
#include "spdlog/spdlog.h"

namespace weir::agent {
namespace {

absl::Status WriteIfDifferent(const std::string& proc_sys, const std::string& key, uint32_t value,
                              std::vector<SysctlWrite>& changed) {
  if (value == 0) return absl::OkStatus();
  const std::string path = absl::StrCat(proc_sys, "/net/netfilter/", key);
  std::ifstream in(path);
  if (!in) return ErrnoStatus(errno, absl::StrCat("read ", path));
  std::string before;
  std::getline(in, before);
  before = std::string(absl::StripAsciiWhitespace(before));
  const std::string after = absl::StrCat(value);
  if (before == after) return absl::OkStatus();
  std::ofstream out(path);
  out << after;
  out.close();
  if (!out) return ErrnoStatus(errno, absl::StrCat("set net.netfilter.", key, "=", after));
  changed.push_back({absl::StrCat("net.netfilter.", key), before, after});
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<SysctlWrite>> SetConntrackTimeouts(const ConntrackTimeouts& timeouts,
                                                              const std::string& proc_sys) {
  std::vector<SysctlWrite> changed;
  std::error_code ec;
  if (!std::filesystem::exists(absl::StrCat(proc_sys, "/net/netfilter/nf_conntrack_tcp_timeout_close_wait"),
                               ec)) {
    return changed;
  }
  if (absl::Status s = WriteIfDifferent(proc_sys, "nf_conntrack_tcp_timeout_close_wait",
                                        timeouts.tcp_close_wait_seconds, changed);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = WriteIfDifferent(proc_sys, "nf_conntrack_tcp_timeout_established",
                                        timeouts.tcp_established_seconds, changed);
      !s.ok()) {
    return s;
  }
  return changed;
}

void ManageConntrackTimeouts(const ConntrackTimeouts& timeouts) {
  auto changed = SetConntrackTimeouts(timeouts);
  if (!changed.ok()) {
    spdlog::error("netfilter conntrack timeouts: {}", changed.status().ToString());
    return;
  }
  for (const SysctlWrite& write : *changed) {
    spdlog::info(
        "netfilter conntrack: set {}={} in the node's network namespace (was {}), as kube-proxy does",
        write.key, write.after, write.before);
  }
}

}  // namespace weir::agent
