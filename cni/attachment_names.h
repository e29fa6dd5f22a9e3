// How one CNI attachment (container id + interface name) is named on the node, shared by the plugin,
// which makes the names, and weir-agent, which collects what a pod left when its DEL never came.
#pragma once

#include <cstdint>
#include <string>

namespace weir::cni {

// Identifies an attachment's entries in the datapath maps (FNV-1a of "<container id>/<ifname>").
uint64_t PodId(const std::string& container_id, const std::string& ifname);

// "weir" + the low 11 hex digits of the PodId: stable across ADD/CHECK/DEL/GC and within IFNAMSIZ.
std::string HostInterfaceName(const std::string& container_id, const std::string& ifname);
// The same name from an endpoint's pod_id.
std::string HostInterfaceNameOfPodId(uint64_t pod_id);

}  // namespace weir::cni
