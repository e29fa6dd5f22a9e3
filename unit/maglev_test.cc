#include "proxy/lb/maglev.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proxy/lb/murmur3.h"

namespace weir::lb {
namespace {

std::vector<MaglevBackend> Backends(int count) {
  std::vector<MaglevBackend> backends;
  for (int i = 0; i < count; ++i) {
    backends.push_back({static_cast<uint32_t>(i + 1), absl::StrCat("10.0.0.", i + 1, ":8080/TCP"), 1});
  }
  return backends;
}

std::map<uint32_t, int> SlotsPerId(const std::vector<uint32_t>& table) {
  std::map<uint32_t, int> counts;
  for (uint32_t id : table) ++counts[id];
  return counts;
}

int ChangedSlots(const std::vector<uint32_t>& before, const std::vector<uint32_t>& after) {
  int changed = 0;
  for (size_t i = 0; i < before.size(); ++i) changed += before[i] != after[i];
  return changed;
}

// Every slot holds one of the backends, and every backend's share deviates from the ideal
// share by at most `tolerance` (relative).
void ExpectFilledAndBalanced(const std::vector<MaglevBackend>& backends, uint32_t table_size,
                             double tolerance) {
  const std::vector<uint32_t> table = BuildMaglevTable(backends, table_size);
  ASSERT_EQ(table.size(), table_size);
  const std::map<uint32_t, int> counts = SlotsPerId(table);
  ASSERT_EQ(counts.size(), backends.size()) << "every backend owns slots, no foreign id appears";
  const double ideal = static_cast<double>(table_size) / backends.size();
  for (const MaglevBackend& backend : backends) {
    ASSERT_TRUE(counts.contains(backend.id));
    const double share = counts.at(backend.id);
    EXPECT_LE(std::abs(share - ideal) / ideal, tolerance)
        << backend.name << " owns " << share << " slots, ideal " << ideal;
  }
}

TEST(Murmur3Test, MatchesReferenceVectors) {
  // From the reference implementation (the Python mmh3 package's hash64, which returns h1, h2).
  EXPECT_EQ(MurmurHash3X64_128("", 0).low, 0u);
  EXPECT_EQ(MurmurHash3X64_128("", 0).high, 0u);
  EXPECT_EQ(MurmurHash3X64_128("hello", 0).low, 0xcbd8a7b341bd9b02ULL);
  EXPECT_EQ(MurmurHash3X64_128("hello", 0).high, 0x5b1e906a48ae1d19ULL);
  EXPECT_EQ(MurmurHash3X64_128("hello", 42).low, 0xc4b8b3c960af6f08ULL);
  EXPECT_EQ(MurmurHash3X64_128("10.0.0.1:8080/TCP", 0x5eed0001).low, 0xa59d221f224d685aULL);
  EXPECT_EQ(MurmurHash3X64_128("10.0.0.1:8080/TCP", 0x5eed0001).high, 0x75bbe3603893cbdcULL);
  const Hash128 fox = MurmurHash3X64_128("The quick brown fox jumps over the lazy dog", 0);
  EXPECT_EQ(fox.low, 0xe34bbc7bbc071b6cULL);
  EXPECT_EQ(fox.high, 0x7a433ca9c49a9347ULL);
  const Hash128 seventeen = MurmurHash3X64_128("abcdefghijklmnopq", 7);
  EXPECT_EQ(seventeen.low, 0x932ae63f9b9a2550ULL);
  EXPECT_EQ(seventeen.high, 0x3a2f597a565e9315ULL);
}

TEST(MaglevTest, PrimeValidation) {
  EXPECT_FALSE(weir_is_prime(0));
  EXPECT_FALSE(weir_is_prime(1));
  EXPECT_TRUE(weir_is_prime(2));
  EXPECT_TRUE(weir_is_prime(3));
  EXPECT_FALSE(weir_is_prime(4));
  EXPECT_FALSE(weir_is_prime(1023));
  EXPECT_FALSE(weir_is_prime(1024));
  EXPECT_FALSE(weir_is_prime(65535));
  EXPECT_TRUE(weir_is_prime(WEIR_MAGLEV_DEFAULT_SIZE));
  EXPECT_TRUE(weir_is_prime(WEIR_MAGLEV_MAX_SIZE));
  EXPECT_TRUE(weir_is_prime(4294967291u));  // largest 32-bit prime: no overflow in the trial division

  EXPECT_TRUE(ValidateMaglevTableSize(WEIR_MAGLEV_DEFAULT_SIZE).ok());
  EXPECT_TRUE(ValidateMaglevTableSize(WEIR_MAGLEV_MAX_SIZE).ok());
  EXPECT_EQ(ValidateMaglevTableSize(1024).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateMaglevTableSize(0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateMaglevTableSize(65537).code(), absl::StatusCode::kInvalidArgument);  // prime, too big
  EXPECT_TRUE(BuildMaglevTable(Backends(3), 1024).empty());
}

TEST(MaglevTest, NoBackendsGiveAnEmptyTable) {
  EXPECT_TRUE(BuildMaglevTable({}, WEIR_MAGLEV_DEFAULT_SIZE).empty());
  std::vector<MaglevBackend> drained = Backends(3);
  for (MaglevBackend& backend : drained) backend.weight = 0;
  EXPECT_TRUE(BuildMaglevTable(drained, WEIR_MAGLEV_DEFAULT_SIZE).empty());
}

TEST(MaglevTest, SingleBackendOwnsEverySlot) {
  const std::vector<uint32_t> table = BuildMaglevTable(Backends(1), WEIR_MAGLEV_DEFAULT_SIZE);
  ASSERT_EQ(table.size(), WEIR_MAGLEV_DEFAULT_SIZE);
  EXPECT_TRUE(std::all_of(table.begin(), table.end(), [](uint32_t id) { return id == 1; }));
}

TEST(MaglevTest, TenBackendsBalancedInDefaultTable) {
  ExpectFilledAndBalanced(Backends(10), WEIR_MAGLEV_DEFAULT_SIZE, 0.03);
}

TEST(MaglevTest, TenBackendsBalancedWithinOnePercentInLargeTable) {
  ExpectFilledAndBalanced(Backends(10), 65521, 0.01);
}

TEST(MaglevTest, ManyBackendsStillFillEverySlot) {
  ExpectFilledAndBalanced(Backends(100), 65521, 0.01);
  // More backends than slots: the table is full, some backends get none.
  const std::vector<uint32_t> table = BuildMaglevTable(Backends(20), 7);
  ASSERT_EQ(table.size(), 7u);
  for (uint32_t id : table) EXPECT_TRUE(id >= 1 && id <= 20);
}

TEST(MaglevTest, WeightsSetTheShare) {
  std::vector<MaglevBackend> backends = Backends(3);
  backends[0].weight = 2;  // 2:1:1
  const std::map<uint32_t, int> counts = SlotsPerId(BuildMaglevTable(backends, 65521));
  EXPECT_NEAR(counts.at(1), 65521 / 2, 65521 * 0.01);
  EXPECT_NEAR(counts.at(2), 65521 / 4, 65521 * 0.01);
  EXPECT_NEAR(counts.at(3), 65521 / 4, 65521 * 0.01);
}

TEST(MaglevTest, SameSetGivesSameTableInAnyOrder) {
  std::vector<MaglevBackend> backends = Backends(10);
  const std::vector<uint32_t> reference = BuildMaglevTable(backends, WEIR_MAGLEV_DEFAULT_SIZE);
  std::mt19937 random(1234);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(backends.begin(), backends.end(), random);
    EXPECT_EQ(BuildMaglevTable(backends, WEIR_MAGLEV_DEFAULT_SIZE), reference);
  }
}

TEST(MaglevTest, LayoutFollowsNamesNotIds) {
  // Two nodes that numbered the same backends differently place them in the same slots.
  std::vector<MaglevBackend> renumbered = Backends(5);
  for (MaglevBackend& backend : renumbered) backend.id += 100;
  const std::vector<uint32_t> a = BuildMaglevTable(Backends(5), WEIR_MAGLEV_DEFAULT_SIZE);
  const std::vector<uint32_t> b = BuildMaglevTable(renumbered, WEIR_MAGLEV_DEFAULT_SIZE);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i] + 100, b[i]) << "slot " << i;
}

