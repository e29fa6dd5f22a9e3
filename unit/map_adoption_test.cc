#include "lib/map_adoption.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <cstring>

#include "bpf/abi/conntrack.h"
#include "bpf/abi/constants.h"
#include "bpf/abi/service.h"
#include "lib/map_layouts.h"

namespace weir {
namespace {

using ::testing::HasSubstr;

MapShape Conntrack(uint32_t max_entries) {
  return {.type = BPF_MAP_TYPE_LRU_HASH,
          .key_size = sizeof(weir_ct_key),
          .value_size = sizeof(weir_ct_value),
          .max_entries = max_entries,
          .flags = BPF_F_NO_COMMON_LRU,
          .layout = WEIR_CONNTRACK_LAYOUT};
}

MapShape Maglev(uint32_t table_size) {
  return {.type = BPF_MAP_TYPE_HASH,
          .key_size = 4,
          .value_size = table_size * 4,
          .max_entries = WEIR_MAGLEV_TABLES_MAX,
          .flags = BPF_F_NO_PREALLOC};
}

MapEntryBytes Entry(std::vector<uint8_t> key, std::vector<uint8_t> value) {
  return {std::move(key), std::move(value)};
}

TEST(MapAdoption, AMapAsThisAgentWouldCreateItIsReused) {
  absl::StatusOr<AdoptionPlan> plan =
      PlanAdoption(WEIR_CONNTRACK_MAP_NAME, Conntrack(262144), Conntrack(262144), WeirMapMigrations());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->adoption, Adoption::kReuse);
}

TEST(MapAdoption, AnotherSizeOrFlagsWithTheSameLayoutIsAPlainCopy) {
  absl::StatusOr<AdoptionPlan> resized =
      PlanAdoption(WEIR_CONNTRACK_MAP_NAME, Conntrack(262144), Conntrack(131072), WeirMapMigrations());
  ASSERT_TRUE(resized.ok()) << resized.status();
  EXPECT_EQ(resized->adoption, Adoption::kCopy);
  EXPECT_EQ(resized->change, "262144 entries, this agent is configured for 131072");

  MapShape common_lru = Conntrack(262144);
  common_lru.flags = 0;
  absl::StatusOr<AdoptionPlan> reflagged =
      PlanAdoption(WEIR_CONNTRACK_MAP_NAME, common_lru, Conntrack(262144), WeirMapMigrations());
  ASSERT_TRUE(reflagged.ok()) << reflagged.status();
  EXPECT_EQ(reflagged->adoption, Adoption::kCopy);

  // A hash map's entries mean the same in an LRU hash map.
  MapShape plain_hash = Conntrack(262144);
  plain_hash.type = BPF_MAP_TYPE_HASH;
  absl::StatusOr<AdoptionPlan> retyped =
      PlanAdoption(WEIR_CONNTRACK_MAP_NAME, plain_hash, Conntrack(262144), WeirMapMigrations());
  ASSERT_TRUE(retyped.ok()) << retyped.status();
  EXPECT_EQ(retyped->adoption, Adoption::kCopy);
}

TEST(MapAdoption, AnEntryIsConvertedThroughEveryLayoutStepInOrder) {
  MapMigrations migrations;
  // Layout 2 grew the value by a byte; layout 3 widened the key by two.
  migrations.AddLayoutStep("weir_test", 2, [](const MapShape&, const MapShape&, MapEntryBytes& entry) {
    entry.value.push_back(0x22);
    return true;
  });
  migrations.AddLayoutStep("weir_test", 3, [](const MapShape&, const MapShape&, MapEntryBytes& entry) {
    entry.key.insert(entry.key.begin(), {0, 0});
    return entry.value[0] != 0xdd;  // an entry layout 3 has no room for
  });
  const MapShape v1{.type = BPF_MAP_TYPE_HASH, .key_size = 2, .value_size = 1, .max_entries = 8, .layout = 1};
  const MapShape v3{.type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 2, .max_entries = 8, .layout = 3};
  absl::StatusOr<AdoptionPlan> plan = PlanAdoption("weir_test", v1, v3, migrations);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->adoption, Adoption::kConvert);

