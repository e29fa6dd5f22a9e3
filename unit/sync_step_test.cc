// The agent loop's sync step: which syncs are complete, which partial, and how failures are retried.
#include "proxy/agent/sync_step.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <deque>

#include "proxy/k8s/decode.h"
#include "proxy/sync/fake_map_writer.h"
#include "proxy/sync/reconciler.h"

namespace weir::agent {
namespace {

using std::chrono::seconds;

k8s::Service Web() {
  return *k8s::DecodeService(YAML::Load(R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}
)"));
}

k8s::EndpointSlice WebSlice(const std::string& address) {
  return *k8s::DecodeEndpointSlice(YAML::Load(R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels: {kubernetes.io/service-name: web}
  annotations: {endpoints.kubernetes.io/last-change-trigger-time: "2026-01-01T00:00:00Z"}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: [)" + address + "]}]\n"));
}

// A source whose view and changes the test sets.
class ScriptedSource : public ObjectSource {
 public:
  bool Ready() const override { return ready; }
  k8s::ObjectSet Snapshot() override {
    ++snapshots;
    return objects;
  }
  std::optional<SourceChanges> TakeChanges() override {
    if (changes.empty()) return SourceChanges{};
    SourceChanges next = std::move(changes.front());
    changes.pop_front();
    return next;
  }
  bool WaitForChange(std::chrono::milliseconds) override { return false; }

  bool ready = true;
  k8s::ObjectSet objects;
  std::deque<SourceChanges> changes;
  int snapshots = 0;
};

class SyncStepTest : public ::testing::Test {
 protected:
  SyncStepTest()
      : reconciler_(writer_, {.maglev_table_size = 7}),
        services_({.node_name = "node-a"}, reconciler_),
        sync_metrics_(metrics_),
        step_(source_, services_, sync_metrics_,
              {.synced = [this](const SyncResult&, bool complete) { (complete ? complete_ : partial_)++; },
               .failed = [this] { failed_++; },
               .sync_node = [this](const std::vector<k8s::Node>&) { return node_ok_; }}) {
    source_.objects.services = {Web()};
    source_.objects.slices = {WebSlice("10.244.0.5")};
  }

  double Programmed() {
    return metrics_
        .GetHistogram("kubeproxy_network_programming_duration_seconds", "", NetworkProgrammingBuckets())
        .Read()
        .count;
  }

  sync::FakeMapWriter writer_;
  sync::Reconciler reconciler_;
  ServiceSync services_;
  Metrics metrics_;
  SyncMetrics sync_metrics_;
  ScriptedSource source_;
  int complete_ = 0, partial_ = 0, failed_ = 0;
  bool node_ok_ = true;
  SyncStep step_;
  const SyncStep::Clock::time_point t0_ = SyncStep::Clock::now();
};

TEST_F(SyncStepTest, WaitsForTheSourceThenSyncsEverythingOnce) {
  source_.ready = false;
  step_.Run(t0_);
  EXPECT_EQ(source_.snapshots, 0) << "an incomplete view would delete what the maps hold";
  EXPECT_FALSE(step_.in_sync());
  source_.ready = true;
  step_.Run(t0_);
  EXPECT_EQ(complete_, 1);
  EXPECT_TRUE(step_.in_sync());
  EXPECT_EQ(reconciler_.backend_count(), 1u);
  EXPECT_EQ(Programmed(), 1);
  step_.Run(t0_ + seconds(1));  // nothing changed
  EXPECT_EQ(complete_ + partial_, 1);
}

TEST_F(SyncStepTest, LaterChangesArePartialSyncs) {
  step_.Run(t0_);
  source_.changes.push_back(
      {.services = {{.ref = {"default", "web"}, .service = Web(), .slices = {WebSlice("10.244.0.6")}}}});
  step_.MarkDirty();
  step_.Run(t0_ + seconds(1));
  EXPECT_EQ(complete_, 1);
  EXPECT_EQ(partial_, 1);
  EXPECT_EQ(source_.snapshots, 1);
  EXPECT_EQ(reconciler_.backend_count(), 1u);  // 10.244.0.5 replaced by .6
  EXPECT_EQ(Programmed(), 1) << "the slice's trigger time was already counted";
}

TEST_F(SyncStepTest, AFailedSyncMakesItUnreadyAndIsRetriedCompleteAfterTheDelay) {
  step_.Run(t0_);
  writer_.FailAfter(0);
  source_.changes.push_back(
      {.services = {{.ref = {"default", "web"}, .service = std::nullopt, .slices = {}}}});
  step_.MarkDirty();
  step_.Run(t0_ + seconds(1));
  EXPECT_EQ(failed_, 1);
  EXPECT_FALSE(step_.in_sync());
  writer_.StopFailing();
  source_.objects.services.clear();
  source_.objects.slices.clear();
  step_.Run(t0_ + seconds(2));  // within the retry delay: nothing
  EXPECT_EQ(complete_, 1);
  step_.Run(t0_ + seconds(1) + SyncStep::kRetryDelay);
  EXPECT_EQ(complete_, 2) << "a retry is a complete sync";
  EXPECT_TRUE(step_.in_sync());
  EXPECT_EQ(reconciler_.backend_count(), 0u);
}

TEST_F(SyncStepTest, AFailedNodeStepIsRetriedAsACompleteSync) {
  node_ok_ = false;
  step_.Run(t0_);
  EXPECT_TRUE(step_.in_sync()) << "the services are in the maps";
  node_ok_ = true;
  step_.Run(t0_ + seconds(1));
  EXPECT_EQ(complete_, 1);
  step_.Run(t0_ + SyncStep::kRetryDelay);
  EXPECT_EQ(complete_, 2);
  step_.Run(t0_ + 3 * SyncStep::kRetryDelay);
  EXPECT_EQ(complete_, 2) << "done once the node step succeeded";
}

}  // namespace
}  // namespace weir::agent
