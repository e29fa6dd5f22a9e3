#include "proxy/sync/conntrack_gc.h"

#include <arpa/inet.h>

#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/abi_codec.h"

namespace weir::sync {
namespace {

std::function<bool(uint32_t)> LiveIds(std::set<uint32_t> ids) {
  return [ids = std::move(ids)](uint32_t id) { return ids.contains(id); };
}

constexpr uint64_t kSecond = 1'000'000'000ull;

// An in-memory conntrack map. `after_list` runs once the listing is taken, standing in for the
// datapath writing while the collector works.
class FakeConntrackTable : public ConntrackTable {
 public:
  absl::StatusOr<std::vector<ConntrackEntry>> List() const override {
    std::vector<ConntrackEntry> entries;
    for (const auto& [bytes, value] : entries_) entries.push_back({KeyOf(bytes), value});
    if (after_list) after_list();
    return entries;
  }
  absl::StatusOr<std::optional<weir_ct_value>> Lookup(const weir_ct_key& key) const override {
    auto it = entries_.find(BytesOf(key));
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }
  absl::Status Delete(const weir_ct_key& key) override {
    if (fail_deletes) return absl::InternalError("injected");
    entries_.erase(BytesOf(key));
    return absl::OkStatus();
  }
  uint32_t capacity() const override { return 1000; }

  void Put(const weir_ct_key& key, const weir_ct_value& value) { entries_[BytesOf(key)] = value; }
  bool Has(const weir_ct_key& key) const { return entries_.contains(BytesOf(key)); }
  size_t size() const { return entries_.size(); }

  std::function<void()> after_list;
  bool fail_deletes = false;

 private:
  static std::string BytesOf(const weir_ct_key& key) {
    return std::string(reinterpret_cast<const char*>(&key), sizeof(key));
  }
  static weir_ct_key KeyOf(const std::string& bytes) {
    weir_ct_key key{};
    std::memcpy(&key, bytes.data(), sizeof(key));
    return key;
  }
  std::map<std::string, weir_ct_value> entries_;
};

weir_ct_key Key(uint8_t proto, uint16_t client_port) {
  return abi::EncodeConntrackKey(
      {*IpAddress::Parse("10.0.0.1"), client_port, *IpAddress::Parse("10.96.0.10"), 80, proto});
}

weir_ct_value Value(uint32_t backend_id, uint64_t last_seen_ns) {
  weir_ct_value value{};
  value.kind = WEIR_CT_FORWARD;
  value.backend_id = backend_id;
  value.service_id = 1;
  value.last_seen_ns = last_seen_ns;
  return value;
}

class ConntrackGcTest : public ::testing::Test {
 protected:
  ConntrackGcTest() {
    auto table = std::make_unique<FakeConntrackTable>();
    table_ = table.get();
    gc_ = std::make_unique<ConntrackGc>(std::move(table));
  }
  FakeConntrackTable* table_;
  std::unique_ptr<ConntrackGc> gc_;
  const uint64_t now_ = 100'000 * kSecond;
};

TEST_F(ConntrackGcTest, DefaultsMatchKubeProxyScale) {
  EXPECT_EQ(gc_->options().tcp_lifetime, std::chrono::hours(6));
  EXPECT_EQ(gc_->options().other_lifetime, std::chrono::seconds(60));
}

TEST_F(ConntrackGcTest, ExpiresByProtocolLifetime) {
  table_->Put(Key(WEIR_PROTO_TCP, 1), Value(1, now_ - 5 * 3600 * kSecond));  // 5 h idle: kept
  table_->Put(Key(WEIR_PROTO_TCP, 2), Value(1, now_ - 7 * 3600 * kSecond));  // 7 h: expired
  table_->Put(Key(WEIR_PROTO_UDP, 3), Value(1, now_ - 30 * kSecond));        // kept
  table_->Put(Key(WEIR_PROTO_UDP, 4), Value(1, now_ - 61 * kSecond));        // expired
  table_->Put(Key(WEIR_PROTO_SCTP, 5), Value(1, now_ - 61 * kSecond));       // expired, like UDP

  auto stats = gc_->Collect(now_, LiveIds({1}));
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->scanned, 5u);
  EXPECT_EQ(stats->deleted_expired, 3u);
  EXPECT_EQ(stats->deleted_stale_backend, 0u);
  EXPECT_EQ(stats->entries_after, 2u);
  EXPECT_EQ(stats->capacity, 1000u);
  EXPECT_TRUE(table_->Has(Key(WEIR_PROTO_TCP, 1)));
  EXPECT_TRUE(table_->Has(Key(WEIR_PROTO_UDP, 3)));
  EXPECT_EQ(table_->size(), 2u);
}

TEST_F(ConntrackGcTest, LifetimesAreConfigurable) {
  auto owned = std::make_unique<FakeConntrackTable>();
  FakeConntrackTable* table = owned.get();
  ConntrackGc custom(std::move(owned),
                     {.tcp_lifetime = std::chrono::seconds(10), .other_lifetime = std::chrono::seconds(5)});
  table->Put(Key(WEIR_PROTO_TCP, 1), Value(1, now_ - 11 * kSecond));
  table->Put(Key(WEIR_PROTO_UDP, 2), Value(1, now_ - 4 * kSecond));
  auto stats = custom.Collect(now_, LiveIds({1}));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->deleted_expired, 1u);
  EXPECT_TRUE(table->Has(Key(WEIR_PROTO_UDP, 2)));
}

