// Informers against a scripted API server: lists across pages, watch streams that split, cut and
// expire, relists that must reconcile the cache, bad objects, backoff pacing and shutdown.
#include "proxy/k8s/kube_informer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proxy/k8s/kube_resources.h"
#include "proxy/source/kube_source.h"
#include "unit/kube_fake_apiserver.h"

namespace weir::k8s {
namespace {

using std::chrono::milliseconds;
using testing::FakeApiServer;
using testing::ReadTestData;
using testing::RecordedRequest;
using testing::Reply;
using testing::WaitFor;
using testing::WatchScript;

constexpr char kServices[] = "/api/v1/services";

// ---- Builders for API JSON ----

std::string ServiceJson(const std::string& name, const std::string& resource_version,
                        const std::string& cluster_ip) {
  return absl::StrCat(R"({"kind":"Service","apiVersion":"v1","metadata":{"name":")", name,
                      R"(","namespace":"ns","resourceVersion":")", resource_version,
                      R"("},"spec":{"clusterIP":")", cluster_ip, R"(","ports":[{"port":80}]}})");
}
std::string ListJson(const std::string& resource_version, const std::vector<std::string>& items,
                     const std::string& continue_token = "") {
  return absl::StrCat(R"({"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":")", resource_version,
                      R"(","continue":")", continue_token, R"("},"items":[)", absl::StrJoin(items, ","),
                      "]}");
}
std::string EventJson(const std::string& type, const std::string& object) {
  return absl::StrCat(R"({"type":")", type, R"(","object":)", object, "}\n");
}
std::string BookmarkJson(const std::string& resource_version) {
  return EventJson("BOOKMARK",
                   absl::StrCat(R"({"kind":"Service","apiVersion":"v1","metadata":{"resourceVersion":")",
                                resource_version, R"("}})"));
}

// ---- Test doubles ----

// Records backoff delays instead of sleeping them (but yields a little, like a real retry).
class RecordingSleeper : public Sleeper {
 public:
  bool SleepFor(milliseconds duration) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      delays_.push_back(duration);
      if (interrupted_) return false;
    }
    std::this_thread::sleep_for(milliseconds(1));
    std::lock_guard<std::mutex> lock(mu_);
    return !interrupted_;
  }
  void Interrupt() override {
    std::lock_guard<std::mutex> lock(mu_);
    interrupted_ = true;
  }
  std::vector<milliseconds> delays() const {
    std::lock_guard<std::mutex> lock(mu_);
    return delays_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<milliseconds> delays_;
  bool interrupted_ = false;
};

// Everything the handlers saw, as "added ns/a@1", "updated ns/b@2", "deleted ns/c@1" (a delete
// shows the last version the cache held).
class ChangeLog {
 public:
  Informer<Service>::Handlers Handlers() {
    return {
        .on_object =
            [this](const ObjectChange<Service>& change) {
              const char* kind = change.kind == ObjectChange<Service>::Kind::kAdded     ? "added"
                                 : change.kind == ObjectChange<Service>::Kind::kUpdated ? "updated"
                                                                                        : "deleted";
              const Service& object = change.after != nullptr ? *change.after : *change.before;
              std::lock_guard<std::mutex> lock(mu_);
              entries_.push_back(absl::StrCat(kind, " ", change.key, "@", object.metadata.resource_version));
            },
        .on_change =
            [this] {
              std::lock_guard<std::mutex> lock(mu_);
              ++batches_;
              entries_at_batch_.push_back(entries_.size());
            }};
  }
  std::vector<std::string> entries() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_;
  }
  // The entries since `from`.
  std::vector<std::string> entries_from(size_t from) const {
    std::lock_guard<std::mutex> lock(mu_);
    return std::vector<std::string>(entries_.begin() + std::min(from, entries_.size()), entries_.end());
  }
  int batches() const {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> entries_;
  std::vector<size_t> entries_at_batch_;
  int batches_ = 0;
};

