// Puts a pod on weir's datapath: a veth or netkit pair whose pod end carries the pod's addresses
// and routes (gateway: link-local, answered by the datapath), and whose host end carries the pod's
// host routes and the from-pod program (veth: at tc ingress of the host end; netkit: as the peer's
// program, held by the host end); the endpoint goes into the endpoints map.
// A pod's bandwidth limits are token bucket filters: out of the pod on the pod end, into it on the
// host end.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/abi/constants.h"
#include "cni/attachment_names.h"
#include "cni/bandwidth_config.h"
#include "cni/config.h"
#include "lib/ip.h"
#include "lib/netlink.h"
#include "lib/netns.h"
#include "lib/pin_layout.h"

namespace weir::cni {

// The gateway every pod routes through; never assigned to any interface.
inline constexpr char kGatewayV4[] = "169.254.1.1";
inline constexpr char kGatewayV6[] = "fe80::1";
inline constexpr MacAddress kGatewayMac = WEIR_GATEWAY_MAC;

struct PodWiring {
  std::string container_id;
  std::string ifname;  // inside the pod
  std::string netns_path;
  std::vector<IpAddress> addresses;
  uint32_t mtu = 1500;
  // NetworkPolicy on: the endpoint entries start pending (bpf/abi/endpoint.h).
  bool policy_pending = false;
  DeviceMode device_mode = DeviceMode::kVeth;
  BandwidthLimit bandwidth;  // nothing limited by default
};

struct WiredPod {
  std::string host_ifname;
  MacAddress host_mac{};
  MacAddress pod_mac{};
  int host_ifindex = 0;
};

class Wiring {
 public:
  Wiring(Netlink& host, PinLayout layout) : host_(host), layout_(std::move(layout)) {}

  // Everything or nothing: a failure part-way removes what was made.
  absl::StatusOr<WiredPod> Add(const PodWiring& pod);
  // Idempotent: what is already gone (netns, link, pin, map entry) is not an error.
  absl::Status Remove(const std::string& container_id, const std::string& ifname);
  // Unpins links whose interface no longer exists (left by pods whose DEL never came).
  absl::Status RemoveStaleLinks();
  // Verifies that what Add made is still there and as made.
  absl::Status Check(const PodWiring& pod);

 private:
  absl::StatusOr<WiredPod> AddSteps(const PodWiring& pod, const NetNs& pod_ns, Netlink& pod_netlink);
  Netlink& host_;
  PinLayout layout_;
};

}  // namespace weir::cni
