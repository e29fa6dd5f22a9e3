// Namespaces and the rtnetlink client against the real kernel. Needs root. Each test works in
// namespaces it creates ("host" and "pod"); the machine's own namespace is only ever read.
#include "lib/netlink.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <memory>
#include <thread>

#include "lib/netns.h"
#include "privileged/scoped_netns.h"

namespace weir {

// Readable failure output for the kernel-state structs.
void PrintTo(const RouteSpec& route, std::ostream* os) {
  *os << route.destination.ToString();
  if (route.gateway) *os << " via " << route.gateway->ToString();
  *os << " dev #" << route.output_ifindex << (route.onlink ? " onlink" : "");
}
void PrintTo(const IpPrefix& prefix, std::ostream* os) { *os << prefix.ToString(); }

namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using weir::testing::ScopedNetNs;

#define ASSERT_OK(expr)                                    \
  do {                                                     \
    const absl::Status _status = (expr);                   \
    ASSERT_TRUE(_status.ok()) << #expr << ": " << _status; \
  } while (0)

template <typename T>
T ValueOrDie(absl::StatusOr<T> result) {
  if (!result.ok()) {
    ADD_FAILURE() << result.status();
    std::abort();
  }
  return std::move(*result);
}

IpAddress Addr(std::string_view text) { return ValueOrDie(IpAddress::Parse(text)); }
IpPrefix Prefix(std::string_view text) { return ValueOrDie(IpPrefix::Parse(text)); }

// Namespace identity: the inode of its nsfs file.
ino_t NamespaceInode(int fd) {
  struct stat info {};
  EXPECT_EQ(::fstat(fd, &info), 0);
  return info.st_ino;
}

TEST(NetNsTest, OpenMissingPathIsNotFound) {
  EXPECT_EQ(NetNs::Open("/run/netns/weir-does-not-exist").status().code(), absl::StatusCode::kNotFound);
}

TEST(NetNsTest, OpenRejectsWhatIsNotANetworkNamespace) {
  EXPECT_EQ(NetNs::Open("/proc/self/status").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NetNs::Open("/proc/thread-self/ns/mnt").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NetNsTest, RunEntersTheNamespaceOnItsOwnThreadOnly) {
  auto scoped = ValueOrDie(ScopedNetNs::Create());
  const NetNs before = ValueOrDie(NetNs::Current());
  const ino_t target = NamespaceInode(scoped->ns().fd());
  ASSERT_NE(NamespaceInode(before.fd()), target);

  ino_t seen_inside = 0;
  ASSERT_OK(scoped->ns().Run([&] {
    seen_inside = NamespaceInode(ValueOrDie(NetNs::Current()).fd());
    return absl::OkStatus();
  }));
  EXPECT_EQ(seen_inside, target);
  EXPECT_EQ(NamespaceInode(ValueOrDie(NetNs::Current()).fd()), NamespaceInode(before.fd()));
}

TEST(NetNsTest, RunReturnsTheFunctionStatus) {
  auto scoped = ValueOrDie(ScopedNetNs::Create());
  EXPECT_EQ(scoped->ns().Run([] { return absl::UnavailableError("x"); }).code(),
            absl::StatusCode::kUnavailable);
}

// A "host" namespace holding the host end of veth pairs and a "pod" namespace holding the peers.
class NetlinkTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kMtu = 1450;

  void SetUp() override {
    host_ = ValueOrDie(ScopedNetNs::Create());
    pod_ = ValueOrDie(ScopedNetNs::Create());
    host_netlink_ = std::make_unique<Netlink>(ValueOrDie(Netlink::OpenIn(host_->ns())));
    pod_netlink_ = std::make_unique<Netlink>(ValueOrDie(Netlink::OpenIn(pod_->ns())));
  }

  // Sockets hold their namespace alive, so they go before the namespaces (members are destroyed in
  // reverse order of declaration).
  std::unique_ptr<ScopedNetNs> host_;
  std::unique_ptr<ScopedNetNs> pod_;
  std::unique_ptr<Netlink> host_netlink_;
  std::unique_ptr<Netlink> pod_netlink_;

  Netlink& host() { return *host_netlink_; }
  Netlink& pod() { return *pod_netlink_; }

  // Creates host "weirv0" <-> pod "eth0", both up; returns the pod end.
  LinkInfo CreateUpPair() {
    EXPECT_TRUE(host().CreateVethPair("weirv0", "eth0", pod_->ns(), kMtu).ok());
    const LinkInfo host_end = ValueOrDie(host().GetLink("weirv0"));
    const LinkInfo pod_end = ValueOrDie(pod().GetLink("eth0"));
    EXPECT_TRUE(host().SetLinkUp(host_end.index).ok());
    EXPECT_TRUE(pod().SetLinkUp(pod_end.index).ok());
    return pod_end;
  }
};

TEST_F(NetlinkTest, FreshNamespaceHasOnlyLoopback) {
  const std::vector<LinkInfo> links = ValueOrDie(host().ListLinks());
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].name, "lo");
  EXPECT_FALSE(links[0].up);
}