class InformerTest : public ::testing::Test {
 protected:
  std::unique_ptr<Informer<Service>> MakeInformer(const std::string& path = kServices) {
    absl::StatusOr<std::shared_ptr<KubeClient>> client = KubeClient::Create({.server = server_.url()});
    EXPECT_TRUE(client.ok()) << client.status();
    ReflectorOptions options;
    options.page_size = 2;
    options.min_watch_timeout = std::chrono::seconds(5);
    options.random = [] { return 0.5; };
    options.sleeper = sleeper_;
    // Scripted watches that close without events must count as failures even on a slow machine.
    options.min_healthy_watch = std::chrono::seconds(10);
    return std::make_unique<Informer<Service>>("services", *client, ResourceQuery{path}, ServiceFromJson,
                                               log_.Handlers(), options);
  }
  std::vector<RecordedRequest> Watches() const { return server_.Requests(kServices, /*watch=*/true); }
  // Waits for the `n`th watch request (1-based) and returns its resourceVersion.
  std::string WatchResourceVersion(size_t n) {
    EXPECT_TRUE(WaitFor([&] { return Watches().size() >= n; })) << "no watch #" << n;
    std::vector<RecordedRequest> watches = Watches();
    return watches.size() >= n ? watches[n - 1].param("resourceVersion") : "";
  }

  FakeApiServer server_;
  std::shared_ptr<RecordingSleeper> sleeper_ = std::make_shared<RecordingSleeper>();
  ChangeLog log_;
};

TEST_F(InformerTest, ListsAllPagesThenAppliesWatchEvents) {
  server_.OnList(kServices, [](const RecordedRequest& request) {
    return Reply{
        200, ReadTestData(request.param("continue").empty() ? "services_page1.json" : "services_page2.json")};
  });
  server_.QueueWatch(kServices, {.chunks = {ReadTestData("services_watch.jsonl")}});
  auto informer = MakeInformer();
  EXPECT_FALSE(informer->HasSynced());
  informer->Start();

  // The first watch starts where the list ended; the second where the stream's last event did.
  EXPECT_EQ(WatchResourceVersion(1), "1000");
  EXPECT_EQ(WatchResourceVersion(2), "1006");
  EXPECT_TRUE(informer->HasSynced());
  EXPECT_EQ(log_.entries(), (std::vector<std::string>{
                                "added default/kubernetes@196", "added kube-system/kube-dns@250",
                                "added shop/cart@880", "added shop/web@912",  // the list, both pages
                                "updated shop/web@1001", "added shop/api@1002", "deleted shop/cart@880"}));
  std::vector<Service> services = informer->List();
  ASSERT_EQ(services.size(), 4u);
  EXPECT_EQ(services[0].NamespacedName(), "default/kubernetes");
  EXPECT_EQ(services[1].NamespacedName(), "kube-system/kube-dns");
  EXPECT_EQ(services[2].NamespacedName(), "shop/api");
  EXPECT_EQ(services[3].NamespacedName(), "shop/web");
  EXPECT_EQ(services[3].ports.size(), 2u);
  EXPECT_EQ(informer->Get("shop/cart"), nullptr);
  EXPECT_EQ(informer->stats().resource_version, "1006");
  EXPECT_EQ(server_.CountRequests(kServices, /*watch=*/false), 2u);
  EXPECT_TRUE(sleeper_->delays().empty());  // nothing failed, nothing waited
  informer->Stop();
}

TEST_F(InformerTest, ResumesAfterACutFromTheLastCompleteEventWithoutDuplicates) {
  server_.SetList(kServices, {200, ListJson("10", {ServiceJson("a", "5", "10.96.0.1")})});
  const std::string update_a = EventJson("MODIFIED", ServiceJson("a", "11", "10.96.0.11"));
  const std::string add_b = EventJson("ADDED", ServiceJson("b", "12", "10.96.0.12"));
  const std::string add_c = EventJson("ADDED", ServiceJson("c", "13", "10.96.0.13"));
  // First stream: a's update whole, then half of b's event, then the connection drops.
  server_.QueueWatch(kServices, {.chunks = {update_a, add_b.substr(0, add_b.size() / 2)},
                                 .ending = WatchScript::Ending::kCut});
  // The server resumes after 11 (and, as servers may, repeats a's update: it must be a no-op).
  server_.QueueWatch(kServices, {.chunks = {update_a, add_b, add_c}});
  auto informer = MakeInformer();
  informer->Start();

  EXPECT_EQ(WatchResourceVersion(1), "10");
  EXPECT_EQ(WatchResourceVersion(2), "11");  // not 10 (would replay a), not 12 (would lose b)
  EXPECT_EQ(WatchResourceVersion(3), "13");
  EXPECT_EQ(log_.entries(),
            (std::vector<std::string>{"added ns/a@5", "updated ns/a@11", "added ns/b@12", "added ns/c@13"}));
  EXPECT_EQ(informer->size(), 3u);
  EXPECT_EQ(informer->stats().watch_failures, 1u);
  ASSERT_EQ(sleeper_->delays().size(), 1u);  // one backoff for the cut, from the base
  EXPECT_GE(sleeper_->delays()[0], milliseconds(100));
  EXPECT_LE(sleeper_->delays()[0], milliseconds(200));
  EXPECT_EQ(server_.CountRequests(kServices, /*watch=*/false), 1u);  // resumed, not relisted
}

