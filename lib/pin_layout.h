// Where weir's pinned objects live under the configurable bpffs directory. The agent creates them;
// the CNI plugin and weirctl open them. Several simulated nodes on one machine use different roots.
#pragma once

#include <unistd.h>

#include <string>

#include "bpf/abi/conntrack.h"
#include "bpf/abi/endpoint.h"
#include "bpf/abi/masquerade.h"
#include "bpf/abi/metrics.h"
#include "bpf/abi/service.h"
#include "lib/agent_state_maps.h"

namespace weir {

struct PinLayout {
  std::string root;  // e.g. /sys/fs/bpf/weir

  // Maps are pinned by libbpf under their own names (LIBBPF_PIN_BY_NAME), directly in `root`.
  std::string map(const char* map_name) const { return root + "/" + map_name; }
  std::string endpoints_map() const { return map(WEIR_ENDPOINTS_MAP_NAME); }
  std::string metrics_map() const { return map(WEIR_METRICS_MAP_NAME); }
  std::string services_map() const { return map(WEIR_SERVICES_MAP_NAME); }
  std::string slots_map() const { return map(WEIR_BACKEND_SLOTS_MAP_NAME); }
  std::string backends_map() const { return map(WEIR_BACKENDS_MAP_NAME); }
  std::string maglev_map() const { return map(WEIR_MAGLEV_MAP_NAME); }
  std::string affinity_map() const { return map(WEIR_AFFINITY_MAP_NAME); }
  std::string sock_revnat_map() const { return map(WEIR_SOCK_REVNAT_MAP_NAME); }
  std::string nonmasq_map() const { return map(WEIR_NONMASQ_MAP_NAME); }
  std::string uplinks_map() const { return map(WEIR_UPLINKS_MAP_NAME); }
  // Not used by the datapath: what the agent publishes for weirctl.
  std::string service_names_map() const { return map(WEIR_SERVICE_NAMES_MAP_NAME); }
  std::string agent_info_map() const { return map(WEIR_AGENT_INFO_MAP_NAME); }
  // Which layout version each pinned map has (lib/map_layouts.h).
  std::string layouts_map() const { return map(WEIR_LAYOUTS_MAP_NAME); }
  std::string programs_dir() const { return root + "/progs"; }
  std::string program(const std::string& name) const { return programs_dir() + "/" + name; }
  std::string from_pod_program() const { return program("from_pod"); }
  // One link per attached interface, so that attachments outlive the process that made them.
  std::string links_dir() const { return root + "/links"; }
  std::string pod_links_dir() const { return links_dir() + "/pods"; }
  std::string link(const std::string& host_ifname) const { return pod_links_dir() + "/" + host_ifname; }
  std::string uplink_links_dir() const { return links_dir() + "/uplinks"; }
  std::string uplink_egress_links_dir() const { return links_dir() + "/uplinks-egress"; }
  // XDP links, by mode ("native", "generic"): the directory says how a link was attached.
  std::string uplink_xdp_links_dir(const std::string& mode) const {
    return links_dir() + "/uplinks-xdp-" + mode;
  }
  std::string cgroup_links_dir() const { return links_dir() + "/cgroup"; }
};

// True once an agent has pinned what the CNI plugin needs under `layout`.
inline bool DatapathPinned(const PinLayout& layout) {
  return access(layout.from_pod_program().c_str(), F_OK) == 0 &&
         access(layout.endpoints_map().c_str(), F_OK) == 0;
}

}  // namespace weir
