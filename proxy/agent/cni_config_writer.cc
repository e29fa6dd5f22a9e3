#include "proxy/agent/cni_config_writer.h"

#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/errno_status.h"

namespace weir::agent {

std::string RenderCniConflist(const CniConfigSettings& s) {
  std::vector<std::string> cidrs;
  for (const IpPrefix& cidr : s.pod_cidrs) cidrs.push_back(absl::StrCat("\"", cidr.ToString(), "\""));
  const std::string policy = s.policy ? absl::StrCat(R"(,
      "policy": true,
      "policySocket": ")",
                                                     s.policy_socket, R"(",
      "policyTimeoutMs": )",
                                                     s.policy_timeout_ms)
                                      : "";
  // cniVersion is the oldest version weir's pod wiring needs, the one every runtime in use speaks:
  // libcni before 1.2 (containerd 1.6 has 1.1.2) ignores "cniVersions", rejects results newer than
  // it knows ("unsupported CNI result version") and hands the version to every chained plugin
  // (portmap before 1.5 stops at 1.0.0). libcni 1.2+ picks the newest entry of "cniVersions" it
  // knows; only with 1.1.0 do runtimes send STATUS and GC.
  return absl::StrCat(R"({
  "cniVersion": "1.0.0",
  "cniVersions": ["1.0.0", "1.1.0"],
  "name": ")",
                      s.network_name, R"(",
  "plugins": [
    {
      "type": "weir",
      "mtu": )",
                      s.mtu, R"(,
      "deviceMode": ")",
                      s.device_mode, R"(",
      "podCIDRs": [)",
                      absl::StrJoin(cidrs, ", "), R"(],
      "bpfRoot": ")",
                      s.bpf_root, R"(",
      "dataDir": ")",
                      s.data_dir, "\"", policy, R"(,
      "capabilities": {"bandwidth": true}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
)");
}

absl::Status InstallCniConfig(const CniConfigSettings& settings) {
  std::string path = absl::StrCat(settings.conf_dir, "/", settings.file_name);
  std::string text = RenderCniConflist(settings);
  {
    std::ifstream existing(path);
    std::stringstream current;
    current << existing.rdbuf();
    if (existing && current.str() == text) return absl::OkStatus();
  }
  std::error_code ec;
  std::filesystem::create_directories(settings.conf_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", settings.conf_dir, ": ", ec.message()));
  // A dot-file: runtimes ignore it while it is being written.
  std::string staging = absl::StrCat(settings.conf_dir, "/.", settings.file_name, ".tmp");
  {
    std::ofstream out(staging, std::ios::trunc);
    out << text;
    if (!out) return absl::InternalError(absl::StrCat("write ", staging));
  }
  if (rename(staging.c_str(), path.c_str()) != 0) return ErrnoStatus(errno, absl::StrCat("rename to ", path));
  return absl::OkStatus();
}

absl::Status RemoveCniConfig(const CniConfigSettings& settings) {
  std::string path = absl::StrCat(settings.conf_dir, "/", settings.file_name);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, absl::StrCat("remove ", path));
  return absl::OkStatus();
}

}  // namespace weir::agent