TEST_F(InformerTest, ExpiredResourceVersionRelistsAndReconciles) {
  std::atomic<int> lists{0};
  server_.OnList(kServices, [&](const RecordedRequest&) {
    if (lists++ == 0) {
      return Reply{200,
                   ListJson("10", {ServiceJson("a", "1", "10.96.0.1"), ServiceJson("b", "1", "10.96.0.2"),
                                   ServiceJson("c", "1", "10.96.0.3")})};
    }
    // While the watch was gone: b changed, c was deleted, d was created.
    return Reply{200, ListJson("20", {ServiceJson("a", "1", "10.96.0.1"), ServiceJson("b", "2", "10.96.0.22"),
                                      ServiceJson("d", "3", "10.96.0.4")})};
  });
  // The watch runs a while (a bookmark), then the server says its history is gone.
  server_.QueueWatch(kServices, {.chunks = {BookmarkJson("15"), ReadTestData("watch_expired.jsonl")},
                                 .ending = WatchScript::Ending::kHang});
  auto informer = MakeInformer();
  informer->Start();
  ASSERT_TRUE(WaitFor([&] { return informer->HasSynced(); }));
  std::shared_ptr<const Service> a_before = informer->Get("ns/a");
  const size_t after_first_list = 3;

  EXPECT_EQ(WatchResourceVersion(2), "20");  // the relist's resourceVersion
  ASSERT_TRUE(WaitFor([&] { return log_.size() == after_first_list + 3; }));
  EXPECT_EQ(log_.entries_from(after_first_list),
            (std::vector<std::string>{"deleted ns/c@1", "updated ns/b@2", "added ns/d@3"}));
  EXPECT_EQ(informer->Get("ns/a"), a_before);  // unchanged version: not even decoded again
  EXPECT_EQ(informer->Get("ns/b")->cluster_ips[0].ToString(), "10.96.0.22");
  EXPECT_EQ(informer->Get("ns/c"), nullptr);
  EXPECT_EQ(informer->stats().expired, 1u);
  EXPECT_EQ(log_.batches(), 2);             // one per list
  EXPECT_TRUE(sleeper_->delays().empty());  // expiry is routine: relist at once
}

TEST_F(InformerTest, ExpiryRightAfterEachListBacksOffInsteadOfLoopingOnFullLists) {
  std::atomic<int> lists{0};
  server_.OnList(kServices, [&](const RecordedRequest&) {
    return Reply{200, ListJson(std::to_string(10 * ++lists), {ServiceJson("a", "1", "10.96.0.1")})};
  });
  for (int i = 0; i < 3; ++i)
    server_.QueueWatch(kServices, {.chunks = {ReadTestData("watch_expired.jsonl")}});
  server_.QueueWatch(kServices, {.chunks = {BookmarkJson("45"), ReadTestData("watch_expired.jsonl")}});
  server_.QueueWatch(kServices, {.chunks = {ReadTestData("watch_expired.jsonl")}});
  auto informer = MakeInformer();
  informer->Start();
  EXPECT_EQ(WatchResourceVersion(6), "60");
  std::vector<milliseconds> delays = sleeper_->delays();
  // Three relists forced at once: growing waits. The fourth watch made progress (a bookmark):
  // its expiry relists at once, and the next forced one starts from the base again.
  EXPECT_EQ(delays, (std::vector<milliseconds>{milliseconds(150), milliseconds(300), milliseconds(600),
                                               milliseconds(150)}));
  EXPECT_EQ(informer->stats().expired, 5u);
  EXPECT_EQ(log_.entries(), (std::vector<std::string>{"added ns/a@1"}));  // same object every time
}