TEST_F(ConntrackGcTest, DeletesEntriesOfRemovedBackends) {
  table_->Put(Key(WEIR_PROTO_UDP, 1), Value(7, now_));  // fresh, but backend 7 is gone
  weir_ct_value reply = Value(7, now_);
  reply.kind = WEIR_CT_REPLY;
  table_->Put(Key(WEIR_PROTO_UDP, 2), reply);           // its reply entry goes too
  table_->Put(Key(WEIR_PROTO_TCP, 3), Value(8, now_));  // live backend: kept
  table_->Put(Key(WEIR_PROTO_UDP, 4), Value(0, now_));  // no backend id: judged by age only

  auto stats = gc_->Collect(now_, LiveIds({8}));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->deleted_stale_backend, 2u);
  EXPECT_EQ(stats->deleted_expired, 0u);
  EXPECT_EQ(stats->entries_after, 2u);
  EXPECT_TRUE(table_->Has(Key(WEIR_PROTO_TCP, 3)));
  EXPECT_TRUE(table_->Has(Key(WEIR_PROTO_UDP, 4)));
}

TEST_F(ConntrackGcTest, EntryNewerThanNowIsKept) {
  // Stamped by the datapath after the caller read the clock.
  table_->Put(Key(WEIR_PROTO_UDP, 1), Value(1, now_ + kSecond));
  auto stats = gc_->Collect(now_, LiveIds({1}));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->deleted_expired, 0u);
  EXPECT_EQ(table_->size(), 1u);
}

TEST_F(ConntrackGcTest, EntryRefreshedDuringThePassSurvives) {
  table_->Put(Key(WEIR_PROTO_UDP, 1), Value(1, now_ - 120 * kSecond));
  table_->Put(Key(WEIR_PROTO_UDP, 2), Value(9, now_));
  table_->after_list = [this] {
    table_->Put(Key(WEIR_PROTO_UDP, 1), Value(1, now_));  // a packet arrived
    table_->Put(Key(WEIR_PROTO_UDP, 2), Value(1, now_));  // re-created towards a live backend
    table_->after_list = nullptr;
  };
  auto stats = gc_->Collect(now_, LiveIds({1}));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->deleted_expired + stats->deleted_stale_backend, 0u);
  EXPECT_EQ(table_->size(), 2u);
}

TEST_F(ConntrackGcTest, EntryGoneDuringThePassIsNotCounted) {
  table_->Put(Key(WEIR_PROTO_UDP, 1), Value(1, now_ - 120 * kSecond));
  table_->after_list = [this] {
    ASSERT_TRUE(table_->Delete(Key(WEIR_PROTO_UDP, 1)).ok());  // evicted by the LRU
  };
  auto stats = gc_->Collect(now_, LiveIds({1}));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->scanned, 1u);
  EXPECT_EQ(stats->deleted_expired, 0u);
}

TEST_F(ConntrackGcTest, DeleteErrorsAreReturned) {
  table_->Put(Key(WEIR_PROTO_UDP, 1), Value(1, now_ - 120 * kSecond));
  table_->fail_deletes = true;
  EXPECT_EQ(gc_->Collect(now_, LiveIds({1})).status().code(), absl::StatusCode::kInternal);
}

TEST_F(ConntrackGcTest, EmptyTable) {
  auto stats = gc_->Collect(now_, LiveIds({}));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->scanned, 0u);
  EXPECT_EQ(stats->entries_after, 0u);
}

TEST(MonotonicNowNsTest, AdvancesAndIsMonotonic) {
  const uint64_t first = MonotonicNowNs();
  const uint64_t second = MonotonicNowNs();
  EXPECT_GT(first, 0u);
  EXPECT_GE(second, first);
}

}  // namespace
}  // namespace weir::sync
