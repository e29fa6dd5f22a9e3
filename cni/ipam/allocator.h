// Host-local style address allocation for weir's built-in IPAM: one address per configured range
// (at most one IPv4 and one IPv6 range), handed out round-robin so a just-released address is not
// immediately reused by the next pod (stale conntrack/ARP entries would otherwise hit the new pod).
//
// Unlike host-local, no gateway address is reserved: weir's pod gateway is link-local
// (169.254.1.1 / fe80::1), so the first usable address (.1) goes to a pod as well.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cni/ipam/store.h"
#include "lib/ip.h"

namespace weir::ipam {

struct AllocatedAddress {
  IpAddress address;
  IpPrefix range;  // the pod CIDR the address came from

  // The address with the range's prefix length, e.g. 10.244.1.7/24 (the CNI result form).
  IpPrefix WithRangeLength() const { return IpPrefix(address, range.length()); }
  bool operator==(const AllocatedAddress&) const = default;
};

class Allocator {
 public:
  // `ranges` are the pod CIDRs (host bits are cleared). `store` must outlive the allocator.
  Allocator(std::string network, std::vector<IpPrefix> ranges, AllocationStore& store);

  // One address per range, in range order. If `owner` already holds an address in a range (an ADD
  // retried after a failure or timeout), that address is returned again instead of a new one.
  // All-or-nothing: if a later range fails, addresses reserved earlier in this call are released.
  // A full range fails with ResourceExhausted / CniCode::kIpamExhausted naming the range.
  absl::StatusOr<std::vector<AllocatedAddress>> Allocate(const AllocationOwner& owner);

  // Releases everything `owner` holds in this network (in any range, also ranges no longer
  // configured). Releasing nothing is success: DEL is idempotent.
  absl::StatusOr<std::vector<IpAddress>> Release(const AllocationOwner& owner);

  // The addresses `owner` holds in the configured ranges, in range order (for CHECK).
  absl::StatusOr<std::vector<AllocatedAddress>> Lookup(const AllocationOwner& owner);

  // Releases every allocation of this network whose owner is not in `valid_owners` (the GC
  // command's cni.dev/valid-attachments). Returns what was released.
  absl::StatusOr<std::vector<Allocation>> Gc(const std::vector<AllocationOwner>& valid_owners);

  // Number of addresses a range can hand out: all but the network address, and for IPv4 also
  // all but the broadcast address. Saturates for huge IPv6 ranges (see IpPrefix::Size).
  static uint64_t UsableCount(const IpPrefix& range);

  const std::string& network() const { return network_; }
  const std::vector<IpPrefix>& ranges() const { return ranges_; }

 private:
  // Picks and reserves a free address in `range`; requires the store lock.
  absl::StatusOr<IpAddress> AllocateInRange(const IpPrefix& range, const AllocationOwner& owner,
                                            const std::vector<Allocation>& existing);

  std::string network_;
  std::vector<IpPrefix> ranges_;
  AllocationStore& store_;
};

}  // namespace weir::ipam
