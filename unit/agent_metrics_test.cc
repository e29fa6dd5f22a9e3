#include "proxy/agent/metrics.h"

#include <httplib.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/agent/http_server.h"

namespace weir::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(AgentMetricsTest, RendersCounterWithHelpAndType) {
  Metrics metrics;
  metrics.GetCounter("weir_syncs_total", "Completed syncs.").Increment();
  metrics.GetCounter("weir_syncs_total", "Completed syncs.").Increment(2);
  EXPECT_EQ(metrics.Render(),
            "# HELP weir_syncs_total Completed syncs.\n"
            "# TYPE weir_syncs_total counter\n"
            "weir_syncs_total 3\n");
}

TEST(AgentMetricsTest, CounterIgnoresNegativeAndNaN) {
  Metrics metrics;
  Counter& counter = metrics.GetCounter("c_total", "c");
  counter.Increment(5);
  counter.Increment(-2);
  counter.Increment(std::nan(""));
  EXPECT_EQ(counter.Value(), 5);
}

TEST(AgentMetricsTest, GaugeSetAndAdd) {
  Metrics metrics;
  Gauge& gauge = metrics.GetGauge("weir_conntrack_entries", "Entries in the conntrack map.");
  gauge.Set(10);
  gauge.Add(-2.5);
  EXPECT_EQ(metrics.Render(),
            "# HELP weir_conntrack_entries Entries in the conntrack map.\n"
            "# TYPE weir_conntrack_entries gauge\n"
            "weir_conntrack_entries 7.5\n");
}

TEST(AgentMetricsTest, LabelledSeriesAreSortedAndEscaped) {
  Metrics metrics;
  metrics.GetCounter("weir_sync_errors_total", "Failed syncs.", {{"stage", "reconcile"}}).Increment();
  metrics.GetCounter("weir_sync_errors_total", "Failed syncs.", {{"stage", "decode"}, {"kind", "a\"b\\c\nd"}})
      .Increment(4);
  EXPECT_EQ(metrics.Render(),
            "# HELP weir_sync_errors_total Failed syncs.\n"
            "# TYPE weir_sync_errors_total counter\n"
            "weir_sync_errors_total{kind=\"a\\\"b\\\\c\\nd\",stage=\"decode\"} 4\n"
            "weir_sync_errors_total{stage=\"reconcile\"} 1\n");
}

TEST(AgentMetricsTest, HelpEscapesBackslashAndNewline) {
  Metrics metrics;
  metrics.GetGauge("g", "line one\nback\\slash \"quoted\"").Set(1);
  EXPECT_THAT(metrics.Render(), HasSubstr("# HELP g line one\\nback\\\\slash \"quoted\"\n"));
}

TEST(AgentMetricsTest, FamiliesRenderSortedByName) {
  Metrics metrics;
  metrics.GetGauge("zeta", "z").Set(1);
  metrics.GetCounter("alpha_total", "a").Increment();
  const std::string text = metrics.Render();
  EXPECT_LT(text.find("alpha_total"), text.find("zeta"));
}

TEST(AgentMetricsTest, HistogramBucketsAreCumulative) {
  Metrics metrics;
  Histogram& histogram = metrics.GetHistogram("weir_sync_duration_seconds", "Sync latency.", {0.1, 0.01, 1},
                                              {{"source", "k8s"}});
  histogram.Observe(0.005);  // <= 0.01
  histogram.Observe(0.01);   // on the bound: counts in le="0.01"
  histogram.Observe(0.5);    // <= 1
  histogram.Observe(3);      // +Inf only
  EXPECT_EQ(metrics.Render(),
            "# HELP weir_sync_duration_seconds Sync latency.\n"
            "# TYPE weir_sync_duration_seconds histogram\n"
            "weir_sync_duration_seconds_bucket{source=\"k8s\",le=\"0.01\"} 2\n"
            "weir_sync_duration_seconds_bucket{source=\"k8s\",le=\"0.1\"} 2\n"
            "weir_sync_duration_seconds_bucket{source=\"k8s\",le=\"1\"} 3\n"
            "weir_sync_duration_seconds_bucket{source=\"k8s\",le=\"+Inf\"} 4\n"
            "weir_sync_duration_seconds_sum{source=\"k8s\"} 3.515\n"
            "weir_sync_duration_seconds_count{source=\"k8s\"} 4\n");
}

