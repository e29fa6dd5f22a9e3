#include "cni/ipam/memory_store.h"

namespace weir::ipam {

absl::Status MemoryStore::Lock(absl::string_view) {
  lock_.lock();
  return absl::OkStatus();
}

void MemoryStore::Unlock(absl::string_view) { lock_.unlock(); }

absl::StatusOr<bool> MemoryStore::Reserve(absl::string_view network, const IpAddress& address,
                                          const AllocationOwner& owner) {
  auto [it, inserted] = networks_[std::string(network)].allocations.emplace(address, owner);
  return inserted;
}

absl::Status MemoryStore::Release(absl::string_view network, const IpAddress& address) {
  if (auto it = networks_.find(network); it != networks_.end()) it->second.allocations.erase(address);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<IpAddress>> MemoryStore::ReleaseByOwner(absl::string_view network,
                                                                   const AllocationOwner& owner) {
  std::vector<IpAddress> released;
  auto it = networks_.find(network);
  if (it == networks_.end()) return released;
  auto& allocations = it->second.allocations;
  for (auto entry = allocations.begin(); entry != allocations.end();) {
    if (entry->second == owner) {
      released.push_back(entry->first);
      entry = allocations.erase(entry);
    } else {
      ++entry;
    }
  }
  return released;
}

absl::StatusOr<std::vector<Allocation>> MemoryStore::List(absl::string_view network) {
  std::vector<Allocation> list;
  if (auto it = networks_.find(network); it != networks_.end()) {
    for (const auto& [address, owner] : it->second.allocations) list.push_back({address, owner});
  }
  return list;
}

absl::StatusOr<std::optional<IpAddress>> MemoryStore::LastReserved(absl::string_view network,
                                                                   IpFamily family) {
  auto it = networks_.find(network);
  if (it == networks_.end()) return std::nullopt;
  auto last = it->second.last_reserved.find(family);
  if (last == it->second.last_reserved.end()) return std::nullopt;
  return last->second;
}

absl::Status MemoryStore::SetLastReserved(absl::string_view network, const IpAddress& address) {
  networks_[std::string(network)].last_reserved[address.family()] = address;
  return absl::OkStatus();
}

}  // namespace weir::ipam
