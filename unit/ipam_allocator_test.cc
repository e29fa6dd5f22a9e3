#include "cni/ipam/allocator.h"

#include <gtest/gtest.h>

#include <set>

#include "cni/error.h"
#include "cni/ipam/memory_store.h"

namespace weir::ipam {
namespace {

using cni::CniCode;
using cni::CniCodeOf;

constexpr const char* kNetwork = "weir-net";

IpPrefix Prefix(const std::string& text) { return *IpPrefix::Parse(text); }
IpAddress Address(const std::string& text) { return *IpAddress::Parse(text); }
AllocationOwner Owner(int n, std::string ifname = "eth0") {
  return {"container" + std::to_string(n), ifname};
}

// Allocates for `owner` and returns the single address (single-range allocators only).
IpAddress AllocateOne(Allocator& allocator, const AllocationOwner& owner) {
  absl::StatusOr<std::vector<AllocatedAddress>> allocated = allocator.Allocate(owner);
  EXPECT_TRUE(allocated.ok()) << allocated.status();
  if (!allocated.ok() || allocated->size() != 1) return IpAddress();
  return allocated->front().address;
}

TEST(AllocatorTest, UsableCount) {
  EXPECT_EQ(Allocator::UsableCount(Prefix("10.0.0.0/24")), 254u);
  EXPECT_EQ(Allocator::UsableCount(Prefix("10.0.0.0/30")), 2u);
  EXPECT_EQ(Allocator::UsableCount(Prefix("10.0.0.0/31")), 0u);
  EXPECT_EQ(Allocator::UsableCount(Prefix("10.0.0.0/32")), 0u);
  EXPECT_EQ(Allocator::UsableCount(Prefix("fd00::/112")), 65535u);
  EXPECT_EQ(Allocator::UsableCount(Prefix("fd00::/127")), 1u);
  EXPECT_GT(Allocator::UsableCount(Prefix("fd00::/64")), uint64_t{1} << 62);
}

TEST(AllocatorTest, SequentialStartingAtDotOne) {
  MemoryStore store;
  Allocator allocator(kNetwork, {Prefix("10.244.1.0/24")}, store);
  EXPECT_EQ(AllocateOne(allocator, Owner(1)), Address("10.244.1.1"));
  EXPECT_EQ(AllocateOne(allocator, Owner(2)), Address("10.244.1.2"));
  EXPECT_EQ(AllocateOne(allocator, Owner(3)), Address("10.244.1.3"));

  absl::StatusOr<std::vector<AllocatedAddress>> allocated = allocator.Allocate(Owner(4));
  ASSERT_TRUE(allocated.ok());
  EXPECT_EQ((*allocated)[0].range, Prefix("10.244.1.0/24"));
  EXPECT_EQ((*allocated)[0].WithRangeLength().ToString(), "10.244.1.4/24");
}

TEST(AllocatorTest, RangeIsNormalized) {
  MemoryStore store;
  Allocator allocator(kNetwork, {Prefix("10.244.1.77/24")}, store);
  EXPECT_EQ(allocator.ranges()[0], Prefix("10.244.1.0/24"));
  EXPECT_EQ(AllocateOne(allocator, Owner(1)), Address("10.244.1.1"));
}

TEST(AllocatorTest, RoundRobinDoesNotReuseJustReleased) {
  MemoryStore store;
  Allocator allocator(kNetwork, {Prefix("10.244.1.0/24")}, store);
  EXPECT_EQ(AllocateOne(allocator, Owner(1)), Address("10.244.1.1"));
  EXPECT_EQ(AllocateOne(allocator, Owner(2)), Address("10.244.1.2"));
  ASSERT_TRUE(allocator.Release(Owner(1)).ok());
  EXPECT_EQ(AllocateOne(allocator, Owner(3)), Address("10.244.1.3"));
}

TEST(AllocatorTest, WrapsAroundAndSkipsBroadcast) {
  MemoryStore store;
  Allocator allocator(kNetwork, {Prefix("10.0.0.0/29")}, store);  // usable .1 - .6
  for (int i = 1; i <= 6; ++i) {
    EXPECT_EQ(AllocateOne(allocator, Owner(i)), Address("10.0.0." + std::to_string(i)));
  }
  ASSERT_TRUE(allocator.Release(Owner(2)).ok());
  ASSERT_TRUE(allocator.Release(Owner(5)).ok());
  // Cursor is at .6: next is not .7 (broadcast) nor .0 (network) but wraps to the first free one.
  EXPECT_EQ(AllocateOne(allocator, Owner(7)), Address("10.0.0.2"));
  EXPECT_EQ(AllocateOne(allocator, Owner(8)), Address("10.0.0.5"));
}

TEST(AllocatorTest, CursorOutsideRangeRestartsAtStart) {
  MemoryStore store;
  ASSERT_TRUE(store.SetLastReserved(kNetwork, Address("192.168.0.9")).ok());
  Allocator allocator(kNetwork, {Prefix("10.0.0.0/24")}, store);
  EXPECT_EQ(AllocateOne(allocator, Owner(1)), Address("10.0.0.1"));
}

TEST(AllocatorTest, ExhaustionNamesTheRange) {
  MemoryStore store;
  Allocator allocator(kNetwork, {Prefix("10.0.0.0/30")}, store);  // .1 and .2
  AllocateOne(allocator, Owner(1));
  AllocateOne(allocator, Owner(2));
  absl::StatusOr<std::vector<AllocatedAddress>> third = allocator.Allocate(Owner(3));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(CniCodeOf(third.status()), CniCode::kIpamExhausted);
  EXPECT_NE(third.status().message().find("10.0.0.0/30"), absl::string_view::npos) << third.status();

  // Freeing one makes room again.
  ASSERT_TRUE(allocator.Release(Owner(1)).ok());
  EXPECT_EQ(AllocateOne(allocator, Owner(3)), Address("10.0.0.1"));
}

TEST(AllocatorTest, IdempotentForSameOwner) {
  MemoryStore store;
  Allocator allocator(kNetwork, {Prefix("10.244.1.0/24"), Prefix("fd00::/120")}, store);
  absl::StatusOr<std::vector<AllocatedAddress>> first = allocator.Allocate(Owner(1));
  ASSERT_TRUE(first.ok());
  absl::StatusOr<std::vector<AllocatedAddress>> again = allocator.Allocate(Owner(1));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*first, *again);
  EXPECT_EQ(store.List(kNetwork)->size(), 2u);
  // Same container, other interface: a separate attachment with its own addresses.
  absl::StatusOr<std::vector<AllocatedAddress>> other_if = allocator.Allocate(Owner(1, "net1"));
  ASSERT_TRUE(other_if.ok());
  EXPECT_NE((*other_if)[0].address, (*first)[0].address);
  // The retry did not advance the cursor.
  EXPECT_EQ((*other_if)[0].address, Address("10.244.1.2"));
}

TEST(AllocatorTest, ReleaseOnlyTouchesOwner) {
  MemoryStore store;
  Allocator allocator(kNetwork, {Prefix("10.244.1.0/24"), Prefix("fd00::/120")}, store);
  ASSERT_TRUE(allocator.Allocate(Owner(1)).ok());
  ASSERT_TRUE(allocator.Allocate(Owner(2)).ok());
  absl::StatusOr<std::vector<IpAddress>> released = allocator.Release(Owner(1));
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(*released, (std::vector<IpAddress>{Address("10.244.1.1"), Address("fd00::1")}));
  EXPECT_EQ(store.List(kNetwork)->size(), 2u);
  // Releasing again (repeated DEL) is a no-op success.
  released = allocator.Release(Owner(1));
  ASSERT_TRUE(released.ok());
  EXPECT_TRUE(released->empty());
  EXPECT_TRUE(allocator.Lookup(Owner(1))->empty());
  EXPECT_EQ(allocator.Lookup(Owner(2))->size(), 2u);
}

TEST(AllocatorTest, DualStackGivesOnePerFamilyInRangeOrder) {
  MemoryStore store;
  Allocator allocator(kNetwork, {Prefix("fd00:10:244:1::/112"), Prefix("10.244.1.0/24")}, store);
  absl::StatusOr<std::vector<AllocatedAddress>> allocated = allocator.Allocate(Owner(1));
  ASSERT_TRUE(allocated.ok()) << allocated.status();
  ASSERT_EQ(allocated->size(), 2u);
  EXPECT_EQ((*allocated)[0].address, Address("fd00:10:244:1::1"));
  EXPECT_EQ((*allocated)[0].WithRangeLength().ToString(), "fd00:10:244:1::1/112");
  EXPECT_EQ((*allocated)[1].address, Address("10.244.1.1"));
  // Each family keeps its own cursor.
  allocated = allocator.Allocate(Owner(2));
  ASSERT_TRUE(allocated.ok());
  EXPECT_EQ((*allocated)[0].address, Address("fd00:10:244:1::2"));
  EXPECT_EQ((*allocated)[1].address, Address("10.244.1.2"));
}

TEST(AllocatorTest, V6UsesLastAddressOfRange) {
  MemoryStore store;
  Allocator allocator(kNetwork, {Prefix("fd00::/126")}, store);  // ::1 - ::3, no broadcast in IPv6
  EXPECT_EQ(AllocateOne(allocator, Owner(1)), Address("fd00::1"));
  EXPECT_EQ(AllocateOne(allocator, Owner(2)), Address("fd00::2"));
  EXPECT_EQ(AllocateOne(allocator, Owner(3)), Address("fd00::3"));
  EXPECT_EQ(CniCodeOf(allocator.Allocate(Owner(4)).status()), CniCode::kIpamExhausted);
}

TEST(AllocatorTest, FailedSecondFamilyUndoesFirst) {
  MemoryStore store;
  Allocator allocator(kNetwork, {Prefix("10.244.1.0/24"), Prefix("fd00::/127")}, store);  // one v6 address
  ASSERT_TRUE(allocator.Allocate(Owner(1)).ok());
  absl::StatusOr<std::vector<AllocatedAddress>> second = allocator.Allocate(Owner(2));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(CniCodeOf(second.status()), CniCode::kIpamExhausted);
  EXPECT_NE(second.status().message().find("fd00::/127"), absl::string_view::npos);
  // Only owner 1's two addresses remain; the v4 reserved for owner 2 was rolled back...
  absl::StatusOr<std::vector<Allocation>> list = store.List(kNetwork);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  for (const Allocation& allocation : *list) EXPECT_EQ(allocation.owner, Owner(1));
  // ...and the cursor did not move past it.
  ASSERT_TRUE(allocator.Release(Owner(1)).ok());
  absl::StatusOr<std::vector<AllocatedAddress>> third = allocator.Allocate(Owner(3));
  ASSERT_TRUE(third.ok());
  EXPECT_EQ((*third)[0].address, Address("10.244.1.2"));
}

TEST(AllocatorTest, IdempotentRetryKeepsPartialHoldings) {
  MemoryStore store;
  // Owner 1 already holds a v4 address (say from an earlier ADD with only the v4 range configured).
  ASSERT_TRUE(store.Reserve(kNetwork, Address("10.244.1.50"), Owner(1)).ok());
  Allocator allocator(kNetwork, {Prefix("10.244.1.0/24"), Prefix("fd00::/120")}, store);
  absl::StatusOr<std::vector<AllocatedAddress>> allocated = allocator.Allocate(Owner(1));
  ASSERT_TRUE(allocated.ok());
  EXPECT_EQ((*allocated)[0].address, Address("10.244.1.50"));
  EXPECT_EQ((*allocated)[1].address, Address("fd00::1"));
}

TEST(AllocatorTest, SkipsAddressesTakenOutsideTheAllocator) {
  MemoryStore store;
  ASSERT_TRUE(*store.Reserve(kNetwork, Address("10.0.0.1"), Owner(99)));
  ASSERT_TRUE(*store.Reserve(kNetwork, Address("10.0.0.2"), Owner(98)));
  Allocator allocator(kNetwork, {Prefix("10.0.0.0/24")}, store);
  EXPECT_EQ(AllocateOne(allocator, Owner(1)), Address("10.0.0.3"));
}

TEST(AllocatorTest, GcReleasesAllocationsOfUnknownOwners) {
  MemoryStore store;
  Allocator allocator(kNetwork, {Prefix("10.244.1.0/24"), Prefix("fd00::/120")}, store);
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(allocator.Allocate(Owner(i)).ok());
  ASSERT_TRUE(allocator.Allocate(Owner(1, "net1")).ok());
  // An allocation left behind in a range that is no longer configured.
  ASSERT_TRUE(*store.Reserve(kNetwork, Address("10.9.9.9"), Owner(7)));

  absl::StatusOr<std::vector<Allocation>> released = allocator.Gc({Owner(2), Owner(4), Owner(1, "net1")});
  ASSERT_TRUE(released.ok()) << released.status();
  std::set<AllocationOwner> released_owners;
  for (const Allocation& allocation : *released) released_owners.insert(allocation.owner);
  EXPECT_EQ(released_owners, (std::set<AllocationOwner>{Owner(1), Owner(3), Owner(7)}));
  EXPECT_EQ(released->size(), 5u);  // two each for owners 1 and 3, one for 7

  absl::StatusOr<std::vector<Allocation>> left = store.List(kNetwork);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->size(), 6u);
  for (const Allocation& allocation : *left) EXPECT_EQ(released_owners.count(allocation.owner), 0u);

  // Nothing valid: everything goes.
  released = allocator.Gc({});
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->size(), 6u);
  EXPECT_TRUE(store.List(kNetwork)->empty());
}

TEST(AllocatorTest, NetworksAreIndependent) {
  MemoryStore store;
  Allocator a("net-a", {Prefix("10.0.0.0/24")}, store);
  Allocator b("net-b", {Prefix("10.0.0.0/24")}, store);
  EXPECT_EQ(AllocateOne(a, Owner(1)), Address("10.0.0.1"));
  EXPECT_EQ(AllocateOne(b, Owner(2)), Address("10.0.0.1"));
  ASSERT_TRUE(b.Gc({}).ok());
  EXPECT_EQ(store.List("net-a")->size(), 1u);
}

}  // namespace
}  // namespace weir::ipam
