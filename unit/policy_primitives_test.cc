// The building blocks of proxy/policy: selector matching, port prefixes, identity allocation.
#include <gtest/gtest.h>

#include <random>

#include "proxy/policy/identity.h"
#include "proxy/policy/label_selector.h"
#include "proxy/policy/port_prefix.h"

namespace weir::policy {
namespace {

using k8s::LabelSelector;
using k8s::SelectorOperator;

TEST(SelectorMatchesTest, MatchLabelsAndEveryOperator) {
  const Labels web = {{"app", "web"}, {"tier", "front"}};
  EXPECT_TRUE(SelectorMatches({}, web));
  EXPECT_TRUE(SelectorMatches({}, {}));
  EXPECT_TRUE(SelectorMatches({.match_labels = {{"app", "web"}}}, web));
  EXPECT_FALSE(SelectorMatches({.match_labels = {{"app", "web"}, {"x", "y"}}}, web));
  EXPECT_FALSE(SelectorMatches({.match_labels = {{"app", "db"}}}, web));

  auto with = [](SelectorOperator op, std::vector<std::string> values) {
    return LabelSelector{.match_labels = {}, .match_expressions = {{"tier", op, std::move(values)}}};
  };
  EXPECT_TRUE(SelectorMatches(with(SelectorOperator::kIn, {"back", "front"}), web));
  EXPECT_FALSE(SelectorMatches(with(SelectorOperator::kIn, {"back"}), web));
  EXPECT_FALSE(SelectorMatches(with(SelectorOperator::kIn, {"front"}), {}));
  EXPECT_FALSE(SelectorMatches(with(SelectorOperator::kNotIn, {"front"}), web));
  EXPECT_TRUE(SelectorMatches(with(SelectorOperator::kNotIn, {"back"}), web));
  EXPECT_TRUE(SelectorMatches(with(SelectorOperator::kNotIn, {"front"}), {}));  // an absent key is "not in"
  EXPECT_TRUE(SelectorMatches(with(SelectorOperator::kExists, {}), web));
  EXPECT_FALSE(SelectorMatches(with(SelectorOperator::kExists, {}), {}));
  EXPECT_FALSE(SelectorMatches(with(SelectorOperator::kDoesNotExist, {}), web));
  EXPECT_TRUE(SelectorMatches(with(SelectorOperator::kDoesNotExist, {}), {}));
  // Labels and expressions together: all must hold.
  LabelSelector both = with(SelectorOperator::kIn, {"front"});
  both.match_labels = {{"app", "db"}};
  EXPECT_FALSE(SelectorMatches(both, web));
}

bool Covers(const PortPrefix& prefix, uint32_t port) {
  const uint32_t mask = prefix.length == 0 ? 0 : (0xffffu << (16 - prefix.length)) & 0xffffu;
  return (port & mask) == prefix.port;
}

TEST(PortRangeToPrefixesTest, KnownRanges) {
  EXPECT_EQ(PortRangeToPrefixes(80, 80), (std::vector<PortPrefix>{{80, 16}}));
  EXPECT_EQ(PortRangeToPrefixes(0, 65535), (std::vector<PortPrefix>{{0, 0}}));
  EXPECT_EQ(PortRangeToPrefixes(32768, 65535), (std::vector<PortPrefix>{{32768, 1}}));
  EXPECT_EQ(PortRangeToPrefixes(80, 81), (std::vector<PortPrefix>{{80, 15}}));
  EXPECT_EQ(PortRangeToPrefixes(81, 82), (std::vector<PortPrefix>{{81, 16}, {82, 16}}));
  EXPECT_EQ(PortRangeToPrefixes(1000, 1010), (std::vector<PortPrefix>{{1000, 13}, {1008, 15}, {1010, 16}}));
  EXPECT_TRUE(PortRangeToPrefixes(2, 1).empty());
  EXPECT_EQ(PortRangeToPrefixes(1, 65534).size(), 30u);  // the worst case
}

// Every range covers exactly its ports, with prefixes that do not overlap, in at most 30 entries.
TEST(PortRangeToPrefixesTest, RandomRangesAreCoveredExactly) {
  std::mt19937 random(7);
  std::uniform_int_distribution<uint32_t> port(0, 65535);
  for (int round = 0; round < 300; ++round) {
    uint32_t first = port(random), last = port(random);
    if (round % 3 == 0) last = std::min<uint32_t>(65535, first + port(random) % 64);
    if (first > last) std::swap(first, last);
    const std::vector<PortPrefix> prefixes = PortRangeToPrefixes(first, last);
    ASSERT_LE(prefixes.size(), 30u);
    std::vector<int> hits(65536, 0);
    for (const PortPrefix& prefix : prefixes) {
      const uint32_t size = uint32_t{1} << (16 - prefix.length);
      for (uint32_t p = prefix.port; p < prefix.port + size; ++p) {
        ASSERT_TRUE(Covers(prefix, p));
        ++hits[p];
      }
    }
    for (uint32_t p = 0; p < 65536; ++p)
      ASSERT_EQ(hits[p], p >= first && p <= last ? 1 : 0) << first << "-" << last;
  }
}

IdentityKey Key(const std::string& app) {
  return {"x", {{"kubernetes.io/metadata.name", "x"}}, {{"app", app}}};
}

TEST(IdentityAllocatorTest, OneNumberPerKeyWhileHeld) {
  IdentityAllocator identities;
  const Identity a = *identities.Acquire(Key("a"));
  EXPECT_EQ(a, kFirstLocalIdentity);
  EXPECT_EQ(*identities.Acquire(Key("a")), a);
  const Identity b = *identities.Acquire(Key("b"));
  EXPECT_NE(a, b);
  identities.Release(a);
  EXPECT_EQ(identities.Find(Key("a")), a);  // still one holder
  identities.Release(a);
  EXPECT_EQ(identities.Find(Key("a")), std::nullopt);
  EXPECT_EQ(identities.KeyOf(a), nullptr);
  EXPECT_EQ(*identities.KeyOf(b), Key("b"));
  // A freed number is not handed out again while fresh ones remain.
  EXPECT_EQ(*identities.Acquire(Key("a")), b + 1);
  identities.Release(kIdentityWorld);  // unknown: ignored
}

TEST(IdentityAllocatorTest, ReusesOldestFreedOnlyWhenFreshOnesRunOut) {
  IdentityAllocator identities(kFirstLocalIdentity + 2);  // three numbers
  const Identity a = *identities.Acquire(Key("a"));
  const Identity b = *identities.Acquire(Key("b"));
  const Identity c = *identities.Acquire(Key("c"));
  absl::StatusOr<Identity> none = identities.Acquire(Key("d"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kResourceExhausted);
  identities.Release(b);
  identities.Release(a);
  EXPECT_EQ(*identities.Acquire(Key("d")), b);
  EXPECT_EQ(*identities.Acquire(Key("e")), a);
  EXPECT_EQ(*identities.Find(Key("c")), c);
}

TEST(IdentityAllocatorTest, ReservedNames) {
  EXPECT_STREQ(ReservedIdentityName(kIdentityWorld), "world");
  EXPECT_STREQ(ReservedIdentityName(kIdentityHost), "host");
  EXPECT_STREQ(ReservedIdentityName(kIdentityRemoteNode), "remote-node");
  EXPECT_STREQ(ReservedIdentityName(kFirstLocalIdentity), "");
}

}  // namespace
}  // namespace weir::policy