  MapEntryBytes entry = Entry({7, 8}, {0x11});
  absl::StatusOr<bool> kept = ConvertEntry(*plan, v1, v3, entry);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(*kept);
  EXPECT_EQ(entry.key, (std::vector<uint8_t>{0, 0, 7, 8}));
  EXPECT_EQ(entry.value, (std::vector<uint8_t>{0x11, 0x22}));

  MapEntryBytes unrepresentable = Entry({1, 2}, {0xdd});
  kept = ConvertEntry(*plan, v1, v3, unrepresentable);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_FALSE(*kept);
}

TEST(MapAdoption, AConversionThatMissesTheNewSizesIsAnError) {
  MapMigrations migrations;
  migrations.AddLayoutStep("weir_test", 2,
                           [](const MapShape&, const MapShape&, MapEntryBytes&) { return true; });
  const MapShape v1{.type = BPF_MAP_TYPE_HASH, .key_size = 2, .value_size = 1, .max_entries = 8, .layout = 1};
  const MapShape v2{.type = BPF_MAP_TYPE_HASH, .key_size = 2, .value_size = 4, .max_entries = 8, .layout = 2};
  absl::StatusOr<AdoptionPlan> plan = PlanAdoption("weir_test", v1, v2, migrations);
  ASSERT_TRUE(plan.ok()) << plan.status();
  MapEntryBytes entry = Entry({1, 2}, {3});
  absl::StatusOr<bool> kept = ConvertEntry(*plan, v1, v2, entry);
  ASSERT_FALSE(kept.ok());
  EXPECT_THAT(kept.status().message(), HasSubstr("a 2-byte key and a 1-byte value, the map takes 2 and 4"));
}

TEST(MapAdoption, WhatCannotBeCarriedOverIsRefusedSayingWhy) {
  struct Case {
    const char* what;
    MapShape pinned;
    MapShape wanted;
    const char* said;
  };
  MapShape newer = Conntrack(262144);
  newer.layout = WEIR_CONNTRACK_LAYOUT + 1;
  MapShape array = Conntrack(262144);
  array.type = BPF_MAP_TYPE_ARRAY;
  MapShape longer_key = Conntrack(262144);
  longer_key.key_size += 4;
  MapShape longer_value = Conntrack(262144);
  longer_value.value_size += 8;
  MapShape next_layout = Conntrack(262144);
  next_layout.layout = WEIR_CONNTRACK_LAYOUT + 1;
  const Case cases[] = {
      {"a newer build's layout", newer, Conntrack(262144), "it was written by a newer weir"},
      {"another kind of map", array, Conntrack(262144), "its entries mean something else"},
      {"a key changed within a layout", longer_key, Conntrack(262144),
       "its key changed without a new layout"},
      {"a value changed within a layout", longer_value, Conntrack(262144),
       "its value changed without a new layout"},
      {"a layout with no step to it", Conntrack(262144), next_layout,
       "no conversion of its entries to layout"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<AdoptionPlan> plan =
        PlanAdoption(WEIR_CONNTRACK_MAP_NAME, c.pinned, c.wanted, WeirMapMigrations());
    ASSERT_FALSE(plan.ok()) << c.what;
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition) << c.what;
    EXPECT_THAT(plan.status().message(), HasSubstr(c.said)) << c.what;
  }
}

TEST(MapAdoption, PerCpuValuesAreCopiedButNeverConverted) {
  MapMigrations migrations;
  migrations.AddLayoutStep("weir_counters", 2,
                           [](const MapShape&, const MapShape&, MapEntryBytes&) { return true; });
  const MapShape v1{.type = BPF_MAP_TYPE_PERCPU_ARRAY, .key_size = 4, .value_size = 16, .max_entries = 40};
  MapShape more = v1;
  more.max_entries = 48;
  absl::StatusOr<AdoptionPlan> copy = PlanAdoption("weir_counters", v1, more, migrations);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->adoption, Adoption::kCopy);
  MapShape v2 = v1;
  v2.layout = 2;
  absl::StatusOr<AdoptionPlan> convert = PlanAdoption("weir_counters", v1, v2, migrations);
  ASSERT_FALSE(convert.ok());
  EXPECT_THAT(convert.status().message(), HasSubstr("per CPU"));
}

