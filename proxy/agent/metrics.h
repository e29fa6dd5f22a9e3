// The agent's own Prometheus metrics: counters, gauges and fixed-bucket histograms, rendered in the
// text exposition format 0.0.4 for GET /metrics. Thread-safe: the sync loop updates series while
// the HTTP thread renders them.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace weir::agent {

// Label name -> value. A map, so that one label set has one spelling and renders in one order.
using MetricLabels = std::map<std::string, std::string>;

enum class MetricType { kCounter, kGauge, kHistogram };

class Counter {
 public:
  // Counters only go up: negative amounts are ignored.
  void Increment(double amount = 1);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  struct Snapshot {
    std::vector<double> upper_bounds;         // the finite bucket bounds, ascending
    std::vector<uint64_t> cumulative_counts;  // one per bound, then one for +Inf (== count)
    uint64_t count = 0;
    double sum = 0;
  };

  // Bounds are sorted and deduplicated; non-finite ones are dropped (+Inf is always implied).
  explicit Histogram(std::vector<double> upper_bounds);

  void Observe(double value);
  Snapshot Read() const;

 private:
  const std::vector<double> upper_bounds_;
  mutable std::mutex mutex_;             // count, sum and buckets change together
  std::vector<uint64_t> bucket_counts_;  // per bucket, not cumulative; the last one is +Inf
  uint64_t count_ = 0;
  double sum_ = 0;
};

// Bounds in seconds for how long one sync (translate + reconcile) takes: 1 ms to 10 s.
const std::vector<double>& SyncLatencyBuckets();

class Metrics {
 public:
  // Each returns the series of family `name` with `labels`, creating the family and the series on
  // first use; later calls with the same name and labels return the same object, which lives as
  // long as the registry. A name reused with another type, or an invalid metric or label name, is a
  // programming error: it is logged and a detached series (never rendered) is returned, because
  // metrics must never take the agent down.
  Counter& GetCounter(const std::string& name, const std::string& help, const MetricLabels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, const MetricLabels& labels = {});
  // The family keeps the bounds of its first registration.
  Histogram& GetHistogram(const std::string& name, const std::string& help, std::vector<double> upper_bounds,
                          const MetricLabels& labels = {});

  // Every family sorted by name, each with # HELP and # TYPE lines, series sorted by labels.
  std::string Render() const;

 private:
  struct Family {
    MetricType type;
    std::string help;
    std::vector<double> histogram_bounds;
    // Only the map of `type` is used.
    std::map<MetricLabels, std::unique_ptr<Counter>> counters;
    std::map<MetricLabels, std::unique_ptr<Gauge>> gauges;
    std::map<MetricLabels, std::unique_ptr<Histogram>> histograms;
  };

  // The family for `name`, created when absent; nullptr (and logged) when the registration is
  // invalid. Called with mutex_ held.
  Family* FamilyFor(const std::string& name, const std::string& help, MetricType type,
                    const MetricLabels& labels);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
  // Series handed out for invalid registrations, kept alive but not rendered.
  std::vector<std::unique_ptr<Counter>> detached_counters_;
  std::vector<std::unique_ptr<Gauge>> detached_gauges_;
  std::vector<std::unique_ptr<Histogram>> detached_histograms_;
};

// A sample value as Prometheus writes it: shortest round-trip decimal, "+Inf", "-Inf", "NaN".
std::string FormatMetricValue(double value);

}  // namespace weir::agent
