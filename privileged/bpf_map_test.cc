// The typed map layer against real kernel maps: what a caller reads back is what it wrote, a map of
// another layout is refused when opened, and the batched listing finds what the key walk finds.
#include "lib/bpf_map.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace weir {
namespace {

UniqueFd CreateMap(bpf_map_type type, uint32_t key_size, uint32_t value_size, uint32_t max_entries) {
  // Tries exist only unpreallocated.
  LIBBPF_OPTS(bpf_map_create_opts, options,
              .map_flags = type == BPF_MAP_TYPE_LPM_TRIE ? static_cast<uint32_t>(BPF_F_NO_PREALLOC) : 0u);
  const int fd = bpf_map_create(type, "weir_test", key_size, value_size, max_entries, &options);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  return UniqueFd(fd);
}

TEST(BpfMapTest, WritesReadsAndDeletesTypedEntries) {
  auto map = BpfMap<weir_service_key, weir_service_value>::FromFd(
      CreateMap(BPF_MAP_TYPE_HASH, sizeof(weir_service_key), sizeof(weir_service_value), 16),
      "weir_services");
  ASSERT_TRUE(map.ok()) << map.status();
  const weir_service_key key = abi::EncodeServiceKey({*IpAddress::Parse("10.96.0.1"), 80, WEIR_PROTO_TCP});
  ASSERT_TRUE(map->Update(key, {.service_id = 5, .backend_count = 2}).ok());

  absl::StatusOr<std::optional<weir_service_value>> found = map->Lookup(key);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->service_id, 5u);
  EXPECT_EQ(*map->Count(), 1u);

  ASSERT_TRUE(map->Delete(key).ok());
  EXPECT_TRUE(map->Delete(key).ok()) << "deleting what is gone succeeds";
  EXPECT_FALSE(map->Lookup(key)->has_value());
}

TEST(BpfMapTest, RefusesAMapOfAnotherLayout) {
  auto map = BpfMap<weir_service_key, weir_service_value>::FromFd(
      CreateMap(BPF_MAP_TYPE_HASH, sizeof(weir_service_key), sizeof(weir_service_value) + 8, 16),
      "weir_services");
  ASSERT_FALSE(map.ok());
  EXPECT_EQ(map.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(map.status().message().find("value size"), std::string::npos) << map.status();
}

TEST(BpfMapTest, ArrayValuesTakeTheMapsSize) {
  auto map = BpfMap<uint32_t, std::vector<uint32_t>>::FromFd(
      CreateMap(BPF_MAP_TYPE_HASH, sizeof(uint32_t), 7 * sizeof(uint32_t), 4), "weir_maglev");
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->Update(1, std::vector<uint32_t>(5, 1)).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(map->Update(1, {1, 2, 3, 4, 5, 6, 7}).ok());
  absl::StatusOr<std::vector<BpfMap<uint32_t, std::vector<uint32_t>>::Entry>> entries = map->List();
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].value, (std::vector<uint32_t>{1, 2, 3, 4, 5, 6, 7}));
}

TEST(BpfMapTest, BatchedListingFindsEveryEntryTheWalkFinds) {
  constexpr uint32_t kEntries = 50000;
  auto map = BpfMap<weir_ct_key, weir_ct_value>::FromFd(
      CreateMap(BPF_MAP_TYPE_LRU_HASH, sizeof(weir_ct_key), sizeof(weir_ct_value), 2 * kEntries), "weir_ct");
  ASSERT_TRUE(map.ok()) << map.status();
  for (uint32_t i = 0; i < kEntries; ++i) {
    const weir_ct_key key =
        abi::EncodeConntrackKey({IpAddress::V4(i + 1), 0, IpAddress::V4(0), 0, WEIR_PROTO_TCP});
    ASSERT_TRUE(map->Update(key, {.backend_id = i % 7}).ok());
  }
  std::vector<uint32_t> batched, walked;
  auto collect = [](std::vector<uint32_t>& into) {
    return [&into](const uint8_t* key, const uint8_t* value) {
      weir_ct_key k;
      weir_ct_value v;
      std::memcpy(&k, key, sizeof(k));
      std::memcpy(&v, value, sizeof(v));
      const uint32_t source = ntohl(k.saddr.v4);
      EXPECT_EQ(v.backend_id, (source - 1) % 7);
      into.push_back(source);
    };
  };
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  ASSERT_TRUE(map->untyped().ReadInBatches(collect(batched)).ok());
  const auto batched_done = Clock::now();
  ASSERT_TRUE(map->untyped().ReadOneByOne(collect(walked)).ok());
  const auto walked_done = Clock::now();
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::printf("reading %u conntrack entries: batched %.1f ms, one by one %.1f ms\n", kEntries,
              ms(batched_done - start), ms(walked_done - batched_done));
  std::sort(batched.begin(), batched.end());
  std::sort(walked.begin(), walked.end());
  EXPECT_EQ(batched.size(), kEntries);
  EXPECT_EQ(batched, walked);
  EXPECT_EQ(*map->Count(), kEntries);
}

TEST(BpfMapTest, ListsATrieKeyByKey) {
  auto map = BpfMap<weir_nonmasq_key, uint32_t>::FromFd(
      CreateMap(BPF_MAP_TYPE_LPM_TRIE, sizeof(weir_nonmasq_key), sizeof(uint32_t), 8), "weir_nonmasq");
  ASSERT_TRUE(map.ok()) << map.status();
  ASSERT_TRUE(map->Update(abi::EncodeNonMasqueradeKey(*IpPrefix::Parse("10.0.0.0/8")), 0).ok());
  ASSERT_TRUE(map->Update(abi::EncodeNonMasqueradeKey(*IpPrefix::Parse("fd00::/64")), 0).ok());
  auto entries = map->List();
  ASSERT_TRUE(entries.ok()) << entries.status();
  std::vector<std::string> cidrs;
  for (const auto& entry : *entries) cidrs.push_back(abi::Render(entry.key));
  std::sort(cidrs.begin(), cidrs.end());
  EXPECT_EQ(cidrs, (std::vector<std::string>{"10.0.0.0/8", "fd00::/64"}));
}

}  // namespace
}  // namespace weir
