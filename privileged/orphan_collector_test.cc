// weir-agent's collection of what pods left without a DEL, against real links in a namespace of the
// test's own and the real IPAM file store in a temporary directory: what is collected, and when.
#include "proxy/agent/orphan_collector.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cni/attachment_names.h"
#include "cni/ipam/file_store.h"
#include "privileged/scoped_netns.h"

namespace weir::agent {
namespace {

using namespace std::chrono_literals;
using Clock = OrphanCollector::Clock;

template <typename T>
T ValueOrDie(absl::StatusOr<T> result) {
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) std::abort();
  return *std::move(result);
}

constexpr char kNetwork[] = "weir";

class OrphanCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = ValueOrDie(testing::ScopedNetNs::Create());
    pods_ = ValueOrDie(testing::ScopedNetNs::Create());
    netlink_ = std::make_unique<Netlink>(ValueOrDie(Netlink::OpenIn(node_->ns())));
    dir_ = std::filesystem::path(::testing::TempDir()) / ("weir-orphans-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "bpf" / "links" / "pods");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  OrphanCollectorSettings Settings() const {
    return {.bpf_root = (dir_ / "bpf").string(), .cni_data_dir = (dir_ / "ipam").string(), .interval = 10s};
  }

  // An allocation as the plugin's ADD makes it.
  void Allocate(const ipam::AllocationOwner& owner, const char* address) {
    ipam::FileStore store((dir_ / "ipam").string());
    auto lock = ValueOrDie(ipam::StoreLock::Acquire(store, kNetwork));
    ASSERT_TRUE(ValueOrDie(store.Reserve(kNetwork, *IpAddress::Parse(address), owner)));
  }
  std::vector<std::string> Held() {
    ipam::FileStore store((dir_ / "ipam").string());
    auto lock = ValueOrDie(ipam::StoreLock::Acquire(store, kNetwork));
    std::vector<std::string> held;
    for (const ipam::Allocation& a : ValueOrDie(store.List(kNetwork))) held.push_back(a.address.ToString());
    return held;
  }
  // The owner's host veth (its peer in the pods' namespace), as the plugin names it.
  void Wire(const ipam::AllocationOwner& owner) {
    static int peer = 0;
    ASSERT_TRUE(netlink_
                    ->CreateVethPair(cni::HostInterfaceName(owner.container_id, owner.ifname),
                                     "p" + std::to_string(peer++), pods_->ns(), 1500)
                    .ok());
  }
  void Unwire(const ipam::AllocationOwner& owner) {
    ASSERT_TRUE(netlink_->DeleteLink(cni::HostInterfaceName(owner.container_id, owner.ifname)).ok());
  }
  std::filesystem::path Pin(const ipam::AllocationOwner& owner) {
    return dir_ / "bpf" / "links" / "pods" / cni::HostInterfaceName(owner.container_id, owner.ifname);
  }

  // Sockets hold their namespace alive, so they go before the namespaces.
  std::unique_ptr<testing::ScopedNetNs> node_;
  std::unique_ptr<testing::ScopedNetNs> pods_;
  std::unique_ptr<Netlink> netlink_;
  std::filesystem::path dir_;
  Metrics metrics_;
};

TEST_F(OrphanCollectorTest, CollectsWhatWasMissingForAWholeInterval) {
  const ipam::AllocationOwner live{"live", "eth0"}, gone{"gone", "eth0"};
  Allocate(live, "10.244.1.1");
  Wire(live);
  Allocate(gone, "10.244.1.2");
  Allocate(gone, "fd00::2");
  std::ofstream(Pin(gone)) << "";
  OrphanCollector collector(*netlink_, Settings(), metrics_);
  const Clock::time_point t0 = Clock::now();

  EXPECT_EQ(ValueOrDie(collector.Pass(t0)).total(), 0);       // first seen missing
  EXPECT_EQ(ValueOrDie(collector.Pass(t0 + 5s)).total(), 0);  // missing for less than the interval
  EXPECT_EQ(Held().size(), 3u);
  const CollectedOrphans collected = ValueOrDie(collector.Pass(t0 + 10s));
  EXPECT_EQ(collected.allocations, 2);
  EXPECT_EQ(collected.link_pins, 1);
  EXPECT_EQ(Held(), std::vector<std::string>{"10.244.1.1"});
  EXPECT_FALSE(std::filesystem::exists(Pin(gone)));
  EXPECT_EQ(ValueOrDie(collector.Pass(t0 + 20s)).total(), 0);  // nothing left to collect
}

TEST_F(OrphanCollectorTest, AnAddThatWiresBetweenPassesKeepsItsAddress) {
  const ipam::AllocationOwner slow{"slow", "eth0"};
  Allocate(slow, "10.244.1.3");  // allocated, veth not there yet: an ADD in progress
  OrphanCollector collector(*netlink_, Settings(), metrics_);
  const Clock::time_point t0 = Clock::now();
  EXPECT_EQ(ValueOrDie(collector.Pass(t0)).total(), 0);
  Wire(slow);
  EXPECT_EQ(ValueOrDie(collector.Pass(t0 + 10s)).total(), 0);
  EXPECT_EQ(ValueOrDie(collector.Pass(t0 + 20s)).total(), 0);
  EXPECT_EQ(Held(), std::vector<std::string>{"10.244.1.3"});

  // Its namespace goes later without a DEL: missing counts from the pass that first sees it.
  Unwire(slow);
  EXPECT_EQ(ValueOrDie(collector.Pass(t0 + 30s)).total(), 0);
  EXPECT_EQ(ValueOrDie(collector.Pass(t0 + 40s)).allocations, 1);
  EXPECT_TRUE(Held().empty());
}

TEST_F(OrphanCollectorTest, AllocationsStayWhenTheAgentDoesNotOwnTheDataDir) {
  const ipam::AllocationOwner gone{"gone", "eth0"};
  Allocate(gone, "10.244.1.4");
  OrphanCollectorSettings settings = Settings();
  settings.cni_data_dir.clear();  // the agent installs no conflist
  OrphanCollector collector(*netlink_, settings, metrics_);
  const Clock::time_point t0 = Clock::now();
  EXPECT_EQ(ValueOrDie(collector.Pass(t0)).total(), 0);
  EXPECT_EQ(ValueOrDie(collector.Pass(t0 + 1h)).total(), 0);
  EXPECT_EQ(Held(), std::vector<std::string>{"10.244.1.4"});
}

TEST_F(OrphanCollectorTest, TickRunsAPassEveryIntervalAndCounts) {
  const ipam::AllocationOwner gone{"gone", "eth0"};
  Allocate(gone, "10.244.1.5");
  OrphanCollector collector(*netlink_, Settings(), metrics_);
  const Clock::time_point t0 = Clock::now();
  EXPECT_EQ(collector.Tick(t0).total(), 0);
  EXPECT_EQ(collector.Tick(t0 + 9s).total(), 0);  // no pass due yet
  EXPECT_EQ(collector.Tick(t0 + 10s).allocations, 1);
  EXPECT_NE(metrics_.Render().find("weir_orphans_collected_total{kind=\"ipam_address\"} 1"),
            std::string::npos)
      << metrics_.Render();
}

}  // namespace
}  // namespace weir::agent
