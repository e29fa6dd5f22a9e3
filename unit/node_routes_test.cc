#include "proxy/agent/node_routes.h"

#include "gtest/gtest.h"
#include "proxy/agent/cni_config_writer.h"

namespace weir::agent {
namespace {

k8s::Node MakeNode(const std::string& name, std::vector<std::string> cidrs,
                   std::vector<std::pair<std::string, std::string>> addresses) {
  k8s::Node node;
  node.metadata.name = name;
  for (const auto& cidr : cidrs) node.pod_cidrs.push_back(*IpPrefix::Parse(cidr));
  for (const auto& [type, address] : addresses) {
    auto ip = IpAddress::Parse(address);
    node.addresses.push_back({type, address, ip.ok() ? std::optional<IpAddress>(*ip) : std::nullopt});
  }
  return node;
}

TEST(NodeRoutesTest, RoutesToOtherNodesPodCidrsByFamily) {
  std::vector<k8s::Node> nodes = {
      MakeNode("a", {"10.244.1.0/24", "fd00:1::/64"},
               {{"InternalIP", "192.168.0.1"}, {"InternalIP", "fd99::1"}}),
      MakeNode("b", {"10.244.2.0/24", "fd00:2::/64"},
               {{"ExternalIP", "203.0.113.2"}, {"InternalIP", "192.168.0.2"}}),
      MakeNode("c", {"10.244.3.0/24"}, {{"Hostname", "c"}}),
  };
  std::vector<NodeRoute> routes = DesiredNodeRoutes(nodes, "a");
  ASSERT_EQ(routes.size(), 1u);  // b's v6 CIDR has no v6 address; c has no address at all
  EXPECT_EQ(routes[0].pod_cidr.ToString(), "10.244.2.0/24");
  EXPECT_EQ(routes[0].via.ToString(), "192.168.0.2");  // InternalIP preferred over ExternalIP
}

TEST(NodeRoutesTest, OwnPodCidrs) {
  std::vector<k8s::Node> nodes = {MakeNode("a", {"10.244.1.0/24"}, {}), MakeNode("b", {"10.244.2.0/24"}, {})};
  ASSERT_EQ(PodCidrsOf(nodes, "b").size(), 1u);
  EXPECT_EQ(PodCidrsOf(nodes, "b")[0].ToString(), "10.244.2.0/24");
  EXPECT_TRUE(PodCidrsOf(nodes, "z").empty());
}

TEST(CniConfigWriterTest, ConflistNamesWeirThenPortmap) {
  std::string text = RenderCniConflist(
      {.conf_dir = "/x", .pod_cidrs = {*IpPrefix::Parse("10.244.1.0/24")}, .bpf_root = "/sys/fs/bpf/weir"});
  EXPECT_NE(text.find(R"("podCIDRs": ["10.244.1.0/24"])"), std::string::npos);
  EXPECT_LT(text.find(R"("type": "weir")"), text.find(R"("type": "portmap")"));
}

}  // namespace
}  // namespace weir::agent
