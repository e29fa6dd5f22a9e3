// Network programming latency, as kube-proxy measures it: from the change that made an
// EndpointSlice (its last-change-trigger-time annotation) until the datapath serves it. Each
// trigger time is counted once, by the first successful sync that applied it; a slice seen again
// unchanged (a complete resync) adds nothing.
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "proxy/k8s/objects.h"

namespace weir::agent {

class NetworkProgrammingTracker {
 public:
  using Clock = std::chrono::system_clock;

  // A slice that the coming sync applies.
  void Note(const k8s::EndpointSlice& slice);
  // The sync succeeded at `now`: the latencies of every trigger time noted since the last call, in
  // seconds. A failed sync keeps them pending for the retry. After a `complete` sync (every slice
  // noted), slices not noted are forgotten, so deleted ones do not accumulate.
  std::vector<double> TakeLatencies(Clock::time_point now, bool complete);

 private:
  std::map<std::string, Clock::time_point> applied_;  // "ns/name" -> trigger time last counted
  std::map<std::string, Clock::time_point> pending_;
  std::set<std::string> noted_;  // since the last TakeLatencies
};

// kube-proxy's buckets for kubeproxy_network_programming_duration_seconds: 0.25 s to 5 min.
const std::vector<double>& NetworkProgrammingBuckets();

}  // namespace weir::agent