TEST_F(InformerTest, ExpiredContinueTokenRestartsTheListWithoutApplyingHalfOfIt) {
  std::atomic<int> second_pages{0};
  server_.OnList(kServices, [&](const RecordedRequest& request) {
    if (request.param("continue").empty()) {
      return Reply{200,
                   ListJson("10", {ServiceJson("a", "1", "10.96.0.1"), ServiceJson("b", "1", "10.96.0.2")},
                            "token-1")};
    }
    if (second_pages++ == 0) return Reply{410, ReadTestData("list_continue_expired.json")};
    return Reply{200, ListJson("10", {ServiceJson("c", "1", "10.96.0.3")})};
  });
  auto informer = MakeInformer();
  informer->Start();
  ASSERT_TRUE(WaitFor([&] { return informer->HasSynced(); }));
  EXPECT_EQ(log_.entries(), (std::vector<std::string>{"added ns/a@1", "added ns/b@1", "added ns/c@1"}));
  EXPECT_EQ(log_.batches(), 1);
  EXPECT_EQ(server_.CountRequests(kServices, /*watch=*/false), 4u);
  EXPECT_EQ(informer->stats().list_failures, 1u);
}

TEST_F(InformerTest, BookmarksAdvanceTheResourceVersionWithoutChanges) {
  server_.SetList(kServices, {200, ListJson("10", {ServiceJson("a", "5", "10.96.0.1")})});
  server_.QueueWatch(kServices, {.chunks = {BookmarkJson("55")}});
  server_.QueueWatch(kServices, {.chunks = {BookmarkJson("77")}});
  auto informer = MakeInformer();
  informer->Start();
  EXPECT_EQ(WatchResourceVersion(1), "10");
  EXPECT_EQ(WatchResourceVersion(2), "55");
  EXPECT_EQ(WatchResourceVersion(3), "77");
  EXPECT_EQ(log_.batches(), 1);  // the list only
  EXPECT_EQ(log_.size(), 1u);
  EXPECT_TRUE(sleeper_->delays().empty());
}

TEST_F(InformerTest, BadObjectsAreSkippedAndNeverEvictGoodOnes) {
  server_.SetList(
      kServices, {200, ListJson("10", {ServiceJson("a", "1", "10.96.0.1"), ServiceJson("b", "1", "not-an-ip"),
                                       R"({"kind":"Service","metadata":{"namespace":"ns"}})",
                                       ServiceJson("c", "1", "10.96.0.3")})});
  server_.QueueWatch(
      kServices,
      {.chunks = {
           EventJson("MODIFIED", ServiceJson("a", "11", "999.1.1.1")),  // a turns bad: keep a@1
           EventJson("MODIFIED", ServiceJson("c", "12", "10.96.0.33")),
           EventJson("ADDED", R"({"kind":"Service","metadata":{"resourceVersion":"13"}})"),  // nameless
           EventJson("MODIFIED", ServiceJson("b", "14", "10.96.0.2")),  // b is fixed: now it exists
       }});
  server_.QueueWatch(kServices, {.chunks = {EventJson("DELETED", ServiceJson("a", "15", "999.1.1.1"))}});
  auto informer = MakeInformer();
  informer->Start();
  ASSERT_TRUE(WaitFor([&] { return informer->HasSynced(); }));
  EXPECT_EQ(WatchResourceVersion(2), "14");
  EXPECT_EQ(WatchResourceVersion(3), "15");
  EXPECT_EQ(log_.entries(), (std::vector<std::string>{"added ns/a@1", "added ns/c@1", "updated ns/c@12",
                                                      "added ns/b@14", "deleted ns/a@1"}));
  EXPECT_EQ(informer->size(), 2u);
  EXPECT_EQ(informer->undecodable(), 0u);
}

TEST_F(InformerTest, AGoodObjectTurnedBadSurvivesARelistAtItsLastGoodVersion) {
  std::atomic<int> lists{0};
  server_.OnList(kServices, [&](const RecordedRequest&) {
    if (lists++ == 0) return Reply{200, ListJson("10", {ServiceJson("a", "1", "10.96.0.1")})};
    return Reply{200, ListJson("20", {ServiceJson("a", "2", "bad"), ServiceJson("z", "3", "also-bad")})};
  });
  server_.QueueWatch(kServices, {.chunks = {ReadTestData("watch_expired.jsonl")}});
  auto informer = MakeInformer();
  informer->Start();
  EXPECT_EQ(WatchResourceVersion(2), "20");
  ASSERT_NE(informer->Get("ns/a"), nullptr);
  EXPECT_EQ(informer->Get("ns/a")->metadata.resource_version, "1");
  EXPECT_EQ(informer->size(), 1u);
  EXPECT_EQ(informer->undecodable(), 1u);  // z
  EXPECT_EQ(log_.entries(), (std::vector<std::string>{"added ns/a@1"}));
}

