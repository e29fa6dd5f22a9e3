// Collects what pods left behind when their CNI DEL never reached weir: a runtime's clean-up DEL
// stops at the first chained plugin that fails (portmap refusing the config's version, say), and
// weir, first in the chain, is DELeted last. Once the pod's network namespace is gone, the kernel
// removes its veth pair (and with it the host routes), but the endpoint map entry, the built-in IPAM's
// allocation (in the plugin's dataDir) and the pinned tcx link stay until something removes them.
//
// Everything of an attachment is keyed by its host interface name (cni/attachment_names.h). An
// attachment whose host interface is missing in two passes at least `grace` apart is collected: an
// ADD in progress holds its allocation for a moment before its veth exists, and must never lose it.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "lib/netlink.h"
#include "lib/pin_layout.h"
#include "proxy/agent/metrics.h"

namespace weir::agent {

struct OrphanCollectorSettings {
  std::string bpf_root;
  // The built-in IPAM's dataDir of the conflist this agent installs; empty: allocations are left
  // alone (an agent that does not install the CNI configuration does not own the plugin's state).
  std::string cni_data_dir;
  // Between passes, and the least time an attachment must have been seen missing.
  std::chrono::seconds interval{60};
};

struct CollectedOrphans {
  int endpoints = 0;    // endpoint map entries
  int allocations = 0;  // IPAM allocations (one per address)
  int link_pins = 0;    // pinned tcx links
  int total() const { return endpoints + allocations + link_pins; }
};

class OrphanCollector {
 public:
  using Clock = std::chrono::steady_clock;

  // Counts what it collects in `metrics` (weir_orphans_collected_total{kind}).
  OrphanCollector(Netlink& host, OrphanCollectorSettings settings, Metrics& metrics);

  // One pass: notes what is missing now, collects what was missing since at least `grace` ago.
  absl::StatusOr<CollectedOrphans> Pass(Clock::time_point now);

  // A pass when `interval` has gone by since the last one (for the agent's main loop); logs what it
  // collected and what failed, and counts it. Returns what it collected (nothing when no pass was due).
  CollectedOrphans Tick(Clock::time_point now);

 private:
  // True when `host_ifname` was missing at least `grace` ago and still is (recorded otherwise).
  bool DueForCollection(const std::string& host_ifname, Clock::time_point now,
                        std::map<std::string, Clock::time_point>& still_missing);

  Netlink& host_;
  OrphanCollectorSettings settings_;
  PinLayout layout_;
  // Host interface names found missing, with the time of the pass that first found them.
  std::map<std::string, Clock::time_point> missing_since_;
  std::optional<Clock::time_point> last_pass_;
  Counter& endpoints_collected_;
  Counter& allocations_collected_;
  Counter& link_pins_collected_;
};

}  // namespace weir::agent
