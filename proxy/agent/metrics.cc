#include "proxy/agent/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "spdlog/spdlog.h"

namespace weir::agent {
namespace {

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return true;
}

// [a-zA-Z_][a-zA-Z0-9_]*, and not "__"-prefixed (reserved for Prometheus itself).
bool IsValidLabelName(const std::string& name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return true;
}

// Label values escape backslash, double quote and newline; HELP text only backslash and newline.
std::string Escape(const std::string& text, bool escape_quotes) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && escape_quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

// `{a="1",le="0.5"}`, or "" without labels. `le` is appended last, for histogram buckets.
std::string FormatLabels(const MetricLabels& labels, const std::string* le = nullptr) {
  if (labels.empty() && le == nullptr) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ",";
    first = false;
    out += name + "=\"" + Escape(value, /*escape_quotes=*/true) + "\"";
  }
  if (le != nullptr) {
    if (!first) out += ",";
    out += "le=\"" + *le + "\"";
  }
  return out + "}";
}

void AppendSample(std::string& out, const std::string& name, const std::string& labels, double value) {
  out += name;
  out += labels;
  out += ' ';
  out += FormatMetricValue(value);
  out += '\n';
}

std::vector<double> SortedFiniteBounds(std::vector<double> bounds) {
  std::erase_if(bounds, [](double bound) { return !std::isfinite(bound); });
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  return bounds;
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

void Counter::Increment(double amount) {
  if (!(amount > 0)) return;  // also drops NaN
  value_.fetch_add(amount, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(SortedFiniteBounds(std::move(upper_bounds))),
      bucket_counts_(upper_bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  // The first bucket whose bound is >= value; past the last bound: +Inf.
  const size_t bucket =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin();
  std::lock_guard<std::mutex> lock(mutex_);
  ++bucket_counts_[bucket];
  ++count_;
  sum_ += value;
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  snapshot.upper_bounds = upper_bounds_;
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t running = 0;
  for (const uint64_t in_bucket : bucket_counts_) {
    running += in_bucket;
    snapshot.cumulative_counts.push_back(running);
  }
  snapshot.count = count_;
  snapshot.sum = sum_;
  return snapshot;
}

const std::vector<double>& SyncLatencyBuckets() {
  static const std::vector<double> buckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                              0.25,  0.5,    1,     2.5,  5,     10};
  return buckets;
}

Metrics::Family* Metrics::FamilyFor(const std::string& name, const std::string& help, MetricType type,
                                    const MetricLabels& labels) {
  if (!IsValidMetricName(name)) {
    spdlog::error("metrics: invalid metric name '{}'; the series is not exported", name);
    return nullptr;
  }
  for (const auto& [label, value] : labels) {
    // `le` belongs to histogram buckets; a user label of that name would collide with it.
    if (!IsValidLabelName(label) || (type == MetricType::kHistogram && label == "le")) {
      spdlog::error("metrics: invalid label name '{}' on {}; the series is not exported", label, name);
      return nullptr;
    }
  }
  auto [it, inserted] = families_.try_emplace(name);
  Family& family = it->second;
  if (inserted) {
    family.type = type;
    family.help = help;
  } else if (family.type != type) {
    spdlog::error("metrics: {} registered as a {} and as a {}; the second is not exported", name,
                  TypeName(family.type), TypeName(type));
    return nullptr;
  }
  return &family;
}

Counter& Metrics::GetCounter(const std::string& name, const std::string& help, const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family* family = FamilyFor(name, help, MetricType::kCounter, labels);
  if (family == nullptr) return *detached_counters_.emplace_back(std::make_unique<Counter>());
  std::unique_ptr<Counter>& series = family->counters[labels];
  if (series == nullptr) series = std::make_unique<Counter>();
  return *series;
}

Gauge& Metrics::GetGauge(const std::string& name, const std::string& help, const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family* family = FamilyFor(name, help, MetricType::kGauge, labels);
  if (family == nullptr) return *detached_gauges_.emplace_back(std::make_unique<Gauge>());
  std::unique_ptr<Gauge>& series = family->gauges[labels];
  if (series == nullptr) series = std::make_unique<Gauge>();
  return *series;
}

Histogram& Metrics::GetHistogram(const std::string& name, const std::string& help,
                                 std::vector<double> upper_bounds, const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family* family = FamilyFor(name, help, MetricType::kHistogram, labels);
  if (family == nullptr) {
    return *detached_histograms_.emplace_back(std::make_unique<Histogram>(std::move(upper_bounds)));
  }
  if (family->histograms.empty()) {  // the family's first registration
    family->histogram_bounds = SortedFiniteBounds(std::move(upper_bounds));
  }
  std::unique_ptr<Histogram>& series = family->histograms[labels];
  if (series == nullptr) series = std::make_unique<Histogram>(family->histogram_bounds);
  return *series;
}

std::string Metrics::Render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const auto& [name, family] : families_) {
    out += "# HELP " + name + " " + Escape(family.help, /*escape_quotes=*/false) + "\n";
    out += "# TYPE " + name + " " + TypeName(family.type) + "\n";
    switch (family.type) {
      case MetricType::kCounter:
        for (const auto& [labels, counter] : family.counters)
          AppendSample(out, name, FormatLabels(labels), counter->Value());
        break;
      case MetricType::kGauge:
        for (const auto& [labels, gauge] : family.gauges)
          AppendSample(out, name, FormatLabels(labels), gauge->Value());
        break;
      case MetricType::kHistogram:
        for (const auto& [labels, histogram] : family.histograms) {
          const Histogram::Snapshot snapshot = histogram->Read();
          for (size_t i = 0; i < snapshot.cumulative_counts.size(); ++i) {
            const std::string le =
                i < snapshot.upper_bounds.size() ? FormatMetricValue(snapshot.upper_bounds[i]) : "+Inf";
            AppendSample(out, name + "_bucket", FormatLabels(labels, &le),
                         static_cast<double>(snapshot.cumulative_counts[i]));
          }
          AppendSample(out, name + "_sum", FormatLabels(labels), snapshot.sum);
          AppendSample(out, name + "_count", FormatLabels(labels), static_cast<double>(snapshot.count));
        }
        break;
    }
  }
  return out;
}

}  // namespace weir::agent