TEST_F(InformerTest, BackoffGrowsOnRepeatedFailuresAndResetsOnSuccess) {
  std::atomic<int> lists{0};
  server_.OnList(kServices, [&](const RecordedRequest&) {
    if (lists++ < 4)
      return Reply{500, R"({"kind":"Status","code":500,"message":"etcdserver: leader changed"})"};
    return Reply{200, ListJson("10", {ServiceJson("a", "1", "10.96.0.1")})};
  });
  for (int i = 0; i < 3; ++i) server_.QueueWatch(kServices, {.status = 503, .error_body = "unavailable"});
  server_.QueueWatch(kServices, {.chunks = {EventJson("MODIFIED", ServiceJson("a", "11", "10.96.0.11"))},
                                 .ending = WatchScript::Ending::kCut});
  server_.QueueWatch(kServices, {.ending = WatchScript::Ending::kCut});  // cut before any event
  auto informer = MakeInformer();
  informer->Start();
  ASSERT_TRUE(WaitFor([&] { return Watches().size() >= 6; }));
  informer->Stop();

  std::vector<milliseconds> delays = sleeper_->delays();
  ASSERT_GE(delays.size(), 9u);
  auto expect_between = [&](size_t i, int64_t low, int64_t high) {
    EXPECT_GE(delays[i].count(), low) << "delay " << i;
    EXPECT_LE(delays[i].count(), high) << "delay " << i;
  };
  // Four failed lists: 200 ms doubling (random 0.5 lands mid-range).
  expect_between(0, 100, 200);
  expect_between(1, 200, 400);
  expect_between(2, 400, 800);
  expect_between(3, 800, 1600);
  // The list succeeded: three failed watches start over from the base.
  expect_between(4, 100, 200);
  expect_between(5, 200, 400);
  expect_between(6, 400, 800);
  // A watch delivered an event before its cut: back to the base; the next cut doubles again.
  expect_between(7, 100, 200);
  expect_between(8, 200, 400);
  EXPECT_EQ(WatchResourceVersion(6), "11");
}

TEST_F(InformerTest, WatchesThatEndAtOnceWithoutEventsBackOff) {
  server_.SetList(kServices, {200, ListJson("10", {})});
  for (int i = 0; i < 3; ++i) server_.QueueWatch(kServices, {.chunks = {}});
  auto informer = MakeInformer();
  informer->Start();
  ASSERT_TRUE(WaitFor([&] { return Watches().size() >= 4; }));
  informer->Stop();
  EXPECT_GE(sleeper_->delays().size(), 3u);
  EXPECT_TRUE(informer->HasSynced());
  EXPECT_EQ(log_.batches(), 1);  // an empty first list is still announced
}

TEST_F(InformerTest, StopInterruptsAQuietWatchPromptly) {
  server_.SetList(kServices, {200, ListJson("10", {ServiceJson("a", "1", "10.96.0.1")})});
  auto informer = MakeInformer();
  informer->Start();
  ASSERT_TRUE(WaitFor([&] { return Watches().size() == 1; }));
  std::this_thread::sleep_for(milliseconds(50));  // let the watch settle into its read
  const auto started = std::chrono::steady_clock::now();
  informer->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  informer->Stop();                 // idempotent
  EXPECT_EQ(informer->size(), 1u);  // the cache stays readable
}

TEST(InformerStopTest, StopInterruptsARealBackoffSleep) {
  FakeApiServer server;
  server.SetList(kServices, {500, "{}"});
  auto client = KubeClient::Create({.server = server.url()});
  ASSERT_TRUE(client.ok());
  ReflectorOptions options;
  options.backoff.base = std::chrono::seconds(20);
  options.backoff.cap = std::chrono::seconds(60);
  Informer<Service> informer("services", *client, ServicesResource(), ServiceFromJson, {}, options);
  informer.Start();
  ASSERT_TRUE(WaitFor([&] { return informer.stats().list_failures == 1; }));
  const auto started = std::chrono::steady_clock::now();
  informer.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  EXPECT_FALSE(informer.HasSynced());
}

