// Packet forwarding in the agent's network namespace, which is the node's. Traffic between a pod and
// another node's pod crosses the node: in on the pod's host veth, out on the uplink (and back), and
// the kernel drops what it would forward while net.ipv4.ip_forward or net.ipv6.conf.all.forwarding
// is 0. A Kubernetes node usually has them on (kubelet's docs ask for it, bridge plugins set it), but
// nothing guarantees it, and the failure it causes (only cross-node pod traffic, one way) is hard to
// trace back, so the agent sets them unless told not to (manageForwarding: false).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace weir::agent {

struct SysctlChange {
  std::string key;     // e.g. "net.ipv4.ip_forward"
  std::string before;  // the value found, e.g. "0"
};

struct ForwardingResult {
  std::vector<SysctlChange> changed;  // what was not on before and is now
  // Interfaces with accept_ra=1: with IPv6 forwarding on, they ignore router advertisements (a
  // default route learnt from them expires); accept_ra=2 keeps them.
  std::vector<std::string> ignoring_router_advertisements;
  bool ipv6_available = true;
};

// Turns on IPv4 and (where the kernel has IPv6) IPv6 forwarding in the calling thread's network
// namespace; what is already on is left as it is. `proc_sys` is /proc/sys except in tests.
absl::StatusOr<ForwardingResult> EnableForwarding(const std::string& proc_sys = "/proc/sys");

// Logs what EnableForwarding changed (or that nothing needed to).
void LogForwarding(const ForwardingResult& result);

// EnableForwarding, then LogForwarding; a failure is logged, not fatal (the agent's other duties
// do not depend on it).
void ManageForwarding();

}  // namespace weir::agent
