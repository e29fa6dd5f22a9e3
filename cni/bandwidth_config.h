// The runtime's `bandwidth` capability: runtimeConfig.bandwidth, what kubelet (through the
// container runtime) sends for the kubernetes.io/ingress-bandwidth and egress-bandwidth pod
// annotations. Rates in bits per second, bursts in bits, as the reference `bandwidth` plugin reads
// them.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/netlink.h"

namespace weir::cni {

// A pod's limits; 0: that direction is not limited.
struct BandwidthLimit {
  uint64_t ingress_bps = 0;  // into the pod
  uint64_t ingress_burst_bits = 0;
  uint64_t egress_bps = 0;  // out of the pod
  uint64_t egress_burst_bits = 0;

  bool limited() const { return ingress_bps != 0 || egress_bps != 0; }
};

// "ingress 20000000 bit/s, egress unlimited".
std::string Describe(const BandwidthLimit& limit);

// The range kubelet accepts for the pod annotations (1k to 1P).
inline constexpr int64_t kMinBandwidthBps = 1000;
inline constexpr int64_t kMaxBandwidthBps = 1000LL * 1000 * 1000 * 1000 * 1000;

// The limits in `runtime_config_raw` (the compact JSON of "runtimeConfig"; empty: none).
//   a field that is not an integer                         -> CniCode::kDecodeFailure
//   a negative value, a rate without its burst or a burst without its rate, a burst of 4 GB or
//   more (the bandwidth plugin's rules), a rate outside [1k, 1P] bit/s -> kInvalidNetworkConfig
absl::StatusOr<BandwidthLimit> ParseBandwidth(absl::string_view runtime_config_raw);

// The token bucket filter that holds one direction to `rate_bps` (docs/bandwidth.md). The bucket is
// the burst asked for, but at most 10 ms at the rate (kubelet's runtimes send 4 Gbit, which would
// let the first 512 MB through unshaped) and at least two full frames of `mtu`; the queue holds
// 25 ms at the rate on top of it, as the reference plugin's.
TbfSpec TbfFor(uint64_t rate_bps, uint64_t burst_bits, uint32_t mtu);

}  // namespace weir::cni
