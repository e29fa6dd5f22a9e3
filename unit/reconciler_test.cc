#include "proxy/sync/reconciler.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/abi_codec.h"
#include "proxy/lb/maglev.h"
#include "proxy/sync/fake_map_writer.h"
#include "proxy/sync/service_encoding.h"

namespace weir::sync {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

IpAddress Ip(const std::string& text) { return *IpAddress::Parse(text); }

lb::BackendSpec Backend(const std::string& ip, uint16_t port = 8080) {
  lb::BackendSpec backend;
  backend.address = Ip(ip);
  backend.port = port;
  return backend;
}

lb::FrontendSpec Frontend(const std::string& ip, uint16_t port, std::vector<lb::BackendSpec> backends,
                          uint16_t flags = WEIR_SVC_CLUSTER_IP) {
  lb::FrontendSpec frontend;
  frontend.address = Ip(ip);
  frontend.port = port;
  frontend.service = absl::StrCat("default/svc-", port);
  frontend.flags = flags;
  frontend.backends = std::move(backends);
  return frontend;
}

lb::DesiredState State(std::vector<lb::FrontendSpec> frontends) {
  std::sort(frontends.begin(), frontends.end(),
            [](const lb::FrontendSpec& a, const lb::FrontendSpec& b) { return lb::KeyOf(a) < lb::KeyOf(b); });
  return lb::DesiredState{std::move(frontends)};
}

lb::FrontendKey Key(const std::string& ip, uint16_t port, lb::Scope scope = lb::Scope::kExternal) {
  return lb::FrontendKey{Ip(ip), port, lb::L4Proto::kTcp, scope};
}

BackendIdentity Identity(const std::string& ip, uint16_t port = 8080) {
  return BackendIdentity{Ip(ip), port, lb::L4Proto::kTcp};
}

// The whole map contents as sorted text, for comparing two fakes.
std::vector<std::string> Dump(const FakeMapWriter& writer) { return writer.DumpLines(); }

// Checks after every mutation what the datapath could observe: each frontend's live slots exist
// and name existing backends, and a Maglev table names only existing backends. A violation is
// a packet dropped or misrouted in the middle of an update.
class CheckingMapWriter : public FakeMapWriter {
 public:
  absl::Status PutService(const weir_service_key& k, const weir_service_value& v) override {
    return Check(FakeMapWriter::PutService(k, v));
  }
  absl::Status PutSlot(const weir_slot_key& k, uint32_t id) override {
    return Check(FakeMapWriter::PutSlot(k, id));
  }
  absl::Status PutBackend(uint32_t id, const weir_backend& b) override {
    return Check(FakeMapWriter::PutBackend(id, b));
  }
  absl::Status PutMaglev(uint32_t id, const std::vector<uint32_t>& t) override {
    return Check(FakeMapWriter::PutMaglev(id, t));
  }
  absl::Status DeleteService(const weir_service_key& k) override {
    return Check(FakeMapWriter::DeleteService(k));
  }
  absl::Status DeleteSlot(const weir_slot_key& k) override { return Check(FakeMapWriter::DeleteSlot(k)); }
  absl::Status DeleteBackend(uint32_t id) override { return Check(FakeMapWriter::DeleteBackend(id)); }
  absl::Status DeleteMaglev(uint32_t id) override { return Check(FakeMapWriter::DeleteMaglev(id)); }

  bool checking = true;

 private:
  absl::Status Check(absl::Status status) {
    if (!checking) return status;
    absl::StatusOr<ServiceMapContents> contents = ReadAll();
    for (const ServicesMap::Entry& service : contents->services) {
      const std::string name = abi::Render(service.key);
      for (uint32_t slot = 1; slot <= service.value.backend_count; ++slot) {
        std::optional<uint32_t> backend_id = this->slot(service.value.service_id, slot);
        EXPECT_TRUE(backend_id.has_value())
            << name << " counts missing slot " << slot << " after " << operations().back().text;
        if (backend_id.has_value()) {
          EXPECT_TRUE(backend(*backend_id).has_value())
              << name << " slot " << slot << " names missing backend " << *backend_id << " after "
              << operations().back().text;
        }
      }
      // The backends the entry carries stand for its first slots: each must be a live backend
      // with the copied address and port.
      for (uint32_t i = 0; i < service.value.inline_count && i < WEIR_SERVICE_INLINE_BACKENDS; ++i) {
        const weir_inline_backend& carried = service.value.backends[i];
        std::optional<weir_backend> live = backend(carried.id);
        EXPECT_TRUE(live.has_value() && std::memcmp(&live->addr, &carried.addr, sizeof(carried.addr)) == 0 &&
                    live->port == carried.port && live->family == carried.family)
            << name << " carries backend " << carried.id << " in slot " << i + 1
            << " unlike the backends map after " << operations().back().text;
      }
      if (service.value.flags & WEIR_SVC_MAGLEV) {
        if (std::optional<std::vector<uint32_t>> table = maglev(service.value.service_id);
            table.has_value()) {
          for (uint32_t backend_id : *table) {
            if (!backend(backend_id).has_value()) {
              ADD_FAILURE() << name << " Maglev table names missing backend " << backend_id << " after "
                            << operations().back().text;
              break;
            }
          }
        }
      }
    }
    return status;
  }
};

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcileStats ApplyOk(const lb::DesiredState& state) {
    absl::StatusOr<ReconcileStats> stats = reconciler_.Apply(state);
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.value_or(ReconcileStats{});
  }
  // Applies and returns just the operations of this Apply.
  std::vector<std::string> ApplyOps(const lb::DesiredState& state) {
    writer_.ClearOperations();
    ApplyOk(state);
    return writer_.operation_texts();
  }

