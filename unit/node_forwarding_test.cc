#include "proxy/agent/node_forwarding.h"
#include "proxy/agent/netfilter_conntrack.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace weir::agent {
namespace {

// A stand-in for /proc/sys with the files EnableForwarding reads and writes.
class FakeProcSys {
 public:
  // One directory per test process: ctest runs the cases in parallel processes.
  FakeProcSys()
      : root_(std::filesystem::path(::testing::TempDir()) / ("weir-proc-sys-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(root_);
  }
  ~FakeProcSys() { std::filesystem::remove_all(root_); }

  void Set(const std::string& relative, const std::string& value) {
    std::filesystem::create_directories((root_ / relative).parent_path());
    std::ofstream(root_ / relative) << value << "\n";
  }
  std::string Get(const std::string& relative) const {
    std::string value;
    std::ifstream(root_ / relative) >> value;
    return value;
  }
  std::string root() const { return root_.string(); }

 private:
  std::filesystem::path root_;
};

TEST(NodeForwardingTest, TurnsOnWhatIsOffAndSaysWhat) {
  FakeProcSys sys;
  sys.Set("net/ipv4/ip_forward", "0");
  sys.Set("net/ipv6/conf/all/forwarding", "0");
  sys.Set("net/ipv6/conf/eth0/accept_ra", "1");
  sys.Set("net/ipv6/conf/eth1/accept_ra", "2");
  sys.Set("net/ipv6/conf/lo/accept_ra", "1");
  auto result = EnableForwarding(sys.root());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(sys.Get("net/ipv4/ip_forward"), "1");
  EXPECT_EQ(sys.Get("net/ipv6/conf/all/forwarding"), "1");
  ASSERT_EQ(result->changed.size(), 2u);
  EXPECT_EQ(result->changed[0].key, "net.ipv4.ip_forward");
  EXPECT_EQ(result->changed[0].before, "0");
  EXPECT_EQ(result->changed[1].key, "net.ipv6.conf.all.forwarding");
  EXPECT_EQ(result->ignoring_router_advertisements, std::vector<std::string>{"eth0"});
}

TEST(NodeForwardingTest, LeavesWhatIsOnAlone) {
  FakeProcSys sys;
  sys.Set("net/ipv4/ip_forward", "1");
  sys.Set("net/ipv6/conf/all/forwarding", "1");
  auto result = EnableForwarding(sys.root());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->changed.empty());
}

TEST(NodeForwardingTest, KernelWithoutIpv6) {
  FakeProcSys sys;
  sys.Set("net/ipv4/ip_forward", "0");
  auto result = EnableForwarding(sys.root());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->ipv6_available);
  ASSERT_EQ(result->changed.size(), 1u);
  EXPECT_EQ(sys.Get("net/ipv4/ip_forward"), "1");
}

TEST(NodeForwardingTest, MissingSysctlIsAnError) {
  FakeProcSys sys;
  EXPECT_FALSE(EnableForwarding(sys.root()).ok());
}

TEST(NetfilterConntrackTest, WritesKubeProxysTimeoutsAndSaysWhat) {
  FakeProcSys sys;
  sys.Set("net/netfilter/nf_conntrack_tcp_timeout_close_wait", "60");
  sys.Set("net/netfilter/nf_conntrack_tcp_timeout_established", "86400");
  auto changed = SetConntrackTimeouts(ConntrackTimeouts{}, sys.root());
  ASSERT_TRUE(changed.ok()) << changed.status();
  ASSERT_EQ(changed->size(), 1u);
  EXPECT_EQ((*changed)[0].key, "net.netfilter.nf_conntrack_tcp_timeout_close_wait");
  EXPECT_EQ((*changed)[0].before, "60");
  EXPECT_EQ(sys.Get("net/netfilter/nf_conntrack_tcp_timeout_close_wait"), "3600");
  EXPECT_EQ(sys.Get("net/netfilter/nf_conntrack_tcp_timeout_established"), "86400");
}

TEST(NetfilterConntrackTest, ZeroLeavesTheKernelsValue) {
  FakeProcSys sys;
  sys.Set("net/netfilter/nf_conntrack_tcp_timeout_close_wait", "60");
  sys.Set("net/netfilter/nf_conntrack_tcp_timeout_established", "432000");
  auto changed =
      SetConntrackTimeouts({.tcp_close_wait_seconds = 0, .tcp_established_seconds = 0}, sys.root());
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(changed->empty());
  EXPECT_EQ(sys.Get("net/netfilter/nf_conntrack_tcp_timeout_close_wait"), "60");
}

TEST(NetfilterConntrackTest, AKernelWithoutConntrackIsNotAnError) {
  FakeProcSys sys;
  sys.Set("net/ipv4/ip_forward", "1");
  auto changed = SetConntrackTimeouts(ConntrackTimeouts{}, sys.root());
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(changed->empty());
}

}  // namespace
}  // namespace weir::agent