TEST(KubeSourceTest, SyncsEveryCollectionAndSignalsChanges) {
  FakeApiServer server;
  server.OnList(kServices, [](const RecordedRequest& request) {
    return Reply{
        200, ReadTestData(request.param("continue").empty() ? "services_page1.json" : "services_page2.json")};
  });
  server.SetList("/apis/discovery.k8s.io/v1/endpointslices", {200, ReadTestData("endpointslices_list.json")});
  server.SetList("/api/v1/nodes",
                 {200, ListJson("5", {R"({"metadata":{"name":"node-a","resourceVersion":"4",)"
                                      R"("labels":{"topology.kubernetes.io/zone":"zone-1"}},)"
                                      R"("spec":{"podCIDRs":["10.244.1.0/24"]}})"})});
  server.SetList("/api/v1/pods", {200, ReadTestData("pods_node_a.json")});
  server.SetList("/api/v1/namespaces",
                 {200, ListJson("6", {R"({"metadata":{"name":"shop","resourceVersion":"2",)"
                                      R"("labels":{"team":"retail"}}})"})});
  server.SetList(
      "/apis/networking.k8s.io/v1/networkpolicies",
      {200, ListJson("7", {R"({"metadata":{"name":"deny","namespace":"shop","resourceVersion":"3"},)"
                           R"("spec":{"podSelector":{},"policyTypes":["Ingress"]}})"})});
  auto client = KubeClient::Create({.server = server.url()});
  ASSERT_TRUE(client.ok());
  KubeSource source(*client, {});
  EXPECT_FALSE(source.HasSynced());
  source.Start();
  ASSERT_TRUE(WaitFor([&] { return source.HasSynced(); }));
  EXPECT_TRUE(source.WaitForChange(milliseconds(1000)));

  ObjectSet snapshot = source.Snapshot();
  EXPECT_EQ(snapshot.services.size(), 4u);
  ASSERT_EQ(snapshot.slices.size(), 1u);  // cart-zz999 has an invalid address
  EXPECT_EQ(snapshot.slices[0].ServiceName(), "web");
  EXPECT_EQ(snapshot.skipped, 1u);
  ASSERT_EQ(snapshot.nodes.size(), 1u);
  EXPECT_EQ(snapshot.nodes[0].Zone(), "zone-1");

  ASSERT_TRUE(WaitFor([&] {
    return source.pods()->HasSynced() && source.network_policies()->HasSynced() &&
           source.namespaces()->HasSynced();
  }));
  EXPECT_EQ(source.pods()->size(), 3u);
  std::vector<RecordedRequest> pod_lists = server.Requests("/api/v1/pods", /*watch=*/false);
  ASSERT_FALSE(pod_lists.empty());
  EXPECT_EQ(pod_lists[0].param("fieldSelector"), "");  // every node's pods: peers need identities
  EXPECT_EQ(source.namespaces()->Get("shop")->metadata.labels.at("team"), "retail");
  EXPECT_TRUE(source.network_policies()->Get("shop/deny")->ingress_type);
  EXPECT_FALSE(source.network_policies()->Get("shop/deny")->egress_type);
  source.Stop();
}

std::string SliceJson(const std::string& name, const std::string& resource_version,
                      const std::string& service, const std::string& address) {
  return absl::StrCat(R"({"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":")",
                      name, R"(","namespace":"ns","resourceVersion":")", resource_version,
                      R"(","labels":{"kubernetes.io/service-name":")", service,
                      R"("}},"addressType":"IPv4","endpoints":[{"addresses":[")", address,
                      R"("]}],"ports":[{"port":8080,"protocol":"TCP"}]})");
}

std::vector<std::string> Describe(const KubeSource::Changes& changes) {
  std::vector<std::string> lines;
  for (const ServiceObjects& objects : changes.services) {
    std::string line = absl::StrCat(objects.ref.ToString(), objects.service ? "" : " (deleted)", ":");
    for (const EndpointSlice& slice : objects.slices) absl::StrAppend(&line, " ", slice.metadata.name);
    lines.push_back(line);
  }
  return lines;
}

