#include "proxy/agent/node_forwarding.h"

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "lib/errno_status.h"
#include "spdlog/spdlog.h"

namespace weir::agent {
namespace {

std::string PathOf(const std::string& proc_sys, const std::string& key) {
  return absl::StrCat(proc_sys, "/", absl::StrReplaceAll(key, {{".", "/"}}));
}

absl::StatusOr<std::string> ReadValue(const std::string& path) {
  std::ifstream in(path);
  if (!in) return ErrnoStatus(errno, absl::StrCat("read ", path));
  std::string value;
  std::getline(in, value);
  return std::string(absl::StripAsciiWhitespace(value));
}

// Writes "1" unless the value is already 1; records the old value when it changes.
absl::Status TurnOn(const std::string& proc_sys, const std::string& key, ForwardingResult& result) {
  const std::string path = PathOf(proc_sys, key);
  auto before = ReadValue(path);
  if (!before.ok()) return before.status();
  if (*before == "1") return absl::OkStatus();
  std::ofstream out(path);
  out << "1";
  out.close();
  if (!out) return ErrnoStatus(errno, absl::StrCat("set ", key, "=1 (", path, ")"));
  result.changed.push_back({key, *before});
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ForwardingResult> EnableForwarding(const std::string& proc_sys) {
  ForwardingResult result;
  if (absl::Status s = TurnOn(proc_sys, "net.ipv4.ip_forward", result); !s.ok()) return s;
  const std::string ipv6_conf = absl::StrCat(proc_sys, "/net/ipv6/conf");
  std::error_code ec;
  if (!std::filesystem::exists(ipv6_conf, ec)) {  // booted with ipv6.disable=1
    result.ipv6_available = false;
    return result;
  }
  if (absl::Status s = TurnOn(proc_sys, "net.ipv6.conf.all.forwarding", result); !s.ok()) return s;
  for (const auto& entry : std::filesystem::directory_iterator(ipv6_conf, ec)) {
    const std::string name = entry.path().filename();
    if (name == "all" || name == "default" || name == "lo") continue;
    auto accept_ra = ReadValue((entry.path() / "accept_ra").string());
    if (accept_ra.ok() && *accept_ra == "1") result.ignoring_router_advertisements.push_back(name);
  }
  return result;
}

void LogForwarding(const ForwardingResult& result) {
  if (result.changed.empty()) {
    spdlog::info("forwarding: already on in the node's network namespace{}",
                 result.ipv6_available ? "" : " (IPv4; this kernel has no IPv6)");
  }
  for (const SysctlChange& change : result.changed) {
    spdlog::info(
        "forwarding: set {}=1 in the node's network namespace (was {}); manageForwarding: false "
        "leaves it alone",
        change.key, change.before);
  }
  if (!result.ignoring_router_advertisements.empty()) {
    spdlog::warn(
        "forwarding: with IPv6 forwarding on, {} ignore router advertisements (accept_ra=1); set "
        "accept_ra=2 on them if the node learns its IPv6 routes that way",
        absl::StrJoin(result.ignoring_router_advertisements, ", "));
  }
}

void ManageForwarding() {
  auto result = EnableForwarding();
  if (!result.ok()) {
    spdlog::error("forwarding: {}; pods will not reach other nodes' pods until it is on",
                  result.status().ToString());
    return;
  }
  LogForwarding(*result);
}

}  // namespace weir::agent