  CheckingMapWriter writer_;
  Reconciler reconciler_{writer_, ReconcilerOptions{}};
};

TEST_F(ReconcilerTest, FirstApplyWritesEverythingBackendsFirstFrontendsLast) {
  const auto state = State({
      Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.2")}),
      Frontend("10.96.0.2", 53, {Backend("10.0.0.2"), Backend("10.0.0.3")}),
  });
  const std::vector<std::string> ops = ApplyOps(state);
  EXPECT_THAT(ops, ElementsAre("put backend 1 10.0.0.1:8080/TCP",  //
                               "put backend 2 10.0.0.2:8080/TCP",  //
                               "put backend 3 10.0.0.3:8080/TCP",  //
                               "put slot 1/1 = 1",                 //
                               "put slot 1/2 = 2",                 //
                               "put service 10.96.0.1:80/TCP/external id=1 count=2",
                               "put slot 2/1 = 2",  //
                               "put slot 2/2 = 3",  //
                               "put service 10.96.0.2:53/TCP/external id=2 count=2"));
  writer_.ClearOperations();
  const ReconcileStats stats = ApplyOk(state);
  EXPECT_EQ(stats.writes(), 0u);
  EXPECT_EQ(stats.deletes(), 0u);
}

TEST_F(ReconcilerTest, StatsCountWritesAndDeletesPerMap) {
  ReconcileStats stats = ApplyOk(State({
      Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.2")}, WEIR_SVC_MAGLEV),
      Frontend("10.96.0.2", 80, {Backend("10.0.0.2")}),
  }));
  EXPECT_EQ(stats.services.writes, 2u);
  EXPECT_EQ(stats.slots.writes, 3u);
  EXPECT_EQ(stats.backends.writes, 2u);
  EXPECT_EQ(stats.maglev.writes, 1u);
  EXPECT_EQ(stats.deletes(), 0u);

  stats = ApplyOk(State({Frontend("10.96.0.2", 80, {Backend("10.0.0.2")})}));
  EXPECT_EQ(stats.writes(), 0u);
  EXPECT_EQ(stats.services.deletes, 1u);
  EXPECT_EQ(stats.slots.deletes, 2u);
  EXPECT_EQ(stats.maglev.deletes, 1u);
  EXPECT_EQ(stats.backends.deletes, 1u);
}

TEST_F(ReconcilerTest, ReapplyingTheSameStateWritesNothing) {
  const auto state = State({
      Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.2")}, WEIR_SVC_MAGLEV),
      Frontend("10.96.0.2", 443, {}),
  });
  ApplyOk(state);
  EXPECT_THAT(ApplyOps(state), IsEmpty());
  EXPECT_THAT(ApplyOps(state), IsEmpty());
}

