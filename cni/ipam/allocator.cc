#include "cni/ipam/allocator.h"

#include <algorithm>
#include <optional>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "cni/error.h"

namespace weir::ipam {
namespace {

using cni::CniCode;
using cni::CniError;

// Offset of `address` from the range's network address when it is one the range hands out
// (1..UsableCount), else nullopt.
std::optional<uint64_t> UsableOffset(const IpPrefix& range, const IpAddress& address) {
  if (!range.Contains(address)) return std::nullopt;
  const uint64_t offset = address.Minus(range.address());
  if (offset == 0 || offset > Allocator::UsableCount(range)) return std::nullopt;
  return offset;
}

const Allocation* FindHeldInRange(const std::vector<Allocation>& allocations, const IpPrefix& range,
                                  const AllocationOwner& owner) {
  for (const Allocation& allocation : allocations) {
    if (allocation.owner == owner && UsableOffset(range, allocation.address).has_value()) return &allocation;
  }
  return nullptr;
}

// An entry without interface name (old host-local format) stands for every interface of the container.
bool IsValidOwner(const AllocationOwner& owner, const std::vector<AllocationOwner>& valid_owners) {
  return std::any_of(valid_owners.begin(), valid_owners.end(), [&](const AllocationOwner& valid) {
    return valid.container_id == owner.container_id && (owner.ifname.empty() || valid.ifname == owner.ifname);
  });
}

}  // namespace

Allocator::Allocator(std::string network, std::vector<IpPrefix> ranges, AllocationStore& store)
    : network_(std::move(network)), store_(store) {
  for (const IpPrefix& range : ranges) ranges_.push_back(range.Network());
}

uint64_t Allocator::UsableCount(const IpPrefix& range) {
  const uint64_t size = range.Size();
  const uint64_t reserved = range.address().is_v4() ? 2 : 1;
  return size > reserved ? size - reserved : 0;
}

absl::StatusOr<IpAddress> Allocator::AllocateInRange(const IpPrefix& range, const AllocationOwner& owner,
                                                     const std::vector<Allocation>& existing) {
  const uint64_t usable = UsableCount(range);
  std::unordered_set<uint64_t> taken;
  for (const Allocation& allocation : existing) {
    if (std::optional<uint64_t> offset = UsableOffset(range, allocation.address)) taken.insert(*offset);
  }
  auto exhausted = [&] {
    return CniError(CniCode::kIpamExhausted,
                    absl::StrCat("no free IP address in range ", range.ToString(), " of network ", network_,
                                 ": all ", usable, " usable addresses are allocated"));
  };
  if (taken.size() >= usable) return exhausted();

  // Continue after the last handed-out address; offsets run 1..usable and wrap back to 1.
  uint64_t start = 1;
  absl::StatusOr<std::optional<IpAddress>> last = store_.LastReserved(network_, range.family());
  if (!last.ok()) return last.status();
  if (last->has_value()) {
    if (std::optional<uint64_t> offset = UsableOffset(range, **last))
      start = *offset < usable ? *offset + 1 : 1;
  }
  // Terminates after at most taken.size() + 1 probes unless the store disagrees with List().
  for (uint64_t step = 0; step < usable; ++step) {
    const uint64_t offset = (start - 1 + step) % usable + 1;
    if (taken.count(offset) != 0) continue;
    const IpAddress candidate = range.address().Plus(offset);
    absl::StatusOr<bool> reserved = store_.Reserve(network_, candidate, owner);
    if (!reserved.ok()) return reserved.status();
    if (*reserved) return candidate;
    taken.insert(offset);
    if (taken.size() >= usable) break;
  }
  return exhausted();
}

absl::StatusOr<std::vector<AllocatedAddress>> Allocator::Allocate(const AllocationOwner& owner) {
  absl::StatusOr<StoreLock> lock = StoreLock::Acquire(store_, network_);
  if (!lock.ok()) return lock.status();
  absl::StatusOr<std::vector<Allocation>> existing = store_.List(network_);
  if (!existing.ok()) return existing.status();

  std::vector<AllocatedAddress> result;
  std::vector<IpAddress> reserved_now;  // to undo on failure and to advance the cursors on success
  for (const IpPrefix& range : ranges_) {
    if (const Allocation* held = FindHeldInRange(*existing, range, owner)) {
      result.push_back({held->address, range});
      continue;
    }
    absl::StatusOr<IpAddress> address = AllocateInRange(range, owner, *existing);
    if (!address.ok()) {
      for (const IpAddress& undo : reserved_now) {
        // Best effort: the original error is what the caller needs; a leftover is collected by GC.
        store_.Release(network_, undo).IgnoreError();
      }
      return address.status();
    }
    reserved_now.push_back(*address);
    result.push_back({*address, range});
  }
  for (const IpAddress& address : reserved_now) {
    // The cursor is only a fairness hint; failing to move it must not fail a good allocation.
    store_.SetLastReserved(network_, address).IgnoreError();
  }
  return result;
}

absl::StatusOr<std::vector<IpAddress>> Allocator::Release(const AllocationOwner& owner) {
  absl::StatusOr<StoreLock> lock = StoreLock::Acquire(store_, network_);
  if (!lock.ok()) return lock.status();
  return store_.ReleaseByOwner(network_, owner);
}

absl::StatusOr<std::vector<AllocatedAddress>> Allocator::Lookup(const AllocationOwner& owner) {
  absl::StatusOr<StoreLock> lock = StoreLock::Acquire(store_, network_);
  if (!lock.ok()) return lock.status();
  absl::StatusOr<std::vector<Allocation>> existing = store_.List(network_);
  if (!existing.ok()) return existing.status();
  std::vector<AllocatedAddress> held;
  for (const IpPrefix& range : ranges_) {
    if (const Allocation* allocation = FindHeldInRange(*existing, range, owner)) {
      held.push_back({allocation->address, range});
    }
  }
  return held;
}

absl::StatusOr<std::vector<Allocation>> Allocator::Gc(const std::vector<AllocationOwner>& valid_owners) {
  absl::StatusOr<StoreLock> lock = StoreLock::Acquire(store_, network_);
  if (!lock.ok()) return lock.status();
  absl::StatusOr<std::vector<Allocation>> existing = store_.List(network_);
  if (!existing.ok()) return existing.status();
  std::vector<Allocation> released;
  for (const Allocation& allocation : *existing) {
    if (IsValidOwner(allocation.owner, valid_owners)) continue;
    if (absl::Status status = store_.Release(network_, allocation.address); !status.ok()) return status;
    released.push_back(allocation);
  }
  return released;
}

}  // namespace weir::ipam