TEST(KubeSourceTest, ReportsTheServicesWhoseServiceOrSlicesChanged) {
  constexpr char kSlices[] = "/apis/discovery.k8s.io/v1/endpointslices";
  FakeApiServer server;
  server.SetList(kServices,
                 {200, ListJson("10", {ServiceJson("a", "1", "10.96.0.1"), ServiceJson("b", "2", "10.96.0.2"),
                                       ServiceJson("c", "3", "10.96.0.3")})});
  server.SetList(
      kSlices,
      {200,
       ListJson("10", {SliceJson("a-2", "4", "a", "10.0.0.2"), SliceJson("a-1", "5", "a", "10.0.0.1"),
                       SliceJson("c-2", "6", "c", "10.0.0.4"), SliceJson("c-1", "7", "c", "10.0.0.3")})});
  server.SetList("/api/v1/nodes", {200, ListJson("5", {})});
  // a-1 moves from a to b, then Service a goes; c and its slice are left alone.
  server.QueueWatch(kSlices, {.chunks = {EventJson("MODIFIED", SliceJson("a-1", "11", "b", "10.0.0.1"))},
                              .ending = WatchScript::Ending::kHang});
  server.QueueWatch(kServices, {.chunks = {EventJson("DELETED", ServiceJson("a", "12", "10.96.0.1"))},
                                .ending = WatchScript::Ending::kHang});
  auto client = KubeClient::Create({.server = server.url()});
  ASSERT_TRUE(client.ok());
  KubeSource source(*client, {.watch_policy_objects = false});
  source.Start();
  ASSERT_TRUE(WaitFor([&] { return source.HasSynced(); }));
  ASSERT_TRUE(WaitFor([&] { return source.services().Get("ns/a") == nullptr; }));
  ASSERT_TRUE(WaitFor([&] { return source.endpoint_slices().Get("ns/a-1")->ServiceName() == "b"; }));
  // Everything since the start, each Service once, with its slices as they are now, in name order.
  EXPECT_THAT(Describe(source.TakeChanges()),
              ::testing::ElementsAre("ns/a (deleted): a-2", "ns/b: a-1", "ns/c: c-1 c-2"));
  EXPECT_THAT(Describe(source.TakeChanges()), ::testing::IsEmpty());
  source.Stop();
}

TEST(KubeSourceTest, ReportsEachChangedPolicyObjectWithItsCurrentVersion) {
  auto pod = [](const std::string& name, const std::string& version, const std::string& app) {
    return absl::StrCat(R"({"metadata":{"name":")", name, R"(","namespace":"x","resourceVersion":")", version,
                        R"(","labels":{"app":")", app, R"("}},"spec":{"nodeName":"node-b"}})");
  };
  FakeApiServer server;
  server.SetList(kServices, {200, ListJson("1", {})});
  server.SetList("/apis/discovery.k8s.io/v1/endpointslices", {200, ListJson("1", {})});
  server.SetList("/api/v1/nodes", {200, ListJson("1", {})});
  server.SetList("/api/v1/namespaces", {200, ListJson("1", {})});
  server.SetList("/apis/networking.k8s.io/v1/networkpolicies", {200, ListJson("1", {})});
  // Pods of every node; one that does not decode is skipped and counted.
  server.SetList("/api/v1/pods", {200, ListJson("10", {pod("a", "2", "a"), pod("b", "3", "b"),
                                                       R"({"metadata":{"name":"bad","namespace":"x"},)"
                                                       R"("status":{"podIP":"nope"}})"})});
  server.QueueWatch("/api/v1/pods", {.chunks = {EventJson("MODIFIED", pod("a", "11", "a2")),
                                                EventJson("DELETED", pod("b", "12", "b"))},
                                     .ending = WatchScript::Ending::kHang});
  auto client = KubeClient::Create({.server = server.url()});
  ASSERT_TRUE(client.ok());
  KubeSource source(*client, {});
  source.Start();
  ASSERT_TRUE(WaitFor([&] { return source.HasSynced(); }));
  ASSERT_TRUE(WaitFor([&] { return source.pods()->Get("x/b") == nullptr; }));
  KubeSource::Changes changes = source.TakeChanges();
  std::vector<std::string> described;
  for (const KeyedObject<Pod>& change : changes.pods) {
    described.push_back(change.key +
                        (change.object ? " app=" + change.object->metadata.labels.at("app") : " deleted"));
  }
  EXPECT_THAT(described, ::testing::ElementsAre("x/a app=a2", "x/b deleted"));
  EXPECT_EQ(source.Snapshot().skipped, 1u);
  EXPECT_TRUE(source.TakeChanges().pods.empty());
  source.Stop();
}

}  // namespace
}  // namespace weir::k8s
