// The type-agnostic API calls (list pages, watch streams), their line splitting and error
// mapping, and the backoff that paces their retries.
#include "proxy/k8s/kube_list_watch.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "proxy/k8s/kube_backoff.h"
#include "proxy/k8s/kube_json.h"
#include "unit/kube_fake_apiserver.h"

namespace weir::k8s {
namespace {

using testing::FakeApiServer;
using testing::ReadTestData;
using testing::RecordedRequest;
using testing::Reply;
using testing::WatchScript;

std::shared_ptr<KubeClient> ClientFor(const FakeApiServer& server) {
  absl::StatusOr<std::shared_ptr<KubeClient>> client =
      KubeClient::Create({.server = server.url(), .token = "t0k3n"});
  EXPECT_TRUE(client.ok()) << client.status();
  return *client;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// ---- LineSplitter ----

TEST(LineSplitterTest, ReassemblesLinesAcrossEverySplitPoint) {
  const std::string stream = "{\"a\":1}\n{\"b\":22}\r\n\n{\"c\":333}\n";
  const std::vector<std::string> expected = {"{\"a\":1}", "{\"b\":22}", "{\"c\":333}"};
  for (size_t first = 0; first <= stream.size(); ++first) {
    for (size_t second = first; second <= stream.size(); ++second) {
      LineSplitter splitter(1024);
      std::vector<std::string> lines;
      auto collect = [&](std::string_view line) {
        lines.emplace_back(line);
        return true;
      };
      ASSERT_TRUE(splitter.Feed(std::string_view(stream).substr(0, first), collect));
      ASSERT_TRUE(splitter.Feed(std::string_view(stream).substr(first, second - first), collect));
      ASSERT_TRUE(splitter.Feed(std::string_view(stream).substr(second), collect));
      EXPECT_EQ(lines, expected) << "split at " << first << " and " << second;
      EXPECT_EQ(splitter.pending(), 0u);
    }
  }
}

TEST(LineSplitterTest, KeepsAPartialLineAndRejectsOverlongOnes) {
  LineSplitter splitter(8);
  int lines = 0;
  auto count = [&](std::string_view) { return ++lines, true; };
  EXPECT_TRUE(splitter.Feed("12345\n123", count));
  EXPECT_EQ(lines, 1);
  EXPECT_EQ(splitter.pending(), 3u);
  EXPECT_FALSE(splitter.Feed("456789", count));  // 9 bytes and no newline yet
  LineSplitter stopping(64);
  EXPECT_FALSE(stopping.Feed("a\nb\n", [](std::string_view) { return false; }));
}

// ---- Backoff ----

TEST(BackoffTest, DoublesWithinJitterBoundsUpToTheCapAndResets) {
  double fraction = 0.0;
  Backoff backoff({}, [&] { return fraction; });
  // Lowest draws: half of 200 ms doubling; the ceiling stops at 30 s.
  std::vector<int64_t> low;
  for (int i = 0; i < 10; ++i) low.push_back(backoff.Next().count());
  EXPECT_EQ(low, (std::vector<int64_t>{100, 200, 400, 800, 1600, 3200, 6400, 12800, 15000, 15000}));
  backoff.Reset();
  fraction = 0.999999;
  std::vector<int64_t> high;
  for (int i = 0; i < 10; ++i) high.push_back(backoff.Next().count());
  EXPECT_EQ(high, (std::vector<int64_t>{199, 399, 799, 1599, 3199, 6399, 12799, 25599, 29999, 29999}));
  for (int i = 0; i < 100; ++i) EXPECT_LE(backoff.Next().count(), 30'000);  // no overflow, ever
  backoff.Reset();
  EXPECT_EQ(backoff.failures(), 0);
  EXPECT_LT(backoff.Next().count(), 200);
}

TEST(BackoffTest, DefaultRandomStaysInRange) {
  Backoff backoff({});
  for (int round = 0; round < 50; ++round) {
    backoff.Reset();
    const int64_t first = backoff.Next().count();
    EXPECT_GE(first, 100);
    EXPECT_LE(first, 200);
  }
}

TEST(RealSleeperTest, InterruptWakesAndSticks) {
  RealSleeper sleeper;
  EXPECT_TRUE(sleeper.SleepFor(std::chrono::milliseconds(1)));
  std::thread interrupter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    sleeper.Interrupt();
  });
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(sleeper.SleepFor(std::chrono::seconds(30)));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  interrupter.join();
  EXPECT_FALSE(sleeper.SleepFor(std::chrono::seconds(30)));
}

// ---- JSON helpers and errors ----

TEST(KubeJsonTest, JsonToYamlMatchesYamlLoad) {
  const std::string text =
      R"({"s":"x","i":-7,"u":18446744073709551615,"d":1.5,"t":true,"f":false,"n":null,"a":[1,"two",{"k":"v"}],"o":{}})";
  absl::StatusOr<rapidjson::Document> json = ParseJson(text);
  ASSERT_TRUE(json.ok()) << json.status();
  YAML::Node converted = JsonToYaml(*json);
  YAML::Node loaded = YAML::Load(text);
  for (const char* key : {"s", "i", "u", "d", "t", "f"}) {
    EXPECT_EQ(converted[key].Scalar(), loaded[key].Scalar()) << key;
  }
  EXPECT_TRUE(converted["n"].IsNull());
  ASSERT_TRUE(converted["a"].IsSequence());
  EXPECT_EQ(converted["a"][1].Scalar(), "two");
  EXPECT_EQ(converted["a"][2]["k"].Scalar(), "v");
  EXPECT_TRUE(converted["o"].IsMap());
  EXPECT_EQ(converted["t"].as<bool>(), true);
}

TEST(KubeJsonTest, IdentityAndStatus) {
  auto identity =
      IdentityOf(*ParseJson(R"({"metadata":{"name":"web","namespace":"shop","resourceVersion":"7"}})"));
  ASSERT_TRUE(identity.ok());
  EXPECT_EQ(identity->key, "shop/web");
  EXPECT_EQ(identity->resource_version, "7");
  EXPECT_EQ(IdentityOf(*ParseJson(R"({"metadata":{"name":"node-a"}})"))->key, "node-a");
  EXPECT_FALSE(IdentityOf(*ParseJson(R"({"metadata":{}})")).ok());
  EXPECT_FALSE(IdentityOf(*ParseJson(R"([])")).ok());

  std::optional<ApiStatus> status = ApiStatusOf(*ParseJson(ReadTestData("list_continue_expired.json")));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code, 410);
  EXPECT_EQ(status->reason, "Expired");
  EXPECT_FALSE(ApiStatusOf(*ParseJson(R"({"kind":"Service"})")).has_value());
  EXPECT_FALSE(ParseJson("{\"a\":").ok());
}

TEST(HttpErrorTest, MapsCodesAndQuotesTheApiMessage) {
  absl::Status expired = HttpError("list x", 410, ReadTestData("list_continue_expired.json"));
  EXPECT_TRUE(IsResourceExpired(expired));
  EXPECT_NE(expired.message().find("continue parameter is too old"), absl::string_view::npos);
  EXPECT_EQ(HttpError("x", 401, "").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(
      HttpError("x", 403, R"({"kind":"Status","code":403,"message":"forbidden: cannot list"})").message(),
      "x: HTTP 403: forbidden: cannot list");
  EXPECT_EQ(HttpError("x", 404, "").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(HttpError("x", 429, "").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(HttpError("x", 503, "busy").code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(IsResourceExpired(HttpError("x", 500, "")));
}

// ---- Lists ----

TEST(ListPageTest, FollowsContinueTokensWithTheSameSelectors) {
  FakeApiServer server;
  server.OnList("/api/v1/pods", [](const RecordedRequest& request) {
    if (request.param("continue").empty()) return Reply{200, ReadTestData("services_page1.json")};
    return Reply{200, ReadTestData("services_page2.json")};
  });
  std::shared_ptr<KubeClient> client = ClientFor(server);
  const ResourceQuery query{"/api/v1/pods", "spec.nodeName=node-a", "app in (web,cart)"};

  absl::StatusOr<ListPage> first = ListPageOf(*client, query, 2, "");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->items().Size(), 2u);
  EXPECT_EQ(first->resource_version, "1000");
  ASSERT_FALSE(first->continue_token.empty());
  absl::StatusOr<ListPage> second = ListPageOf(*client, query, 2, first->continue_token);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->items().Size(), 2u);
  EXPECT_EQ(second->continue_token, "");

  std::vector<RecordedRequest> requests = server.Requests("/api/v1/pods", /*watch=*/false);
  ASSERT_EQ(requests.size(), 2u);
  for (const RecordedRequest& request : requests) {
    EXPECT_EQ(request.param("limit"), "2");
    EXPECT_EQ(request.param("fieldSelector"), "spec.nodeName=node-a");
    EXPECT_EQ(request.param("labelSelector"), "app in (web,cart)");
    EXPECT_EQ(request.authorization, "Bearer t0k3n");
  }
  EXPECT_EQ(requests[0].param("continue"), "");
  // The token survives URL encoding intact (it is base64 with '=' and '/' in general).
  EXPECT_EQ(requests[1].param("continue"), first->continue_token);
}

TEST(ListPageTest, ErrorsAndEmptyLists) {
  FakeApiServer server;
  server.SetList("/gone", {410, ReadTestData("list_continue_expired.json")});
  server.SetList("/garbage", {200, "{not json"});
  server.SetList("/empty", {200, R"({"kind":"List","metadata":{"resourceVersion":"5"},"items":null})"});
  std::shared_ptr<KubeClient> client = ClientFor(server);
  EXPECT_TRUE(IsResourceExpired(ListPageOf(*client, {"/gone"}, 500, "stale").status()));
  EXPECT_EQ(ListPageOf(*client, {"/garbage"}, 500, "").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ListPageOf(*client, {"/nothing-here"}, 500, "").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<ListPage> empty = ListPageOf(*client, {"/empty"}, 500, "");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->items().Size(), 0u);
  EXPECT_EQ(empty->resource_version, "5");
}

TEST(ListPageTest, UnreachableServerIsUnavailable) {
  int port = 0;
  {
    FakeApiServer server;  // a port that was just free
    port = std::stoi(server.url().substr(server.url().rfind(':') + 1));
  }
  auto client = KubeClient::Create({.server = "http://127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(ListPageOf(**client, {"/api/v1/services"}, 500, "").status().code(),
            absl::StatusCode::kUnavailable);
}

// ---- Watches ----

struct SeenEvent {
  WatchEventType type;
  std::string key;
  std::string resource_version;
  bool operator==(const SeenEvent&) const = default;
};

struct WatchRun {
  absl::StatusOr<WatchEnd> end = absl::UnknownError("not run");
  std::vector<SeenEvent> events;
  int bursts = 0;
};

WatchRun RunWatch(KubeClient& client, const std::string& path, const std::string& resource_version) {
  WatchRun run;
  WatchHandler handler;
  handler.on_event = [&](WatchEventType type, const rapidjson::Value& object) {
    const rapidjson::Value& metadata = *JsonMember(object, "metadata");
    run.events.push_back(
        {type,
         std::string(JsonString(metadata, "namespace")) + "/" + std::string(JsonString(metadata, "name")),
         std::string(JsonString(metadata, "resourceVersion"))});
    return true;
  };
  handler.on_burst_end = [&] { ++run.bursts; };
  run.end = Watch(client, {path}, resource_version, {.timeout = std::chrono::seconds(5)}, handler);
  return run;
}

TEST(WatchTest, EventsSplitMidJsonAcrossChunksArriveWhole) {
  FakeApiServer server;
  const std::string stream = ReadTestData("services_watch.jsonl");
  // Cut the stream into 97-byte chunks: every event spans several reads, most reads end mid-JSON.
  WatchScript script;
  for (size_t i = 0; i < stream.size(); i += 97) script.chunks.push_back(stream.substr(i, 97));
  script.gap = std::chrono::milliseconds(2);
  server.QueueWatch("/api/v1/services", script);
  std::shared_ptr<KubeClient> client = ClientFor(server);

  WatchRun run = RunWatch(*client, "/api/v1/services", "1000");
  ASSERT_TRUE(run.end.ok()) << run.end.status();
  EXPECT_EQ(*run.end, WatchEnd::kServerClosed);
  EXPECT_EQ(run.events, (std::vector<SeenEvent>{{WatchEventType::kModified, "shop/web", "1001"},
                                                {WatchEventType::kAdded, "shop/api", "1002"},
                                                {WatchEventType::kBookmark, "/", "1005"},
                                                {WatchEventType::kDeleted, "shop/cart", "1006"}}));
  EXPECT_GT(run.bursts, 1);
  std::vector<RecordedRequest> requests = server.Requests("/api/v1/services", /*watch=*/true);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].param("resourceVersion"), "1000");
  EXPECT_EQ(requests[0].param("allowWatchBookmarks"), "true");
  EXPECT_EQ(requests[0].param("timeoutSeconds"), "5");
}

TEST(WatchTest, AStreamCutMidEventDeliversOnlyCompleteEvents) {
  FakeApiServer server;
  const std::vector<std::string> lines = Lines(ReadTestData("services_watch.jsonl"));
  server.QueueWatch("/api/v1/services", {.chunks = {lines[0] + "\n", lines[1].substr(0, 120)},
                                         .ending = WatchScript::Ending::kCut});
  std::shared_ptr<KubeClient> client = ClientFor(server);
  WatchRun run = RunWatch(*client, "/api/v1/services", "1000");
  EXPECT_EQ(run.end.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(run.end.status().message().find("discarded 120 bytes"), absl::string_view::npos)
      << run.end.status();
  EXPECT_EQ(run.events, (std::vector<SeenEvent>{{WatchEventType::kModified, "shop/web", "1001"}}));
}

TEST(WatchTest, AStreamClosedMidEventIsNotACleanEnd) {
  FakeApiServer server;
  const std::vector<std::string> lines = Lines(ReadTestData("services_watch.jsonl"));
  server.QueueWatch("/api/v1/services", {.chunks = {lines[0] + "\n" + lines[1].substr(0, 50)}});
  std::shared_ptr<KubeClient> client = ClientFor(server);
  WatchRun run = RunWatch(*client, "/api/v1/services", "1000");
  EXPECT_EQ(run.end.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(run.events.size(), 1u);
}

TEST(WatchTest, ExpiredErrorEventAnd410Response) {
  FakeApiServer server;
  const std::vector<std::string> lines = Lines(ReadTestData("services_watch.jsonl"));
  server.QueueWatch("/api/v1/services", {.chunks = {lines[0] + "\n", ReadTestData("watch_expired.jsonl")},
                                         .ending = WatchScript::Ending::kHang});
  server.QueueWatch("/api/v1/services",
                    {.status = 410, .error_body = ReadTestData("list_continue_expired.json")});
  std::shared_ptr<KubeClient> client = ClientFor(server);

  WatchRun run = RunWatch(*client, "/api/v1/services", "1000");
  EXPECT_TRUE(IsResourceExpired(run.end.status())) << run.end.status();
  EXPECT_NE(run.end.status().message().find("too old resource version"), absl::string_view::npos);
  EXPECT_EQ(run.events.size(), 1u);

  run = RunWatch(*client, "/api/v1/services", "1000");
  EXPECT_TRUE(IsResourceExpired(run.end.status())) << run.end.status();
}

TEST(WatchTest, OtherErrorEventsAndGarbageLinesEndTheWatch) {
  FakeApiServer server;
  server.QueueWatch(
      "/x", {.chunks = {R"({"type":"ERROR","object":{"kind":"Status","code":500,"message":"etcd down"}})"
                        "\n"},
             .ending = WatchScript::Ending::kHang});
  server.QueueWatch("/x", {.chunks = {"this is not json\n"}, .ending = WatchScript::Ending::kHang});
  server.QueueWatch("/x", {.chunks = {R"({"type":"ADDED"})"
                                      "\n"},
                           .ending = WatchScript::Ending::kHang});
  server.QueueWatch("/x", {.chunks = {R"({"type":"SURPRISE","object":{}})"
                                      "\n"}});
  std::shared_ptr<KubeClient> client = ClientFor(server);
  WatchRun run = RunWatch(*client, "/x", "1");
  EXPECT_EQ(run.end.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(run.end.status().message().find("etcd down"), absl::string_view::npos);
  EXPECT_EQ(RunWatch(*client, "/x", "1").end.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(RunWatch(*client, "/x", "1").end.status().code(), absl::StatusCode::kDataLoss);
  run = RunWatch(*client, "/x", "1");  // unknown event types are skipped, not fatal
  EXPECT_TRUE(run.end.ok()) << run.end.status();
  EXPECT_TRUE(run.events.empty());
}

TEST(WatchTest, CancellationFromAnotherThreadEndsAQuietWatch) {
  FakeApiServer server;  // no scripts: the watch hangs
  std::shared_ptr<KubeClient> client = ClientFor(server);
  RequestCanceller canceller;
  std::thread stopper([&] {
    testing::WaitFor([&] { return server.CountRequests("/quiet", true) == 1; });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    canceller.Cancel();
  });
  const auto started = std::chrono::steady_clock::now();
  WatchHandler handler{.on_event = [](WatchEventType, const rapidjson::Value&) { return true; }};
  absl::StatusOr<WatchEnd> end =
      Watch(*client, {"/quiet"}, "1", {.timeout = std::chrono::seconds(60)}, handler, &canceller);
  stopper.join();
  EXPECT_EQ(end.status().code(), absl::StatusCode::kCancelled) << end.status();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  // A cancelled canceller refuses new requests outright.
  EXPECT_EQ(ListPageOf(*client, {"/quiet"}, 1, "", &canceller).status().code(), absl::StatusCode::kCancelled);
}

TEST(TargetTest, EncodesValuesAndSkipsEmptyOnes) {
  EXPECT_EQ(
      Target("/api/v1/pods", {{"limit", "500"}, {"continue", ""}, {"fieldSelector", "spec.nodeName=a b"}}),
      "/api/v1/pods?limit=500&fieldSelector=spec.nodeName%3Da%20b");
  EXPECT_EQ(Target("/x", {}), "/x");
  EXPECT_EQ(UrlEncode("a+b/c=~_-."), "a%2Bb%2Fc%3D~_-.");
}

}  // namespace
}  // namespace weir::k8s
