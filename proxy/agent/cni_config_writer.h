// The CNI configuration the agent installs once its datapath is ready, so that kubelet starts
// wiring pods only when weir can serve them (and stops when weir is uninstalled).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lib/ip.h"

namespace weir::agent {

struct CniConfigSettings {
  std::string conf_dir;  // e.g. /etc/cni/net.d
  std::string file_name = "10-weir.conflist";
  std::string network_name = "weir";
  std::vector<IpPrefix> pod_cidrs;
  std::string bpf_root;
  std::string data_dir = "/var/lib/cni/weir";
  int mtu = 1500;
  // NetworkPolicy on: ADD starts the pod denied ("policy": true) and asks the agent for its policy
  // on this socket, waiting at most policy_timeout_ms.
  bool policy = false;
  std::string policy_socket;
  uint32_t policy_timeout_ms = 3000;
  std::string device_mode = "veth";  // the plugin's "deviceMode": veth | netkit
};

// The conflist text (cniVersion 1.0.0, cniVersions up to 1.1.0; weir then portmap for hostPort).
std::string RenderCniConflist(const CniConfigSettings& settings);

// Writes the conflist atomically (temp file + rename); unchanged content is not rewritten.
absl::Status InstallCniConfig(const CniConfigSettings& settings);
absl::Status RemoveCniConfig(const CniConfigSettings& settings);

}  // namespace weir::agent