TEST(MaglevTest, TableIsPinnedAcrossBuilds) {
  // Golden prefix: a change here reshuffles flows on every node during an upgrade. Only update it
  // deliberately.
  const std::vector<uint32_t> table = BuildMaglevTable(Backends(4), 13);
  // Cross-checked against an independent Python implementation over the mmh3 package.
  EXPECT_EQ(table, (std::vector<uint32_t>{1, 4, 2, 1, 3, 3, 2, 4, 3, 4, 2, 1, 1}));
}

TEST(MaglevTest, RemovingOneOfTenBackendsMovesFewSlots) {
  const std::vector<MaglevBackend> all = Backends(10);
  const std::vector<uint32_t> before = BuildMaglevTable(all, WEIR_MAGLEV_DEFAULT_SIZE);
  for (size_t removed = 0; removed < all.size(); ++removed) {
    std::vector<MaglevBackend> rest = all;
    rest.erase(rest.begin() + removed);
    const std::vector<uint32_t> after = BuildMaglevTable(rest, WEIR_MAGLEV_DEFAULT_SIZE);
    ASSERT_EQ(after.size(), before.size());
    int lost = 0;  // slots that had to move: they pointed at the removed backend
    for (size_t i = 0; i < before.size(); ++i) {
      lost += before[i] == all[removed].id;
      EXPECT_NE(after[i], all[removed].id);
    }
    const int changed = ChangedSlots(before, after);
    EXPECT_GE(changed, lost);
    EXPECT_LT(changed, static_cast<int>(before.size() * 0.20))
        << "removing " << all[removed].name << " moved " << changed << " slots";
  }
}

TEST(MaglevTest, AddingAnEleventhBackendMovesFewSlots) {
  const std::vector<uint32_t> before = BuildMaglevTable(Backends(10), WEIR_MAGLEV_DEFAULT_SIZE);
  const std::vector<uint32_t> after = BuildMaglevTable(Backends(11), WEIR_MAGLEV_DEFAULT_SIZE);
  EXPECT_LT(ChangedSlots(before, after), static_cast<int>(before.size() * 0.20));
}

}  // namespace
}  // namespace weir::lb