TEST_F(ReconcilerTest, AddingABackendWritesBackendThenSlotThenFrontendCount) {
  ApplyOk(State({Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.2")})}));
  EXPECT_THAT(ApplyOps(State({Frontend("10.96.0.1", 80,
                                       {Backend("10.0.0.1"), Backend("10.0.0.2"), Backend("10.0.0.3")})})),
              ElementsAre("put backend 3 10.0.0.3:8080/TCP",  //
                          "put slot 1/3 = 3",                 //
                          "put service 10.96.0.1:80/TCP/external id=1 count=3"));
}

TEST_F(ReconcilerTest, AddingABackendInTheMiddleShiftsLaterSlotsInPlace) {
  ApplyOk(State({Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.3")})}));
  // Slot order follows the (sorted) desired order, so the new backend takes slot 2 and the old
  // slot 2 moves up; the count is raised only when slot 3 exists.
  EXPECT_THAT(ApplyOps(State({Frontend("10.96.0.1", 80,
                                       {Backend("10.0.0.1"), Backend("10.0.0.2"), Backend("10.0.0.3")})})),
              ElementsAre("put backend 3 10.0.0.2:8080/TCP",  //
                          "put slot 1/2 = 3",                 //
                          "put slot 1/3 = 2",                 //
                          "put service 10.96.0.1:80/TCP/external id=1 count=3"));
}

TEST_F(ReconcilerTest, RemovingABackendLowersTheCountThenDeletesSlotThenBackend) {
  ApplyOk(
      State({Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.2"), Backend("10.0.0.3")})}));
  EXPECT_THAT(ApplyOps(State({Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.2")})})),
              ElementsAre("put service 10.96.0.1:80/TCP/external id=1 count=2",  //
                          "delete slot 1/3",                                     //
                          "delete backend 3"));
}

TEST_F(ReconcilerTest, RemovingAMiddleBackendMovesTheLastSlotDownFirst) {
  ApplyOk(
      State({Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.2"), Backend("10.0.0.3")})}));
  EXPECT_THAT(ApplyOps(State({Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.3")})})),
              ElementsAre("put slot 1/2 = 3",                                    //
                          "put service 10.96.0.1:80/TCP/external id=1 count=2",  //
                          "delete slot 1/3",                                     //
                          "delete backend 2"));
}

TEST_F(ReconcilerTest, RemovingAServiceDeletesFrontendThenSlotsThenBackends) {
  ApplyOk(State({
      Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.2")}, WEIR_SVC_MAGLEV),
      Frontend("10.96.0.2", 80, {Backend("10.0.0.3")}),
  }));
  EXPECT_THAT(ApplyOps(State({Frontend("10.96.0.2", 80, {Backend("10.0.0.3")})})),
              ElementsAre("delete service 10.96.0.1:80/TCP/external",  //
                          "delete slot 1/2",                           //
                          "delete slot 1/1",                           //
                          "delete maglev 1",                           //
                          "delete backend 1",                          //
                          "delete backend 2"));
  EXPECT_EQ(writer_.service_count(), 1u);
  EXPECT_EQ(writer_.slot_count(), 1u);
  EXPECT_EQ(writer_.backend_count(), 1u);
  EXPECT_EQ(writer_.maglev_count(), 0u);
}

TEST_F(ReconcilerTest, SharedBackendIsWrittenOnceAndDeletedOnlyWhenUnused) {
  const lb::FrontendSpec first = Frontend("10.96.0.1", 80, {Backend("10.0.0.1")});
  const lb::FrontendSpec second = Frontend("10.96.0.2", 80, {Backend("10.0.0.1")});
  const std::vector<std::string> ops = ApplyOps(State({first, second}));
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "put backend 1 10.0.0.1:8080/TCP"), 1);
  EXPECT_EQ(writer_.backend_count(), 1u);

  EXPECT_THAT(ApplyOps(State({second})),
              ElementsAre("delete service 10.96.0.1:80/TCP/external", "delete slot 1/1"));
  EXPECT_THAT(ApplyOps(State({})),
              ElementsAre("delete service 10.96.0.2:80/TCP/external", "delete slot 2/1", "delete backend 1"));
  EXPECT_EQ(writer_.backend_count(), 0u);
}

TEST_F(ReconcilerTest, BackendFlagsComeFromTheSpecAndChangeInPlace) {
  lb::BackendSpec backend = Backend("10.0.0.1");
  backend.local = true;
  ApplyOk(State({Frontend("10.96.0.1", 80, {backend})}));
  EXPECT_EQ(writer_.backend(1)->flags, WEIR_BACKEND_LOCAL);

  backend.terminating = true;
  EXPECT_THAT(ApplyOps(State({Frontend("10.96.0.1", 80, {backend})})),
              ElementsAre("put backend 1 10.0.0.1:8080/TCP local terminating"));
  EXPECT_EQ(writer_.backend(1)->flags, WEIR_BACKEND_LOCAL | WEIR_BACKEND_TERMINATING);
}

TEST_F(ReconcilerTest, FrontendFieldsAreEncodedAndAFlagChangeRewritesOnlyTheFrontend) {
  lb::FrontendSpec frontend = Frontend("10.96.0.1", 80, {Backend("10.0.0.1")});
  ApplyOk(State({frontend}));
  const weir_service_key key = EncodeServiceKey(Key("10.96.0.1", 80));
  EXPECT_EQ(key.port, htons(80));
  EXPECT_EQ(key.family, WEIR_FAMILY_IPV4);
  EXPECT_EQ(key.proto, WEIR_PROTO_TCP);
  ASSERT_TRUE(writer_.service(key).has_value());
  EXPECT_EQ(writer_.service(key)->flags, WEIR_SVC_CLUSTER_IP);
  EXPECT_EQ(ntohs(writer_.backend(1)->port), 8080);

  frontend.flags |= WEIR_SVC_AFFINITY;
  frontend.affinity_timeout_seconds = 10800;
  EXPECT_THAT(ApplyOps(State({frontend})), ElementsAre("put service 10.96.0.1:80/TCP/external id=1 count=1"));
  EXPECT_EQ(writer_.service(key)->affinity_timeout, 10800u);
}

TEST_F(ReconcilerTest, AFrontendCarriesTheBackendsOfItsFirstSlots) {
  std::vector<lb::BackendSpec> five;
  for (int i = 1; i <= 5; ++i) five.push_back(Backend(absl::StrCat("10.0.0.", i)));
  ApplyOk(State({Frontend("10.96.0.1", 80, five)}));
  const weir_service_key key = EncodeServiceKey(Key("10.96.0.1", 80));
  std::optional<weir_service_value> value = writer_.service(key);
  ASSERT_TRUE(value.has_value());
  ASSERT_EQ(value->inline_count, WEIR_SERVICE_INLINE_BACKENDS);
  for (uint32_t i = 0; i < WEIR_SERVICE_INLINE_BACKENDS; ++i) {
    EXPECT_EQ(value->backends[i].id, *writer_.slot(value->service_id, i + 1));
    EXPECT_EQ(value->backends[i].addr.v4, abi::EncodeAddress(Ip(absl::StrCat("10.0.0.", i + 1))).v4);
    EXPECT_EQ(ntohs(value->backends[i].port), 8080);
    EXPECT_EQ(value->backends[i].family, WEIR_FAMILY_IPV4);
  }

  // Without the first backend, the others move up a slot, in the entry as in the slots map.
  five.erase(five.begin());
  ApplyOk(State({Frontend("10.96.0.1", 80, five)}));
  value = writer_.service(key);
  ASSERT_TRUE(value.has_value());
  ASSERT_EQ(value->inline_count, WEIR_SERVICE_INLINE_BACKENDS);
  for (uint32_t i = 0; i < WEIR_SERVICE_INLINE_BACKENDS; ++i) {
    EXPECT_EQ(value->backends[i].id, *writer_.slot(value->service_id, i + 1));
  }
  EXPECT_EQ(value->backends[0].addr.v4, abi::EncodeAddress(Ip("10.0.0.2")).v4);

  ApplyOk(State({Frontend("10.96.0.1", 80, {Backend("10.0.0.9")})}));
  EXPECT_EQ(writer_.service(key)->inline_count, 1);
}

TEST_F(ReconcilerTest, AFrontendWithoutBackendsHasCountZeroAndNoSlots) {
  EXPECT_THAT(ApplyOps(State({Frontend("10.96.0.1", 80, {}, WEIR_SVC_CLUSTER_IP | WEIR_SVC_MAGLEV)})),
              ElementsAre("put service 10.96.0.1:80/TCP/external id=1 count=0"));
  ApplyOk(State({Frontend("10.96.0.1", 80, {Backend("10.0.0.1")}, WEIR_SVC_MAGLEV)}));
  EXPECT_THAT(ApplyOps(State({Frontend("10.96.0.1", 80, {}, WEIR_SVC_MAGLEV)})),
              ElementsAre("put service 10.96.0.1:80/TCP/external id=1 count=0",  //
                          "delete slot 1/1",                                     //
                          "delete maglev 1",                                     //
                          "delete backend 1"));
}

TEST_F(ReconcilerTest, ScopesAreSeparateFrontendsWithSeparateIds) {
  lb::FrontendSpec external = Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.2")});
  lb::FrontendSpec internal = Frontend("10.96.0.1", 80, {Backend("10.0.0.2")});
  internal.scope = lb::Scope::kInternal;
  ApplyOk(State({external, internal}));
  EXPECT_EQ(reconciler_.ServiceIdOf(Key("10.96.0.1", 80, lb::Scope::kExternal)), 1u);
  EXPECT_EQ(reconciler_.ServiceIdOf(Key("10.96.0.1", 80, lb::Scope::kInternal)), 2u);
  EXPECT_EQ(writer_.slot(2, 1), reconciler_.BackendIdOf(Identity("10.0.0.2")));
}

TEST_F(ReconcilerTest, MaglevTableIsWrittenWholeBeforeTheFrontendAndOnlyWhenChanged) {
  const std::vector<lb::BackendSpec> backends = {Backend("10.0.0.1"), Backend("10.0.0.2")};
  EXPECT_THAT(
      ApplyOps(State({Frontend("10.96.0.1", 80, backends, WEIR_SVC_MAGLEV)})),
      ElementsAre("put backend 1 10.0.0.1:8080/TCP", "put backend 2 10.0.0.2:8080/TCP", "put slot 1/1 = 1",
                  "put slot 1/2 = 2", "put maglev 1", "put service 10.96.0.1:80/TCP/external id=1 count=2"));
  const std::vector<uint32_t> expected = lb::BuildMaglevTable(
      {{1, "10.0.0.1:8080/TCP", 1}, {2, "10.0.0.2:8080/TCP", 1}}, WEIR_MAGLEV_DEFAULT_SIZE);
  EXPECT_EQ(writer_.maglev(1), expected);

  // A new backend: one new table, before the count that includes the backend.
  std::vector<lb::BackendSpec> more = backends;
  more.push_back(Backend("10.0.0.3"));
  EXPECT_THAT(ApplyOps(State({Frontend("10.96.0.1", 80, more, WEIR_SVC_MAGLEV)})),
              ElementsAre("put backend 3 10.0.0.3:8080/TCP", "put slot 1/3 = 3", "put maglev 1",
                          "put service 10.96.0.1:80/TCP/external id=1 count=3"));

  // Maglev switched off: the frontend stops using the table before it goes.
  EXPECT_THAT(ApplyOps(State({Frontend("10.96.0.1", 80, more, WEIR_SVC_CLUSTER_IP)})),
              ElementsAre("put service 10.96.0.1:80/TCP/external id=1 count=3", "delete maglev 1"));
  // And on again: the table is back before the flag.
  EXPECT_THAT(ApplyOps(State({Frontend("10.96.0.1", 80, more, WEIR_SVC_MAGLEV)})),
              ElementsAre("put maglev 1", "put service 10.96.0.1:80/TCP/external id=1 count=3"));
}

TEST_F(ReconcilerTest, MaglevNamesAreTheBackendAddressPortAndProtocol) {
  EXPECT_EQ(BackendName(Identity("10.0.0.1", 8080)), "10.0.0.1:8080/TCP");
  EXPECT_EQ(BackendName(BackendIdentity{Ip("fd00::1"), 53, lb::L4Proto::kUdp}), "[fd00::1]:53/UDP");
  // Two nodes that numbered the backends differently agree on which backend owns which slot.
  lb::FrontendSpec frontend =
      Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.2")}, WEIR_SVC_MAGLEV);
  FakeMapWriter other_writer;
  Reconciler other(other_writer, ReconcilerOptions{});
  // The other node saw an unrelated backend first, so its ids are shifted by one.
  ASSERT_TRUE(other.Apply(State({Frontend("10.96.0.9", 80, {Backend("10.9.9.9")})})).ok());
  ASSERT_TRUE(other.Apply(State({Frontend("10.96.0.9", 80, {Backend("10.9.9.9")}), frontend})).ok());
  ApplyOk(State({frontend}));
  const std::vector<uint32_t> mine = *writer_.maglev(*reconciler_.ServiceIdOf(lb::KeyOf(frontend)));
  const std::vector<uint32_t> theirs = *other_writer.maglev(*other.ServiceIdOf(lb::KeyOf(frontend)));
  ASSERT_EQ(mine.size(), theirs.size());
  for (size_t i = 0; i < mine.size(); ++i) {
    ASSERT_EQ(writer_.backend(mine[i])->addr.v4, other_writer.backend(theirs[i])->addr.v4) << "slot " << i;
  }
}

TEST_F(ReconcilerTest, IdsAreStableAndTheSmallestFreeIdIsReused) {
  const lb::FrontendSpec a = Frontend("10.96.0.1", 80, {Backend("10.0.0.1")});
  const lb::FrontendSpec b = Frontend("10.96.0.2", 80, {Backend("10.0.0.2")});
  const lb::FrontendSpec c = Frontend("10.96.0.3", 80, {Backend("10.0.0.3")});
  const lb::FrontendSpec d = Frontend("10.96.0.4", 80, {Backend("10.0.0.4")});
  const lb::FrontendSpec e = Frontend("10.96.0.5", 80, {Backend("10.0.0.5")});
  ApplyOk(State({a, b, c}));
  EXPECT_EQ(reconciler_.ServiceIdOf(lb::KeyOf(a)), 1u);
  EXPECT_EQ(reconciler_.ServiceIdOf(lb::KeyOf(b)), 2u);
  EXPECT_EQ(reconciler_.ServiceIdOf(lb::KeyOf(c)), 3u);
  EXPECT_EQ(reconciler_.BackendIdOf(Identity("10.0.0.2")), 2u);

  // Removing b keeps a and c where they are.
  ApplyOk(State({a, c}));
  EXPECT_EQ(reconciler_.ServiceIdOf(lb::KeyOf(a)), 1u);
  EXPECT_EQ(reconciler_.ServiceIdOf(lb::KeyOf(c)), 3u);
  EXPECT_EQ(reconciler_.ServiceIdOf(lb::KeyOf(b)), std::nullopt);
  EXPECT_EQ(reconciler_.BackendIdOf(Identity("10.0.0.2")), std::nullopt);

  // The freed ids are the smallest free ones.
  ApplyOk(State({a, c, d}));
  EXPECT_EQ(reconciler_.ServiceIdOf(lb::KeyOf(d)), 2u);
  EXPECT_EQ(reconciler_.BackendIdOf(Identity("10.0.0.4")), 2u);

  // Within one Apply an id being freed is still live, so a replacement gets a fresh one...
  ApplyOk(State({a, c, e}));
  EXPECT_EQ(reconciler_.ServiceIdOf(lb::KeyOf(e)), 4u);
  EXPECT_EQ(reconciler_.BackendIdOf(Identity("10.0.0.5")), 4u);
  // ...and the freed one is reused afterwards.
  ApplyOk(State({a, c, e, b}));
  EXPECT_EQ(reconciler_.ServiceIdOf(lb::KeyOf(b)), 2u);
  EXPECT_EQ(reconciler_.BackendIdOf(Identity("10.0.0.2")), 2u);
}

TEST_F(ReconcilerTest, AdoptingFullMapsThenApplyingTheSameStateWritesNothing) {
  const auto state = State({
      Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.2")}, WEIR_SVC_MAGLEV),
      Frontend("10.96.0.2", 53, {Backend("10.0.0.2"), Backend("10.0.0.3")}),
      Frontend("fd00::10", 80, {Backend("fd00:1::1")}, WEIR_SVC_MAGLEV),
  });
  ApplyOk(state);
  ApplyOk(State({}));  // leaves free ids behind
  ApplyOk(state);

  // A restarted agent: same maps, new reconciler.
  Reconciler restarted(writer_, ReconcilerOptions{});
  ASSERT_TRUE(restarted.Adopt().ok());
  EXPECT_EQ(restarted.frontend_count(), 3u);
  EXPECT_EQ(restarted.backend_count(), 4u);
  writer_.ClearOperations();
  absl::StatusOr<ReconcileStats> stats = restarted.Apply(state);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(writer_.operation_texts(), IsEmpty());
  for (const lb::FrontendSpec& frontend : state.frontends) {
    EXPECT_EQ(restarted.ServiceIdOf(lb::KeyOf(frontend)), reconciler_.ServiceIdOf(lb::KeyOf(frontend)));
  }
  EXPECT_EQ(restarted.BackendIdOf(Identity("10.0.0.3")), reconciler_.BackendIdOf(Identity("10.0.0.3")));

  // New ids continue after the adopted ones.
  writer_.ClearOperations();
  lb::DesiredState more = state;
  more.frontends.push_back(Frontend("10.96.0.3", 80, {Backend("10.0.0.4")}));
  ASSERT_TRUE(restarted.Apply(State(more.frontends)).ok());
  EXPECT_THAT(writer_.operation_texts(), ElementsAre("put backend 5 10.0.0.4:8080/TCP", "put slot 4/1 = 5",
                                                     "put service 10.96.0.3:80/TCP/external id=4 count=1"));
}

TEST_F(ReconcilerTest, AdoptionRewritesOnlyWhatDiffersAndRemovesLeftovers) {
  const auto state =
      State({Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.2")}, WEIR_SVC_MAGLEV)});
  ApplyOk(state);
  // Leftovers of an agent that died mid-update, and a damaged Maglev table.
  writer_.checking = false;
  ASSERT_TRUE(writer_.PutSlot({7, 1}, 1).ok());                                     // slots of no frontend
  ASSERT_TRUE(writer_.PutBackend(9, EncodeBackend(Identity("10.0.0.9"), 0)).ok());  // unused backend
  ASSERT_TRUE(writer_.PutMaglev(1, std::vector<uint32_t>(WEIR_MAGLEV_DEFAULT_SIZE, 1)).ok());
  weir_service_key garbage = EncodeServiceKey(Key("10.96.0.9", 80));
  garbage.family = 0;  // never written by weir
  ASSERT_TRUE(writer_.PutService(garbage, weir_service_value{}).ok());
  writer_.checking = true;

  Reconciler restarted(writer_, ReconcilerOptions{});
  ASSERT_TRUE(restarted.Adopt().ok());
  writer_.ClearOperations();
  ASSERT_TRUE(restarted.Apply(state).ok());
  EXPECT_THAT(writer_.operation_texts(), ElementsAre("put maglev 1",  //
                                                     "delete service <family 0>:80/TCP/external",
                                                     "delete slot 7/1",  //
                                                     "delete backend 9"));
  // The orphaned ids are free again.
  ASSERT_TRUE(
      restarted.Apply(State({state.frontends[0], Frontend("10.96.0.2", 80, {Backend("10.0.0.3")})})).ok());
  EXPECT_EQ(restarted.ServiceIdOf(Key("10.96.0.2", 80)), 2u);
  EXPECT_EQ(restarted.BackendIdOf(Identity("10.0.0.3")), 3u);
}

TEST_F(ReconcilerTest, AdoptedFrontendMissingSlotsGetsThemBack) {
  const auto state = State({Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.2")})});
  ApplyOk(state);
  writer_.checking = false;
  ASSERT_TRUE(writer_.DeleteSlot({1, 2}).ok());
  writer_.checking = true;
  Reconciler restarted(writer_, ReconcilerOptions{});
  ASSERT_TRUE(restarted.Adopt().ok());
  writer_.ClearOperations();
  ASSERT_TRUE(restarted.Apply(state).ok());
  EXPECT_THAT(writer_.operation_texts(), ElementsAre("put slot 1/2 = 2"));
}

TEST_F(ReconcilerTest, AnInterruptedApplyKeepsTheMapsConsistentAndTheNextOneFinishes) {
  const auto before = State({
      Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.2"), Backend("10.0.0.3")},
               WEIR_SVC_MAGLEV),
      Frontend("10.96.0.2", 80, {Backend("10.0.0.3"), Backend("10.0.0.4")}),
      Frontend("10.96.0.3", 80, {Backend("10.0.0.5")}),
  });
  const auto after = State({
      Frontend("10.96.0.1", 80, {Backend("10.0.0.1"), Backend("10.0.0.3"), Backend("10.0.0.6")},
               WEIR_SVC_MAGLEV),
      Frontend("10.96.0.2", 80, {Backend("10.0.0.4")}, WEIR_SVC_MAGLEV),
      Frontend("10.96.0.4", 80, {Backend("10.0.0.5"), Backend("10.0.0.7")}),
  });
  // The reference: one uninterrupted transition.
  FakeMapWriter reference_writer;
  Reconciler reference(reference_writer, ReconcilerOptions{});
  ASSERT_TRUE(reference.Apply(before).ok());
  reference_writer.ClearOperations();
  ASSERT_TRUE(reference.Apply(after).ok());
  const size_t transition_ops = reference_writer.operations().size();
  ASSERT_GT(transition_ops, 10u);

  for (size_t fail_at = 0; fail_at < transition_ops; ++fail_at) {
    SCOPED_TRACE(absl::StrCat("failing after ", fail_at, " operations"));
    CheckingMapWriter writer;
    Reconciler reconciler(writer, ReconcilerOptions{});
    ASSERT_TRUE(reconciler.Apply(before).ok());
    writer.FailAfter(fail_at);
    EXPECT_FALSE(reconciler.Apply(after).ok());
    writer.StopFailing();
    ASSERT_TRUE(reconciler.Apply(after).ok());
    // The same maps, ids included, as after the uninterrupted transition.
    EXPECT_EQ(Dump(writer), Dump(reference_writer));
    for (const lb::FrontendSpec& frontend : after.frontends) {
      EXPECT_EQ(reconciler.ServiceIdOf(lb::KeyOf(frontend)), reference.ServiceIdOf(lb::KeyOf(frontend)));
    }
    // Nothing left to do.
    writer.ClearOperations();
    ASSERT_TRUE(reconciler.Apply(after).ok());
    EXPECT_THAT(writer.operation_texts(), IsEmpty());
  }
}

TEST_F(ReconcilerTest, RejectsBadInputWithoutWriting) {
  const lb::FrontendSpec frontend = Frontend("10.96.0.1", 80, {Backend("10.0.0.1")});
  absl::StatusOr<ReconcileStats> duplicate = reconciler_.Apply(lb::DesiredState{{frontend, frontend}});
  EXPECT_EQ(duplicate.status().code(), absl::StatusCode::kInvalidArgument);

  FakeMapWriter writer;
  Reconciler not_prime(writer, ReconcilerOptions{.maglev_table_size = 1000});
  EXPECT_EQ(not_prime.Apply(State({frontend})).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(writer_.operations(), IsEmpty());
  EXPECT_THAT(writer.operations(), IsEmpty());

  // Nothing was allocated by the failed attempts.
  ApplyOk(State({frontend}));
  EXPECT_EQ(reconciler_.ServiceIdOf(lb::KeyOf(frontend)), 1u);
  EXPECT_EQ(reconciler_.BackendIdOf(Identity("10.0.0.1")), 1u);
}

// The changes that turn `from` into `to`: what a FrontendTable reports, plus some unchanged
// entries, which ApplyChanges must treat as no-ops.
lb::DesiredChanges ChangesBetween(const lb::DesiredState& from, const lb::DesiredState& to,
                                  std::mt19937& random) {
  std::map<lb::FrontendKey, const lb::FrontendSpec*> before;
  for (const lb::FrontendSpec& spec : from.frontends) before[lb::KeyOf(spec)] = &spec;
  lb::DesiredChanges changes;
  for (const lb::FrontendSpec& spec : to.frontends) {
    auto old = before.find(lb::KeyOf(spec));
    const bool changed = old == before.end() || !(*old->second == spec);
    if (changed || random() % 4 == 0) changes.upserts.push_back(spec);
    if (old != before.end()) before.erase(old);
  }
  for (const auto& [key, spec] : before) changes.removals.push_back(key);
  // A removal of something that is not there is allowed too.
  changes.removals.push_back(Key("10.99.99.99", 9));
  std::sort(changes.removals.begin(), changes.removals.end());
  return changes;
}

lb::DesiredState RandomState(std::mt19937& random) {
  std::vector<lb::FrontendSpec> frontends;
  for (int service = 0; service < 12; ++service) {
    if (random() % 3 == 0) continue;
    std::vector<lb::BackendSpec> backends;
    for (int backend = 0; backend < 8; ++backend) {
      // A small address pool, so that Services share backends.
      if (random() % 3 == 0) backends.push_back(Backend(absl::StrCat("10.0.0.", 1 + backend), 8080));
    }
    const uint16_t flags = random() % 2 == 0 ? WEIR_SVC_MAGLEV : WEIR_SVC_CLUSTER_IP;
    frontends.push_back(Frontend(absl::StrCat("10.96.0.", 1 + service), 80, std::move(backends), flags));
  }
  return State(std::move(frontends));
}

TEST(ReconcilerChangesTest, ApplyingChangesGivesTheSameMapsAsApplyingTheWholeState) {
  std::mt19937 random(7);
  FakeMapWriter whole_writer;
  Reconciler whole(whole_writer, ReconcilerOptions{});
  CheckingMapWriter changes_writer;
  Reconciler by_changes(changes_writer, ReconcilerOptions{});
  lb::DesiredState current;
  ASSERT_TRUE(whole.Apply(current).ok());
  ASSERT_TRUE(by_changes.Apply(current).ok());
  for (int step = 0; step < 300; ++step) {
    SCOPED_TRACE(absl::StrCat("step ", step));
    const lb::DesiredState next = RandomState(random);
    ASSERT_TRUE(whole.Apply(next).ok());
    absl::StatusOr<ReconcileStats> applied = by_changes.ApplyChanges(ChangesBetween(current, next, random));
    ASSERT_TRUE(applied.ok()) << applied.status();
    // Ids included: the same history gives the same ids either way.
    ASSERT_EQ(Dump(changes_writer), Dump(whole_writer));
    current = next;
  }
  // And a whole pass afterwards finds nothing to do.
  changes_writer.ClearOperations();
  ASSERT_TRUE(by_changes.Apply(current).ok());
  EXPECT_THAT(changes_writer.operation_texts(), IsEmpty());
}

TEST(ReconcilerChangesTest, RejectsAKeyThatIsBothWrittenAndRemoved) {
  FakeMapWriter writer;
  Reconciler reconciler(writer, ReconcilerOptions{});
  const lb::FrontendSpec frontend = Frontend("10.96.0.1", 80, {Backend("10.0.0.1")});
  lb::DesiredChanges changes{.upserts = {frontend}, .removals = {lb::KeyOf(frontend)}};
  EXPECT_EQ(reconciler.ApplyChanges(changes).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(writer.operations(), IsEmpty());
}

TEST(ReconcilerScaleTest, FiveThousandServicesWithThreeBackendsEach) {
  std::vector<lb::FrontendSpec> frontends;
  for (int i = 0; i < 5000; ++i) {
    std::vector<lb::BackendSpec> backends;
    for (int j = 0; j < 3; ++j) {
      backends.push_back(Backend(absl::StrCat("10.", 1 + i / 250, ".", i % 250, ".", 1 + j)));
    }
    frontends.push_back(Frontend(absl::StrCat("10.96.", i / 250, ".", 1 + i % 250), 80, std::move(backends),
                                 i % 2 == 0 ? WEIR_SVC_MAGLEV : WEIR_SVC_CLUSTER_IP));
  }
  const lb::DesiredState state = State(std::move(frontends));
  FakeMapWriter writer;
  Reconciler reconciler(writer, ReconcilerOptions{});

  using Clock = std::chrono::steady_clock;
  auto start = Clock::now();
  absl::StatusOr<ReconcileStats> first = reconciler.Apply(state);
  auto first_done = Clock::now();
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<ReconcileStats> again = reconciler.Apply(state);
  auto again_done = Clock::now();
  ASSERT_TRUE(again.ok()) << again.status();

  EXPECT_EQ(first->services.writes, 5000u);
  EXPECT_EQ(first->slots.writes, 15000u);
  EXPECT_EQ(first->backends.writes, 15000u);
  EXPECT_EQ(first->maglev.writes, 2500u);
  EXPECT_EQ(again->writes() + again->deletes(), 0u);
  // One Service's backend replaced, as a change.
  lb::FrontendSpec changed = state.frontends[1234];
  changed.backends.back() = Backend("10.200.0.1");
  auto change_start = Clock::now();
  absl::StatusOr<ReconcileStats> change = reconciler.ApplyChanges(lb::DesiredChanges{.upserts = {changed}});
  auto change_done = Clock::now();
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->backends.writes, 1u);
  EXPECT_EQ(change->backends.deletes, 1u);
  EXPECT_EQ(change->slots.writes, 1u);
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::printf(
      "5000 services x 3 backends (half Maglev): first apply %.1f ms, unchanged re-apply %.1f ms, "
      "one backend changed %.3f ms\n",
      ms(first_done - start), ms(again_done - first_done), ms(change_done - change_start));
}

}  // namespace
}  // namespace weir::sync
