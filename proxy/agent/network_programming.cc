#include "proxy/agent/network_programming.h"

namespace weir::agent {

void NetworkProgrammingTracker::Note(const k8s::EndpointSlice& slice) {
  if (!slice.last_change_trigger_time) return;
  const std::string key = slice.metadata.namespace_ + "/" + slice.metadata.name;
  noted_.insert(key);
  auto applied = applied_.find(key);
  if (applied != applied_.end() && applied->second >= *slice.last_change_trigger_time) return;
  pending_[key] = *slice.last_change_trigger_time;
}

std::vector<double> NetworkProgrammingTracker::TakeLatencies(Clock::time_point now, bool complete) {
  if (complete) {
    std::erase_if(applied_, [this](const auto& entry) { return !noted_.contains(entry.first); });
  }
  noted_.clear();
  std::vector<double> latencies;
  latencies.reserve(pending_.size());
  for (auto& [key, trigger] : pending_) {
    // A trigger time ahead of this node's clock (skew) would be a negative latency: left out.
    if (trigger <= now) latencies.push_back(std::chrono::duration<double>(now - trigger).count());
    applied_[key] = trigger;
  }
  pending_.clear();
  return latencies;
}

const std::vector<double>& NetworkProgrammingBuckets() {
  static const std::vector<double> buckets = [] {
    std::vector<double> b = {0.25, 0.5};
    for (int s = 1; s <= 59; ++s) b.push_back(s);
    for (int s = 60; s <= 115; s += 5) b.push_back(s);
    for (int s = 120; s <= 300; s += 30) b.push_back(s);
    return b;
  }();
  return buckets;
}

}  // namespace weir::agent
