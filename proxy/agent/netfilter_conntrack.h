// Netfilter's TCP conntrack timeouts in the node's network namespace, set as kube-proxy sets them.
//
// weir tracks its own flows in BPF and needs none of this. But a node that ran kube-proxy had these
// two values, and what else on the node uses netfilter conntrack (the node's own connections,
// portmap's hostPort DNAT, a host firewall, pod traffic the stack forwards) behaves by them: with
// the kernel's 60 s CLOSE_WAIT a half-closed connection's NAT state vanishes under a peer that is
// still sending. So the agent writes kube-proxy's defaults (conntrack.tcpCloseWaitTimeout 1h,
// tcpEstablishedTimeout 24h) unless told otherwise; 0 leaves a value alone. Both are per network
// namespace (the kernel has kept them per namespace since 4.x), so nothing outside the node's
// namespace changes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace weir::agent {

struct ConntrackTimeouts {
  uint32_t tcp_close_wait_seconds = 3600;
  uint32_t tcp_established_seconds = 86400;
};

struct SysctlWrite {
  std::string key;
  std::string before;
  std::string after;
};

// Writes the non-zero timeouts that differ from what is there; returns what it changed. A kernel
// without netfilter conntrack (no net.netfilter.* keys) is not an error: nothing to set.
absl::StatusOr<std::vector<SysctlWrite>> SetConntrackTimeouts(const ConntrackTimeouts& timeouts,
                                                              const std::string& proc_sys = "/proc/sys");

// SetConntrackTimeouts with its outcome logged; a failure is logged, not fatal.
void ManageConntrackTimeouts(const ConntrackTimeouts& timeouts);

}  // namespace weir::agent