TEST_F(NetlinkTest, CreatesVethPairWithItsPeerInAnotherNamespace) {
  const MacAddress mac = ValueOrDie(ParseMac("02:00:0a:f4:01:05"));
  ASSERT_OK(host().CreateVethPair("weirv0", "eth0", pod_->ns(), kMtu, mac));

  const LinkInfo host_end = ValueOrDie(host().GetLink("weirv0"));
  EXPECT_EQ(host_end.kind, "veth");
  EXPECT_EQ(host_end.mtu, kMtu);
  EXPECT_EQ(host_end.mac, mac);
  EXPECT_FALSE(host_end.up);
  EXPECT_EQ(ValueOrDie(host().GetLink(host_end.index)), host_end);

  const LinkInfo pod_end = ValueOrDie(pod().GetLink("eth0"));
  EXPECT_EQ(pod_end.kind, "veth");
  EXPECT_EQ(pod_end.mtu, kMtu);
  EXPECT_NE(pod_end.mac, mac);
  EXPECT_EQ(host().GetLink("eth0").status().code(), absl::StatusCode::kNotFound);

  std::vector<std::string> pod_links;
  for (const LinkInfo& link : ValueOrDie(pod().ListLinks())) pod_links.push_back(link.name);
  EXPECT_THAT(pod_links, UnorderedElementsAre("lo", "eth0"));

  // Read-only look at the machine's own namespace: nothing leaked into it.
  Netlink machine = ValueOrDie(Netlink::Open());
  EXPECT_EQ(machine.GetLink("weirv0").status().code(), absl::StatusCode::kNotFound);
}

