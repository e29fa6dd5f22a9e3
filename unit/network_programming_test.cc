#include "proxy/agent/network_programming.h"

#include <gtest/gtest.h>

namespace weir::agent {
namespace {

using Clock = NetworkProgrammingTracker::Clock;
using std::chrono::seconds;

k8s::EndpointSlice Slice(const std::string& name, std::optional<Clock::time_point> trigger) {
  k8s::EndpointSlice slice;
  slice.metadata.namespace_ = "default";
  slice.metadata.name = name;
  slice.last_change_trigger_time = trigger;
  return slice;
}

TEST(NetworkProgrammingTracker, CountsEachTriggerTimeOnce) {
  const Clock::time_point t0 = Clock::now();
  NetworkProgrammingTracker tracker;
  tracker.Note(Slice("web-abc", t0));
  tracker.Note(Slice("no-annotation", std::nullopt));
  EXPECT_EQ(tracker.TakeLatencies(t0 + seconds(2), /*complete=*/true), std::vector<double>{2.0});
  // A complete resync sees the same version again: nothing new was programmed.
  tracker.Note(Slice("web-abc", t0));
  EXPECT_TRUE(tracker.TakeLatencies(t0 + seconds(30), true).empty());
  // The next change of the slice counts from its own trigger time.
  tracker.Note(Slice("web-abc", t0 + seconds(40)));
  EXPECT_EQ(tracker.TakeLatencies(t0 + seconds(41), false), std::vector<double>{1.0});
}

TEST(NetworkProgrammingTracker, AFailedSyncKeepsTheSamplesForTheRetry) {
  const Clock::time_point t0 = Clock::now();
  NetworkProgrammingTracker tracker;
  tracker.Note(Slice("web-abc", t0));
  // The sync failed: TakeLatencies is not called; the retry notes the slice again.
  tracker.Note(Slice("web-abc", t0));
  EXPECT_EQ(tracker.TakeLatencies(t0 + seconds(5), true), std::vector<double>{5.0});
}

TEST(NetworkProgrammingTracker, ADeletedSliceIsForgottenAfterACompleteSync) {
  const Clock::time_point t0 = Clock::now();
  NetworkProgrammingTracker tracker;
  tracker.Note(Slice("web-abc", t0));
  tracker.TakeLatencies(t0 + seconds(1), true);
  tracker.TakeLatencies(t0 + seconds(2), true);  // the slice is gone from the cluster
  // Recreated with the same name and an older trigger time (another object): counted again.
  tracker.Note(Slice("web-abc", t0 - seconds(1)));
  EXPECT_EQ(tracker.TakeLatencies(t0 + seconds(2), false), std::vector<double>{3.0});
}

TEST(NetworkProgrammingTracker, ClockSkewYieldsNoNegativeSample) {
  const Clock::time_point t0 = Clock::now();
  NetworkProgrammingTracker tracker;
  tracker.Note(Slice("web-abc", t0 + seconds(10)));
  EXPECT_TRUE(tracker.TakeLatencies(t0, true).empty());
}

}  // namespace
}  // namespace weir::agent