TEST(AgentMetricsTest, HistogramWithoutLabelsAndDefaultSyncBuckets) {
  Metrics metrics;
  metrics.GetHistogram("h", "h", SyncLatencyBuckets());
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("h_bucket{le=\"0.001\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("h_bucket{le=\"10\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("h_bucket{le=\"+Inf\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("h_sum 0\nh_count 0\n"));
}

TEST(AgentMetricsTest, HistogramFamilyKeepsFirstBounds) {
  Metrics metrics;
  metrics.GetHistogram("h", "h", {1}, {{"a", "1"}});
  metrics.GetHistogram("h", "h", {2, 3}, {{"a", "2"}}).Observe(2);
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("h_bucket{a=\"2\",le=\"1\"} 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("le=\"2\"")));
}

TEST(AgentMetricsTest, InvalidRegistrationsAreNotRendered) {
  Metrics metrics;
  metrics.GetCounter("ok_total", "ok").Increment();
  metrics.GetGauge("ok_total", "same name, other type").Set(7);  // type conflict
  metrics.GetCounter("1bad", "bad name").Increment();
  metrics.GetCounter("bad_label_total", "bad label", {{"__reserved", "x"}}).Increment();
  metrics.GetHistogram("h", "le is reserved", {1}, {{"le", "x"}}).Observe(1);
  EXPECT_EQ(metrics.Render(),
            "# HELP ok_total ok\n"
            "# TYPE ok_total counter\n"
            "ok_total 1\n");
}

TEST(AgentMetricsTest, FormatsSpecialValues) {
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatMetricValue(1234567), "1234567");  // no %g rounding of large counters
  EXPECT_EQ(FormatMetricValue(0.25), "0.25");
}

TEST(AgentMetricsTest, ConcurrentUpdatesAreNotLost) {
  Metrics metrics;
  Counter& counter = metrics.GetCounter("c_total", "c");
  Histogram& histogram = metrics.GetHistogram("h", "h", {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        counter.Increment();
        histogram.Observe(0.5);
        if (i % 1000 == 0) (void)metrics.Render();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(counter.Value(), 40000);
  EXPECT_EQ(histogram.Read().count, 40000u);
  EXPECT_EQ(histogram.Read().cumulative_counts.front(), 40000u);
}

TEST(AgentHttpServerTest, ServesHealthAndMetrics) {
  Metrics metrics;
  metrics.GetCounter("weir_syncs_total", "Completed syncs.").Increment();
  std::atomic<bool> ready{false};
  AgentHttpServer server;
  ASSERT_TRUE(server
                  .Start(
                      "127.0.0.1", 0, metrics, [&] { return ready.load(); },
                      [] { return std::string("# TYPE weir_bpf_extra gauge\nweir_bpf_extra 1\n"); })
                  .ok());
  ASSERT_GT(server.port(), 0);

  httplib::Client client("127.0.0.1", server.port());
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(2, 0);
  for (const char* path : {"/healthz", "/readyz"}) {
    auto response = client.Get(path);
    ASSERT_TRUE(response) << path;
    EXPECT_EQ(response->status, 503) << path;
    EXPECT_EQ(response->body, "not ready");
  }
  ready = true;
  auto healthy = client.Get("/healthz");
  ASSERT_TRUE(healthy);
  EXPECT_EQ(healthy->status, 200);
  EXPECT_EQ(healthy->body, "ok");

  auto scraped = client.Get("/metrics");
  ASSERT_TRUE(scraped);
  EXPECT_EQ(scraped->status, 200);
  EXPECT_EQ(scraped->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  // The registry, then the datapath's counters, then the process families.
  EXPECT_TRUE(scraped->body.starts_with(metrics.Render() +
                                        "# TYPE weir_bpf_extra gauge\nweir_bpf_extra 1\n# HELP "
                                        "process_cpu_seconds_total"))
      << scraped->body;

  EXPECT_EQ(client.Get("/nope")->status, 404);
  server.Stop();
  server.Stop();  // idempotent
  httplib::Client closed("127.0.0.1", server.port());
  closed.set_connection_timeout(1, 0);
  EXPECT_FALSE(closed.Get("/healthz"));
}

TEST(AgentHttpServerTest, LivenessIsNotReadiness) {
  Metrics metrics;
  std::atomic<bool> live{true};
  AgentHttpServer server;
  server.SetLiveness([&] { return live.load(); });
  ASSERT_TRUE(server
                  .Start(
                      "127.0.0.1", 0, metrics, [] { return false; }, nullptr)
                  .ok());
  httplib::Client client("127.0.0.1", server.port());
  client.set_connection_timeout(2, 0);
  // Not in sync yet, but alive: unready, not restarted.
  EXPECT_EQ(client.Get("/readyz")->status, 503);
  EXPECT_EQ(client.Get("/livez")->status, 200);
  live = false;
  auto stuck = client.Get("/livez");
  ASSERT_TRUE(stuck);
  EXPECT_EQ(stuck->status, 503);
  EXPECT_EQ(stuck->body, "stuck");
}

TEST(AgentHttpServerTest, StopRightAfterStartReturns) {
  Metrics metrics;
  for (int i = 0; i < 20; ++i) {
    AgentHttpServer server;
    ASSERT_TRUE(server.Start("127.0.0.1", 0, metrics, nullptr, nullptr).ok());
    server.Stop();
  }
}

TEST(AgentHttpServerTest, BindFailureIsReported) {
  Metrics metrics;
  AgentHttpServer first;
  ASSERT_TRUE(first.Start("127.0.0.1", 0, metrics, nullptr, nullptr).ok());
  AgentHttpServer second;
  EXPECT_FALSE(second.Start("127.0.0.1", first.port(), metrics, nullptr, nullptr).ok());
}

}  // namespace
}  // namespace weir::agent