// On a kernel with netkit: an L2 pair like the veth one. Without: Unimplemented and nothing made.
TEST_F(NetlinkTest, CreatesNetkitPairOrSaysTheKernelHasNone) {
  const MacAddress mac = ValueOrDie(ParseMac("02:00:0a:f4:01:05"));
  const absl::Status created = host().CreateNetkitPair("weirn0", "eth0", pod_->ns(), kMtu, mac);
  if (absl::IsUnimplemented(created)) {
    EXPECT_THAT(created.message(), ::testing::HasSubstr("create netkit weirn0"));
    EXPECT_EQ(ValueOrDie(host().ListLinks()).size(), 1u);
    EXPECT_EQ(ValueOrDie(pod().ListLinks()).size(), 1u);
    GTEST_SKIP() << "this kernel has no netkit: " << created;
  }
  ASSERT_OK(created);
  const LinkInfo host_end = ValueOrDie(host().GetLink("weirn0"));
  EXPECT_EQ(host_end.kind, "netkit");
  EXPECT_EQ(host_end.mtu, kMtu);
  EXPECT_EQ(host_end.mac, mac);
  const LinkInfo pod_end = ValueOrDie(pod().GetLink("eth0"));
  EXPECT_EQ(pod_end.kind, "netkit");
  EXPECT_NE(pod_end.mac, MacAddress{});  // L2: an address of its own, for the datapath to write
  ASSERT_OK(host().DeleteLink("weirn0"));
  EXPECT_EQ(pod().GetLink("eth0").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(NetlinkTest, DuplicateNamesAreAlreadyExists) {
  ASSERT_OK(host().CreateVethPair("weirv0", "eth0", pod_->ns(), kMtu));
  EXPECT_EQ(host().CreateVethPair("weirv0", "eth1", pod_->ns(), kMtu).code(),
            absl::StatusCode::kAlreadyExists);
  // The peer name is taken in the pod namespace: nothing is created on either side.
  EXPECT_EQ(host().CreateVethPair("weirv1", "eth0", pod_->ns(), kMtu).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(host().GetLink("weirv1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pod().GetLink("eth1").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(NetlinkTest, RejectsOverlongNames) {
  EXPECT_EQ(host().CreateVethPair("a-name-far-too-long", "eth0", pod_->ns(), kMtu).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(NetlinkTest, RenamesLink) {
  ASSERT_OK(host().CreateVethPair("weirv0", "tmp0", pod_->ns(), kMtu));
  const LinkInfo before = ValueOrDie(pod().GetLink("tmp0"));
  ASSERT_OK(pod().SetLinkName(before.index, "eth0"));
  EXPECT_EQ(pod().GetLink("tmp0").status().code(), absl::StatusCode::kNotFound);
  const LinkInfo after = ValueOrDie(pod().GetLink(before.index));
  EXPECT_EQ(after.name, "eth0");
  EXPECT_EQ(after.mac, before.mac);
}

TEST_F(NetlinkTest, SetsLinkUp) {
  ASSERT_OK(host().CreateVethPair("weirv0", "eth0", pod_->ns(), kMtu));
  const LinkInfo link = ValueOrDie(host().GetLink("weirv0"));
  ASSERT_OK(host().SetLinkUp(link.index));
  EXPECT_TRUE(ValueOrDie(host().GetLink(link.index)).up);
  EXPECT_FALSE(ValueOrDie(pod().GetLink("eth0")).up);
}

TEST_F(NetlinkTest, MissingLinksAreNotFound) {
  EXPECT_EQ(host().GetLink("nothere0").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(host().GetLink(4242).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(host().SetLinkUp(4242).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(host().DeleteLink("nothere0").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(host().AddAddress(4242, Prefix("10.0.0.1/24")).code(), absl::StatusCode::kNotFound);
}

TEST_F(NetlinkTest, DeletingOneEndRemovesThePair) {
  ASSERT_OK(host().CreateVethPair("weirv0", "eth0", pod_->ns(), kMtu));
  ASSERT_OK(host().DeleteLink("weirv0"));
  EXPECT_EQ(host().GetLink("weirv0").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pod().GetLink("eth0").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(host().DeleteLink("weirv0").code(), absl::StatusCode::kNotFound);
}

TEST_F(NetlinkTest, AddsAndListsAddressesOfBothFamilies) {
  const LinkInfo eth0 = CreateUpPair();
  ASSERT_OK(pod().AddAddress(eth0.index, Prefix("10.244.1.5/24")));
  ASSERT_OK(pod().AddAddress(eth0.index, Prefix("fd00:10::5/64")));

  EXPECT_THAT(ValueOrDie(pod().ListAddresses(eth0.index, IpFamily::kV4)),
              ElementsAre(Prefix("10.244.1.5/24")));
  // The kernel adds an fe80:: link-local address of its own on an up link.
  const std::vector<IpPrefix> v6 = ValueOrDie(pod().ListAddresses(eth0.index, IpFamily::kV6));
  EXPECT_THAT(v6, Contains(Prefix("fd00:10::5/64")));
  EXPECT_THAT(v6, Not(Contains(Prefix("10.244.1.5/24"))));
  const std::vector<IpPrefix> all = ValueOrDie(pod().ListAddresses(eth0.index));
  EXPECT_THAT(all, Contains(Prefix("10.244.1.5/24")));
  EXPECT_THAT(all, Contains(Prefix("fd00:10::5/64")));

  // Loopback's 127.0.0.1 (present once lo is up) belongs to another index.
  const LinkInfo lo = ValueOrDie(pod().GetLink("lo"));
  ASSERT_OK(pod().SetLinkUp(lo.index));
  EXPECT_THAT(ValueOrDie(pod().ListAddresses(eth0.index, IpFamily::kV4)),
              ElementsAre(Prefix("10.244.1.5/24")));
  EXPECT_THAT(ValueOrDie(pod().ListAddresses(lo.index, IpFamily::kV4)), ElementsAre(Prefix("127.0.0.1/8")));

  EXPECT_EQ(pod().AddAddress(eth0.index, Prefix("10.244.1.5/24")).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(pod().AddAddress(eth0.index, Prefix("fd00:10::5/64")).code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(NetlinkTest, RoutesScopeLinkAndDefaultViaOnlinkGateway) {
  const LinkInfo eth0 = CreateUpPair();
  ASSERT_OK(pod().AddAddress(eth0.index, Prefix("10.244.1.5/32")));

  // The usual pod setup: the gateway is reachable directly on eth0, and is the default route.
  const RouteSpec to_gateway{.destination = Prefix("169.254.1.1/32"), .output_ifindex = eth0.index};
  const RouteSpec by_default{.destination = Prefix("0.0.0.0/0"),
                             .gateway = Addr("169.254.1.1"),
                             .output_ifindex = eth0.index,
                             .onlink = true};
  ASSERT_OK(pod().AddRoute(to_gateway));
  ASSERT_OK(pod().AddRoute(by_default));
  EXPECT_THAT(ValueOrDie(pod().ListRoutes(eth0.index, IpFamily::kV4)),
              UnorderedElementsAre(to_gateway, by_default));
  EXPECT_EQ(pod().AddRoute(by_default).code(), absl::StatusCode::kAlreadyExists);

  ASSERT_OK(pod().DeleteRoute(by_default));
  EXPECT_THAT(ValueOrDie(pod().ListRoutes(eth0.index, IpFamily::kV4)), ElementsAre(to_gateway));
  EXPECT_EQ(pod().DeleteRoute(by_default).code(), absl::StatusCode::kNotFound);

  // The host side: a /32 per pod pointing at its veth.
  const LinkInfo host_end = ValueOrDie(host().GetLink("weirv0"));
  const RouteSpec to_pod{.destination = Prefix("10.244.1.5/32"), .output_ifindex = host_end.index};
  ASSERT_OK(host().AddRoute(to_pod));
  EXPECT_THAT(ValueOrDie(host().ListRoutes(host_end.index, IpFamily::kV4)), ElementsAre(to_pod));
  EXPECT_THAT(ValueOrDie(host().ListRoutes(host_end.index, IpFamily::kV6)), Not(Contains(to_pod)));
}

TEST_F(NetlinkTest, RoutesIpv6) {
  const LinkInfo eth0 = CreateUpPair();
  ASSERT_OK(pod().AddAddress(eth0.index, Prefix("fd00:10::5/128")));

  const RouteSpec to_gateway{.destination = Prefix("fd00:ff::1/128"), .output_ifindex = eth0.index};
  const RouteSpec by_default{.destination = Prefix("::/0"),
                             .gateway = Addr("fd00:ff::1"),
                             .output_ifindex = eth0.index,
                             .onlink = true};
  ASSERT_OK(pod().AddRoute(to_gateway));
  ASSERT_OK(pod().AddRoute(by_default));
  // The kernel's own fe80::/64 route is on eth0 too.
  const std::vector<RouteSpec> routes = ValueOrDie(pod().ListRoutes(eth0.index, IpFamily::kV6));
  EXPECT_THAT(routes, Contains(to_gateway));
  EXPECT_THAT(routes, Contains(by_default));
  EXPECT_EQ(pod().AddRoute(to_gateway).code(), absl::StatusCode::kAlreadyExists);

  ASSERT_OK(pod().DeleteRoute(by_default));
  ASSERT_OK(pod().DeleteRoute(to_gateway));
  const std::vector<RouteSpec> after = ValueOrDie(pod().ListRoutes(eth0.index, IpFamily::kV6));
  EXPECT_THAT(after, Not(Contains(by_default)));
  EXPECT_THAT(after, Not(Contains(to_gateway)));
  EXPECT_EQ(pod().DeleteRoute(to_gateway).code(), absl::StatusCode::kNotFound);
}

TEST_F(NetlinkTest, RejectsGatewayOfAnotherFamily) {
  const RouteSpec mixed{.destination = Prefix("0.0.0.0/0"), .gateway = Addr("fd00::1"), .output_ifindex = 1};
  EXPECT_EQ(host().AddRoute(mixed).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(NetlinkTest, ListsManyLinksAcrossMultipartDumps) {
  // Enough links that the dump spans several datagrams.
  constexpr int kPairs = 40;
  for (int i = 0; i < kPairs; ++i) {
    const std::string suffix = std::to_string(i);
    ASSERT_OK(host().CreateVethPair("weirv" + suffix, "p" + suffix, pod_->ns(), kMtu));
  }
  EXPECT_EQ(ValueOrDie(host().ListLinks()).size(), kPairs + 1u);
  EXPECT_EQ(ValueOrDie(pod().ListLinks()).size(), kPairs + 1u);
}

TEST_F(NetlinkTest, SocketKeepsItsNamespaceOnAnyThread) {
  ASSERT_OK(host().CreateVethPair("weirv0", "eth0", pod_->ns(), kMtu));
  absl::StatusOr<LinkInfo> seen = absl::UnknownError("not run");
  std::thread other([&] { seen = pod().GetLink("eth0"); });
  other.join();
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->name, "eth0");
}

}  // namespace
}  // namespace weir
