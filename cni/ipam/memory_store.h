// In-process AllocationStore for tests and for tools that simulate allocation.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "cni/ipam/store.h"

namespace weir::ipam {

class MemoryStore : public AllocationStore {
 public:
  absl::Status Lock(absl::string_view network) override;
  void Unlock(absl::string_view network) override;
  absl::StatusOr<bool> Reserve(absl::string_view network, const IpAddress& address,
                               const AllocationOwner& owner) override;
  absl::Status Release(absl::string_view network, const IpAddress& address) override;
  absl::StatusOr<std::vector<IpAddress>> ReleaseByOwner(absl::string_view network,
                                                        const AllocationOwner& owner) override;
  absl::StatusOr<std::vector<Allocation>> List(absl::string_view network) override;
  absl::StatusOr<std::optional<IpAddress>> LastReserved(absl::string_view network, IpFamily family) override;
  absl::Status SetLastReserved(absl::string_view network, const IpAddress& address) override;

 private:
  struct Network {
    std::map<IpAddress, AllocationOwner> allocations;
    std::map<IpFamily, IpAddress> last_reserved;
  };

  // One lock for all networks is enough for tests; it only has to make Lock() exclusive.
  std::mutex lock_;
  std::map<std::string, Network, std::less<>> networks_;
};

}  // namespace weir::ipam
