#include "proxy/agent/node_facts.h"

#include <gtest/gtest.h>

namespace weir::agent {
namespace {

IpAddress Ip(const char* text) { return *IpAddress::Parse(text); }
IpPrefix Prefix(const char* text) { return *IpPrefix::Parse(text); }

k8s::Node NodeWith(const char* name, std::vector<std::pair<const char*, const char*>> addresses,
                   std::vector<const char*> cidrs = {}) {
  k8s::Node node;
  node.metadata.name = name;
  for (const auto& [type, text] : addresses) {
    k8s::NodeAddress address{.type = type, .address = text};
    if (std::string(type).ends_with("IP")) address.ip = Ip(text);
    node.addresses.push_back(address);
  }
  for (const char* cidr : cidrs) node.pod_cidrs.push_back(Prefix(cidr));
  return node;
}

// A node with a loopback, a management NIC with the default route, and a fabric NIC towards the
// other nodes (the usual two-NIC layout, where the node's own InternalIP does not decide).
InterfaceView TwoNicView() {
  InterfaceView view;
  view.links = {{.index = 1, .name = "lo", .mtu = 65536},
                {.index = 2, .name = "mgmt0", .mtu = 1500},
                {.index = 3, .name = "fabric0", .mtu = 9000}};
  view.addresses = {
      {1, Prefix("127.0.0.1/8")}, {2, Prefix("172.31.0.5/24")}, {3, Prefix("192.168.77.11/24")}};
  view.routes = {{.destination = Prefix("0.0.0.0/0"), .gateway = Ip("172.31.0.1"), .output_ifindex = 2},
                 {.destination = Prefix("172.31.0.0/24"), .output_ifindex = 2},
                 {.destination = Prefix("192.168.77.0/24"), .output_ifindex = 3}};
  return view;
}

TEST(NodeFacts, AddressesPreferInternalIpOnePerFamily) {
  k8s::Node node = NodeWith("n1", {{"Hostname", "n1"},
                                   {"ExternalIP", "203.0.113.7"},
                                   {"InternalIP", "192.168.77.11"},
                                   {"InternalIP", "192.168.78.11"},
                                   {"ExternalIP", "2001:db8::7"}});
  std::vector<IpAddress> expected = {Ip("192.168.77.11"), Ip("2001:db8::7")};
  EXPECT_EQ(NodeAddressesOf(node), expected);
}

TEST(NodeFacts, UplinkIsTheRouteTowardsTheOtherNodes) {
  auto uplink = ChooseUplink(TwoNicView(), {Ip("192.168.77.11")}, {Ip("192.168.77.12"), Ip("192.168.77.13")});
  ASSERT_TRUE(uplink.ok()) << uplink.status();
  EXPECT_EQ(*uplink, "fabric0");
}

TEST(NodeFacts, LongestPrefixWinsOverTheDefaultRoute) {
  InterfaceView view = TwoNicView();
  // A peer on another subnet reached through the default route goes out of mgmt0.
  auto uplink = ChooseUplink(view, {Ip("192.168.77.11")}, {Ip("10.9.9.9")});
  ASSERT_TRUE(uplink.ok());
  EXPECT_EQ(*uplink, "mgmt0");
}

TEST(NodeFacts, SingleNodeUsesTheDeviceWithItsAddress) {
  auto uplink = ChooseUplink(TwoNicView(), {Ip("192.168.77.11")}, {});
  ASSERT_TRUE(uplink.ok());
  EXPECT_EQ(*uplink, "fabric0");
}

TEST(NodeFacts, NoRouteNoAddressNoDefaultIsAnError) {
  InterfaceView view;
  view.links = {{.index = 1, .name = "lo"}};
  auto uplink = ChooseUplink(view, {Ip("192.168.77.11")}, {});
  EXPECT_EQ(uplink.status().code(), absl::StatusCode::kNotFound);
}

TEST(NodeFacts, DiscoverFillsOnlyWhatIsNotConfigured) {
  std::vector<k8s::Node> nodes = {NodeWith("n1", {{"InternalIP", "192.168.77.11"}}, {"10.244.0.0/24"}),
                                  NodeWith("n2", {{"InternalIP", "192.168.77.12"}}, {"10.244.1.0/24"})};
  auto facts = DiscoverNodeFacts({}, &nodes[0], nodes, TwoNicView());
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->addresses, std::vector<IpAddress>{Ip("192.168.77.11")});
  EXPECT_EQ(facts->uplinks, std::vector<std::string>{"fabric0"});
  EXPECT_EQ(facts->mtu, 9000u);
  EXPECT_EQ(facts->pod_cidrs, std::vector<IpPrefix>{Prefix("10.244.0.0/24")});

  NodeFacts configured{.addresses = {Ip("172.31.0.5")}, .uplinks = {"mgmt0"}, .mtu = 1400};
  auto kept = DiscoverNodeFacts(configured, &nodes[0], nodes, TwoNicView());
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->addresses, configured.addresses);
  EXPECT_EQ(kept->uplinks, configured.uplinks);
  EXPECT_EQ(kept->mtu, 1400u);
}

TEST(NodeFacts, MissingNodeOrUplinkSaysWhatToSet) {
  auto no_node = DiscoverNodeFacts({}, nullptr, {}, TwoNicView());
  EXPECT_NE(no_node.status().message().find("nodeAddresses"), std::string::npos);
  auto bad_uplink =
      DiscoverNodeFacts({.addresses = {Ip("192.168.77.11")}, .uplinks = {"eth0"}}, nullptr, {}, TwoNicView());
  EXPECT_NE(bad_uplink.status().message().find("uplink eth0 not found"), std::string::npos);
  EXPECT_NE(bad_uplink.status().message().find("fabric0"), std::string::npos);
}

}  // namespace
}  // namespace weir::agent
