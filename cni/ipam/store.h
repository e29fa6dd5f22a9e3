// Where IP allocations live. The allocator is pure logic over this interface; the file store makes
// allocations survive across CNI invocations (each one is a separate short-lived process), the
// memory store serves tests.
//
// Every method except Lock/Unlock must be called with the network's lock held (see StoreLock):
// the allocator's read-decide-write sequence is only race-free under that lock.
#pragma once

#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/ip.h"

namespace weir::ipam {

// Who holds an address: the CNI attachment key (the network is implied by the store call).
struct AllocationOwner {
  std::string container_id;
  std::string ifname;

  auto operator<=>(const AllocationOwner&) const = default;
};

struct Allocation {
  IpAddress address;
  AllocationOwner owner;

  bool operator==(const Allocation&) const = default;
};

class AllocationStore {
 public:
  virtual ~AllocationStore() = default;

  // Exclusive, cross-process for persistent stores. Not reentrant.
  virtual absl::Status Lock(absl::string_view network) = 0;
  virtual void Unlock(absl::string_view network) = 0;

  // Records `address` as held by `owner`. Returns false (and changes nothing) if it is already held.
  virtual absl::StatusOr<bool> Reserve(absl::string_view network, const IpAddress& address,
                                       const AllocationOwner& owner) = 0;
  // Releasing an address that is not held is not an error (DEL must be idempotent).
  virtual absl::Status Release(absl::string_view network, const IpAddress& address) = 0;
  // Releases every address held by `owner`; returns them.
  virtual absl::StatusOr<std::vector<IpAddress>> ReleaseByOwner(absl::string_view network,
                                                                const AllocationOwner& owner) = 0;
  // All allocations of the network, sorted by address.
  virtual absl::StatusOr<std::vector<Allocation>> List(absl::string_view network) = 0;

  // The address most recently handed out for a family, so allocation continues round-robin
  // after it instead of immediately reusing a just-released address.
  virtual absl::StatusOr<std::optional<IpAddress>> LastReserved(absl::string_view network,
                                                                IpFamily family) = 0;
  virtual absl::Status SetLastReserved(absl::string_view network, const IpAddress& address) = 0;
};

// Holds a store's network lock for its lifetime.
class StoreLock {
 public:
  static absl::StatusOr<StoreLock> Acquire(AllocationStore& store, std::string network);

  StoreLock(StoreLock&& other) noexcept : store_(other.store_), network_(std::move(other.network_)) {
    other.store_ = nullptr;
  }
  StoreLock(const StoreLock&) = delete;
  StoreLock& operator=(const StoreLock&) = delete;
  StoreLock& operator=(StoreLock&&) = delete;
  ~StoreLock() {
    if (store_ != nullptr) store_->Unlock(network_);
  }

 private:
  StoreLock(AllocationStore& store, std::string network) : store_(&store), network_(std::move(network)) {}

  AllocationStore* store_;
  std::string network_;
};

inline absl::StatusOr<StoreLock> StoreLock::Acquire(AllocationStore& store, std::string network) {
  if (absl::Status status = store.Lock(network); !status.ok()) return status;
  return StoreLock(store, std::move(network));
}

}  // namespace weir::ipam