TEST(MapAdoption, TheEventsRingStartsEmpty) {
  const MapShape ring{.type = BPF_MAP_TYPE_RINGBUF, .max_entries = 256 * 1024};
  MapShape larger = ring;
  larger.max_entries = 512 * 1024;
  absl::StatusOr<AdoptionPlan> plan = PlanAdoption(WEIR_EVENTS_MAP_NAME, ring, larger, WeirMapMigrations());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->adoption, Adoption::kRecreate);
}

TEST(MapAdoption, AMaglevTableOfAnotherSizeIsResampled) {
  absl::StatusOr<AdoptionPlan> plan =
      PlanAdoption(WEIR_MAGLEV_MAP_NAME, Maglev(5), Maglev(11), WeirMapMigrations());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->adoption, Adoption::kConvert);
  const uint32_t old_table[5] = {10, 20, 30, 40, 50};
  MapEntryBytes entry = Entry({1, 0, 0, 0}, std::vector<uint8_t>(20));
  std::memcpy(entry.value.data(), old_table, sizeof(old_table));
  absl::StatusOr<bool> kept = ConvertEntry(*plan, Maglev(5), Maglev(11), entry);
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_TRUE(*kept);
  ASSERT_EQ(entry.value.size(), 44u);
  std::vector<uint32_t> table(11);
  std::memcpy(table.data(), entry.value.data(), 44);
  // Every backend of the old table keeps its share (two or three slots of eleven), in order.
  EXPECT_EQ(table, (std::vector<uint32_t>{10, 10, 10, 20, 20, 30, 30, 40, 40, 50, 50}));
}

TEST(MapAdoption, AFrontendOfLayoutOneCarriesNoBackendsAfterConversion) {
  const MapShape v1{.type = BPF_MAP_TYPE_HASH,
                    .key_size = sizeof(weir_service_key),
                    .value_size = 16,
                    .max_entries = WEIR_SERVICES_DEFAULT_SIZE,
                    .flags = BPF_F_NO_PREALLOC,
                    .layout = 1};
  MapShape now = v1;
  now.value_size = sizeof(weir_service_value);
  now.layout = WEIR_SERVICES_LAYOUT;
  absl::StatusOr<AdoptionPlan> plan = PlanAdoption(WEIR_SERVICES_MAP_NAME, v1, now, WeirMapMigrations());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->adoption, Adoption::kConvert);
  // Layout 1: service_id 7, 3 backends, flags CLUSTER_IP, no affinity timeout, 4 bytes of padding.
  const uint8_t old_value[16] = {7, 0, 0, 0, 3, 0, WEIR_SVC_CLUSTER_IP, 0};
  MapEntryBytes entry = Entry(std::vector<uint8_t>(sizeof(weir_service_key), 1),
                              std::vector<uint8_t>(old_value, old_value + sizeof(old_value)));
  absl::StatusOr<bool> kept = ConvertEntry(*plan, v1, now, entry);
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_TRUE(*kept);
  ASSERT_EQ(entry.value.size(), sizeof(weir_service_value));
  weir_service_value value{};
  std::memcpy(&value, entry.value.data(), sizeof(value));
  EXPECT_EQ(value.service_id, 7u);
  EXPECT_EQ(value.backend_count, 3);
  EXPECT_EQ(value.flags, WEIR_SVC_CLUSTER_IP);
  EXPECT_EQ(value.inline_count, 0);  // the datapath takes every slot from the slots map
  EXPECT_EQ(entry.key, std::vector<uint8_t>(sizeof(weir_service_key), 1));
}

TEST(MapAdoption, MapsBpfAbiDoesNotListAreAtLayoutOne) {
  EXPECT_EQ(LayoutVersion(WEIR_CONNTRACK_MAP_NAME), static_cast<uint32_t>(WEIR_CONNTRACK_LAYOUT));
  EXPECT_EQ(LayoutVersion("weir_some_new_map"), 1u);
}

}  // namespace
}  // namespace weir
