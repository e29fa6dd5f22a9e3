// Migrating a map's entries into a map of a new definition, against real kernel maps: a conntrack
// map moved to a per-CPU LRU of the same capacity keeps every entry, a shrunk plain hash map is
// refused, and the copy after the switch carries the flows the old programs started, not the old
// state of flows the new programs have been updating.
#include "lib/map_copy.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sched.h>

#include <cerrno>
#include <cstring>

#include "gtest/gtest.h"

namespace weir {
namespace {

UntypedBpfMap Create(bpf_map_type type, uint32_t max_entries, uint32_t flags) {
  LIBBPF_OPTS(bpf_map_create_opts, options, .map_flags = flags);
  UniqueFd fd(bpf_map_create(type, "weir_test", sizeof(uint64_t), sizeof(uint64_t), max_entries, &options));
  EXPECT_TRUE(fd.valid()) << std::strerror(errno);
  absl::StatusOr<UntypedBpfMap> map =
      UntypedBpfMap::FromFd(std::move(fd), "weir_test", std::nullopt, std::nullopt);
  EXPECT_TRUE(map.ok()) << map.status();
  return *std::move(map);
}

uint64_t Fill(const UntypedBpfMap& map, uint64_t count, uint64_t value_base = 1000) {
  for (uint64_t key = 0; key < count; ++key) {
    const uint64_t value = value_base + key;
    EXPECT_EQ(bpf_map_update_elem(map.fd(), &key, &value, BPF_ANY), 0) << std::strerror(errno);
  }
  return count;
}

TEST(MapCopyTest, APerCpuLruMapOfTheSameCapacityKeepsEveryEntry) {
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  const int possible = libbpf_num_possible_cpus();
  if (CPU_COUNT(&allowed) != possible) GTEST_SKIP() << "the test may not run on every possible CPU";
  // One CPU's LRU list holds 64: written from one CPU, all but 64 would be evicted.
  const uint32_t capacity = 64 * static_cast<uint32_t>(possible);
  UntypedBpfMap from = Create(BPF_MAP_TYPE_HASH, capacity, 0);
  UntypedBpfMap to = Create(BPF_MAP_TYPE_LRU_HASH, capacity, BPF_F_NO_COMMON_LRU);
  Fill(from, capacity);
  const AdoptionPlan copy{.adoption = Adoption::kCopy};
  CopiedKeys keys;
  absl::StatusOr<CopyCounts> copied =
      CopyEntries(from, ShapeOf(from, 1), to, ShapeOf(to, 1), copy, CopyMode::kAll, keys);
  ASSERT_TRUE(copied.ok()) << copied.status();
  EXPECT_EQ(copied->written, capacity);
  EXPECT_EQ(*to.Count(), capacity);
  for (uint64_t key = 0; key < capacity; ++key) {
    uint64_t value = 0;
    ASSERT_EQ(bpf_map_lookup_elem(to.fd(), &key, &value), 0) << key;
    EXPECT_EQ(value, 1000 + key);
  }
  // And the thread runs where it ran before.
  cpu_set_t after;
  ASSERT_EQ(sched_getaffinity(0, sizeof(after), &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&allowed, &after));
}

TEST(MapCopyTest, EntriesThatDoNotFitAPlainHashMapAreAnError) {
  UntypedBpfMap from = Create(BPF_MAP_TYPE_HASH, 32, 0);
  UntypedBpfMap to = Create(BPF_MAP_TYPE_HASH, 16, 0);
  Fill(from, 20);
  const AdoptionPlan copy{.adoption = Adoption::kCopy};
  CopiedKeys keys;
  absl::StatusOr<CopyCounts> copied =
      CopyEntries(from, ShapeOf(from, 1), to, ShapeOf(to, 1), copy, CopyMode::kAll, keys);
  ASSERT_FALSE(copied.ok());
  EXPECT_EQ(copied.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(copied.status().message().find("its 20 entries do not fit the new map of 16"), std::string::npos)
      << copied.status();
}

TEST(MapCopyTest, TheCopyAfterTheSwitchCarriesTheOldProgramsNewFlowsOnly) {
  UntypedBpfMap from = Create(BPF_MAP_TYPE_LRU_HASH, 64, 0);
  UntypedBpfMap to = Create(BPF_MAP_TYPE_LRU_HASH, 64, 0);
  const AdoptionPlan copy{.adoption = Adoption::kCopy};
  CopiedKeys copied;
  Fill(from, 10);
  ASSERT_TRUE(CopyEntries(from, ShapeOf(from, 1), to, ShapeOf(to, 1), copy, CopyMode::kAll, copied).ok());
  // Since: the new programs refreshed flows 0-4; the old ones started flows 10-14, and a new program
  // took a packet of flow 12 for a new flow.
  for (uint64_t key = 0; key < 5; ++key) {
    const uint64_t refreshed = 7000 + key;
    ASSERT_EQ(bpf_map_update_elem(to.fd(), &key, &refreshed, BPF_ANY), 0);
  }
  for (uint64_t key = 10; key < 15; ++key) {
    const uint64_t value = 1000 + key;
    ASSERT_EQ(bpf_map_update_elem(from.fd(), &key, &value, BPF_ANY), 0);
  }
  const uint64_t mistaken_key = 12, mistaken = 9999;
  ASSERT_EQ(bpf_map_update_elem(to.fd(), &mistaken_key, &mistaken, BPF_ANY), 0);

  absl::StatusOr<CopyCounts> late =
      CopyEntries(from, ShapeOf(from, 1), to, ShapeOf(to, 1), copy, CopyMode::kNew, copied);
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(late->written, 5u);
  EXPECT_EQ(late->copied_before, 10u);
  for (uint64_t key = 0; key < 15; ++key) {
    uint64_t value = 0;
    ASSERT_EQ(bpf_map_lookup_elem(to.fd(), &key, &value), 0) << key;
    EXPECT_EQ(value, key < 5 ? 7000 + key : 1000 + key) << key;
  }
}

}  // namespace
}  // namespace weir
