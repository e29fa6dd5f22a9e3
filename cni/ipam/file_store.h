// AllocationStore persisted on disk, in host-local's layout so operators can inspect it the same way:
//
//   <dataDir>/<network>/lock                  flock()ed for the whole allocation (cross-process mutex)
//   <dataDir>/<network>/<ip>                  one file per held address: "<containerID>\r\n<ifname>"
//   <dataDir>/<network>/last_reserved_ip.<4|6> the round-robin cursor per family
//
// Reservation files are created with link(2) from a fully written temp file, so they appear
// atomically and never overwrite another holder's file; the cursor is replaced with rename(2).
#pragma once

#include <map>
#include <string>

#include "cni/ipam/store.h"
#include "lib/unique_fd.h"

namespace weir::ipam {

class FileStore : public AllocationStore {
 public:
  explicit FileStore(std::string data_dir);
  ~FileStore() override = default;

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

  const std::string& data_dir() const { return data_dir_; }

 private:
  // <dataDir>/<network>, after checking that the name cannot escape dataDir.
  absl::StatusOr<std::string> NetworkDir(absl::string_view network) const;
  absl::StatusOr<std::string> EnsureNetworkDir(absl::string_view network) const;

  std::string data_dir_;
  // Open lock files, one per currently locked network; closing the fd drops the flock.
  std::map<std::string, UniqueFd, std::less<>> held_locks_;
};

}  // namespace weir::ipam
