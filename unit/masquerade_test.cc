// Egress masquerade's control plane: the agent settings, the set of in-cluster CIDRs computed from
// the Nodes and the settings, and the sync that writes only its differences.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/agent/agent_config.h"
#include "proxy/agent/masquerade.h"
#include "proxy/sync/nonmasq_table.h"

namespace weir {
namespace {

IpPrefix Cidr(const std::string& text) { return *IpPrefix::Parse(text); }
IpAddress Ip(const std::string& text) { return *IpAddress::Parse(text); }

// "cidr" for an in-cluster entry, "cidr pods" for a pod CIDR, "cidr node" for a node address, sorted.
std::vector<std::string> Texts(const sync::CidrKinds& cidrs) {
  std::vector<std::string> texts;
  for (const auto& [cidr, kind] : cidrs) {
    texts.push_back(cidr.ToString() + (kind == sync::CidrKind::kPods   ? " pods"
                                       : kind == sync::CidrKind::kNode ? " node"
                                                                       : ""));
  }
  std::sort(texts.begin(), texts.end());
  return texts;
}

std::vector<std::string> Texts(const std::vector<IpPrefix>& cidrs) {
  std::vector<std::string> texts;
  for (const IpPrefix& cidr : cidrs) texts.push_back(cidr.ToString());
  std::sort(texts.begin(), texts.end());
  return texts;
}

// In-cluster entries, and pod CIDRs marked with a trailing " pods".
sync::CidrKinds Kinds(const std::vector<std::string>& texts) {
  sync::CidrKinds kinds;
  for (const std::string& text : texts) {
    const bool pods = text.ends_with(" pods");
    kinds[Cidr(pods ? text.substr(0, text.size() - 5) : text)] =
        pods ? sync::CidrKind::kPods : sync::CidrKind::kInCluster;
  }
  return kinds;
}

TEST(MasqueradeConfigTest, OnByDefaultWithNoExtraCidrs) {
  auto config = agent::ParseAgentConfig("nodeName: n1\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->masquerade);
  EXPECT_TRUE(config->non_masquerade_cidrs.empty());
  EXPECT_EQ(config->non_masquerade_cidrs_max, 16384u);
}

TEST(MasqueradeConfigTest, ReadsTheSwitchTheCidrsOfBothFamiliesAndTheMapSize) {
  auto config = agent::ParseAgentConfig(
      "masquerade: false\n"
      "nonMasqueradeCIDRs: [172.16.0.0/12, \"2001:db8:5::/48\", 10.1.2.3/16]\n"
      "nonMasqueradeCIDRsMax: 65536\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->masquerade);
  // Host bits are cleared: 10.1.2.3/16 means the network it names.
  EXPECT_EQ(Texts(config->non_masquerade_cidrs),
            (std::vector<std::string>{"10.1.0.0/16", "172.16.0.0/12", "2001:db8:5::/48"}));
  EXPECT_EQ(config->non_masquerade_cidrs_max, 65536u);
}

TEST(MasqueradeConfigTest, BadValuesAreErrorsThatNameTheSetting) {
  auto bad_cidr = agent::ParseAgentConfig("nonMasqueradeCIDRs: [10.0.0.0/33]\n");
  ASSERT_FALSE(bad_cidr.ok());
  EXPECT_NE(bad_cidr.status().message().find("nonMasqueradeCIDRs"), std::string::npos) << bad_cidr.status();
  EXPECT_FALSE(agent::ParseAgentConfig("masquerade: sometimes\n").ok());
  EXPECT_FALSE(agent::ParseAgentConfig("nonMasqueradeCIDRs: 10.0.0.0/8\n").ok());  // a list, not a string
  EXPECT_FALSE(agent::ParseAgentConfig("nonMasqueradeCIDRsMax: 0\n").ok());
  EXPECT_FALSE(agent::ParseAgentConfig("nonMasqueradeCidrs: [10.0.0.0/8]\n").ok());  // a typo is no new key
}

k8s::Node NodeWith(const std::string& name, std::vector<std::string> pod_cidrs,
                   std::vector<std::pair<std::string, std::string>> addresses) {
  k8s::Node node;
  node.metadata.name = name;
  for (const std::string& cidr : pod_cidrs) node.pod_cidrs.push_back(Cidr(cidr));
  for (const auto& [type, text] : addresses) {
    k8s::NodeAddress address{.type = type, .address = text};
    if (type == "InternalIP" || type == "ExternalIP") address.ip = Ip(text);
    node.addresses.push_back(address);
  }
  return node;
}

TEST(NonMasqueradeCidrsTest, EveryNodesPodCidrsAndAddressesAndTheSetting) {
  const std::vector<k8s::Node> nodes = {
      NodeWith("n1", {"10.244.1.0/24", "fd00:10:244:1::/64"},
               {{"InternalIP", "192.168.50.1"}, {"InternalIP", "fd00:50::1"}, {"Hostname", "n1"}}),
      NodeWith("n2", {"10.244.2.0/24"}, {{"InternalIP", "192.168.50.2"}, {"ExternalIP", "198.51.100.2"}}),
  };
  const std::vector<IpPrefix> own_pod_cidrs = {Cidr("10.244.1.0/24")};  // also n1's: listed once
  const std::vector<IpAddress> own_addresses = {Ip("192.168.50.1"), Ip("192.168.60.1")};
  const std::vector<IpPrefix> configured = {Cidr("172.16.0.0/12"), Cidr("2001:db8:5::1/48")};
  EXPECT_EQ(Texts(agent::NonMasqueradeCidrs({.nodes = nodes,
                                             .own_pod_cidrs = own_pod_cidrs,
                                             .own_addresses = own_addresses,
                                             .configured = configured})),
            (std::vector<std::string>{"10.244.1.0/24 pods", "10.244.2.0/24 pods", "172.16.0.0/12",
                                      "192.168.50.1/32 node", "192.168.50.2/32 node", "192.168.60.1/32 node",
                                      "198.51.100.2/32 node", "2001:db8:5::/48", "fd00:10:244:1::/64 pods",
                                      "fd00:50::1/128 node"}));
}

TEST(NonMasqueradeCidrsTest, StandaloneWithoutNodesIsThisNodesSettings) {
  const std::vector<k8s::Node> nodes;
  const std::vector<IpPrefix> own_pod_cidrs = {Cidr("10.244.1.0/24")};
  const std::vector<IpAddress> own_addresses = {Ip("192.168.50.1")};
  const std::vector<IpPrefix> configured;
  EXPECT_EQ(Texts(agent::NonMasqueradeCidrs({.nodes = nodes,
                                             .own_pod_cidrs = own_pod_cidrs,
                                             .own_addresses = own_addresses,
                                             .configured = configured})),
            (std::vector<std::string>{"10.244.1.0/24 pods", "192.168.50.1/32 node"}));
}

TEST(NonMasqueradeCidrsTest, ANodeAddressStaysANodesWhenAlsoConfigured) {
  const std::vector<k8s::Node> nodes = {NodeWith("n2", {}, {{"InternalIP", "192.168.50.2"}})};
  const std::vector<IpPrefix> own_pod_cidrs;
  const std::vector<IpAddress> own_addresses;
  const std::vector<IpPrefix> configured = {Cidr("192.168.50.2/32"), Cidr("192.168.50.0/24")};
  EXPECT_EQ(Texts(agent::NonMasqueradeCidrs({.nodes = nodes,
                                             .own_pod_cidrs = own_pod_cidrs,
                                             .own_addresses = own_addresses,
                                             .configured = configured})),
            (std::vector<std::string>{"192.168.50.0/24", "192.168.50.2/32 node"}));
}

// A CidrTable in memory that counts the writes.
class FakeCidrTable : public sync::CidrTable {
 public:
  sync::CidrKinds entries;
  int adds = 0, removes = 0, lists = 0;

  absl::StatusOr<sync::CidrKinds> List() const override {
    ++const_cast<FakeCidrTable*>(this)->lists;
    return entries;
  }
  absl::Status Add(const IpPrefix& cidr, sync::CidrKind kind) override {
    ++adds;
    entries[cidr] = kind;
    return absl::OkStatus();
  }
  absl::Status Remove(const IpPrefix& cidr) override {
    ++removes;
    entries.erase(cidr);
    return absl::OkStatus();
  }
};

TEST(NonMasqueradeSyncTest, WritesOnlyTheDifferencesAndAdoptsWhatAnEarlierAgentLeft) {
  FakeCidrTable table;
  // Left by the previous agent, one from before entries had kinds.
  table.entries = Kinds({"10.244.1.0/24 pods", "10.244.9.0/24", "10.244.3.0/24"});
  sync::NonMasqueradeSync sync(table);

  auto first =
      sync.Sync(Kinds({"10.244.1.0/24 pods", "10.244.2.0/24", "10.244.3.0/24 pods", "fd00:10:244:2::/64"}));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->added, 3u);  // two new, one rewritten with its kind
  EXPECT_EQ(first->removed, 1u);
  EXPECT_EQ(Texts(table.entries), (std::vector<std::string>{"10.244.1.0/24 pods", "10.244.2.0/24",
                                                            "10.244.3.0/24 pods", "fd00:10:244:2::/64"}));

  // The same set again: nothing is written, and the map is not read again.
  const int adds = table.adds, removes = table.removes;
  auto same =
      sync.Sync(Kinds({"fd00:10:244:2::/64", "10.244.3.0/24 pods", "10.244.2.0/24", "10.244.1.0/24 pods"}));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->added + same->removed, 0u);
  EXPECT_EQ(table.adds, adds);
  EXPECT_EQ(table.removes, removes);
  EXPECT_EQ(table.lists, 1);

  // A node leaves: one removal.
  auto smaller = sync.Sync(Kinds({"10.244.1.0/24 pods", "10.244.3.0/24 pods", "fd00:10:244:2::/64"}));
  ASSERT_TRUE(smaller.ok());
  EXPECT_EQ(smaller->added, 0u);
  EXPECT_EQ(smaller->removed, 1u);
  EXPECT_EQ(sync.size(), 3u);
}

}  // namespace
}  // namespace weir
