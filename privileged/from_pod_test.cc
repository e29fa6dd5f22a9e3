// The pod program's decisions, as a table run through BPF_PROG_TEST_RUN on a private (unpinned)
// copy of the datapath: {description, endpoints, input packet, expected verdict, expected output}.
#include <bpf/bpf.h>
#include <linux/pkt_cls.h>

#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lib/datapath.h"
#include "lib/endpoint_map.h"
#include "testlib/packets.h"

namespace weir::testing {
namespace {

const MacAddress kGatewayMac = WEIR_GATEWAY_MAC;
const MacAddress kPodAMac = {0x0a, 0x00, 0x00, 0x00, 0x00, 0x0a};
const MacAddress kPodBMac = {0x0a, 0x00, 0x00, 0x00, 0x00, 0x0b};
constexpr int kPodBHostIfindex = 42;

struct EndpointRow {
  std::string address;
  uint16_t flags;
};

struct Case {
  std::string description;
  std::vector<EndpointRow> endpoints;
  Bytes input;
  int verdict;
  std::optional<Bytes> output;  // nullopt: the packet leaves unchanged
};

std::vector<Case> Cases() {
  const L2 from_a{kPodAMac, kGatewayMac};
  const L2 to_b{kGatewayMac, kPodBMac};
  const std::vector<EndpointRow> pods = {{"10.244.1.2", WEIR_ENDPOINT_LOCAL_POD},
                                         {"10.244.1.3", WEIR_ENDPOINT_LOCAL_POD},
                                         {"fd00::3", WEIR_ENDPOINT_LOCAL_POD},
                                         {"10.0.0.1", WEIR_ENDPOINT_HOST}};
  return {
      {"ipv4 to a pod on this node is redirected into it, one hop older", pods,
       Ipv4Udp(from_a, "10.244.1.2", "10.244.1.3", 64), TC_ACT_REDIRECT,
       Ipv4Udp(to_b, "10.244.1.2", "10.244.1.3", 63)},
      {"ipv6 to a pod on this node is redirected into it", pods, Ipv6Udp(from_a, "fd00::2", "fd00::3", 64),
       TC_ACT_REDIRECT, Ipv6Udp(to_b, "fd00::2", "fd00::3", 63)},
      {"ipv4 to an address of the node goes to the stack", pods, Ipv4Udp(from_a, "10.244.1.2", "10.0.0.1"),
       TC_ACT_OK, std::nullopt},
      {"ipv4 to an unknown destination goes to the stack for routing", pods,
       Ipv4Udp(from_a, "10.244.1.2", "10.244.2.9"), TC_ACT_OK, std::nullopt},
      {"ipv6 to an unknown destination goes to the stack", pods, Ipv6Udp(from_a, "fd00::2", "fd00:1::9"),
       TC_ACT_OK, std::nullopt},
      {"ttl 1 is left to the stack, which answers time exceeded", pods,
       Ipv4Udp(from_a, "10.244.1.2", "10.244.1.3", 1), TC_ACT_OK, std::nullopt},
      {"arp for the gateway is answered with the gateway mac",
       {},
       ArpRequest(kPodAMac, "10.244.1.2", "169.254.1.1"),
       TC_ACT_REDIRECT,
       ArpReply(kGatewayMac, "169.254.1.1", kPodAMac, "10.244.1.2")},
      {"arp for another pod is answered too: no bridge", pods,
       ArpRequest(kPodAMac, "10.244.1.2", "10.244.1.3"), TC_ACT_REDIRECT,
       ArpReply(kGatewayMac, "10.244.1.3", kPodAMac, "10.244.1.2")},
      {"gratuitous arp goes to the stack",
       {},
       ArpRequest(kPodAMac, "10.244.1.2", "10.244.1.2"),
       TC_ACT_OK,
       std::nullopt},
      {"neighbour solicitation for the gateway gets an advertisement",
       {},
       NeighborSolicit(kPodAMac, "fe80::a", "fe80::1"),
       TC_ACT_REDIRECT,
       NeighborAdvert(kGatewayMac, "fe80::1", kPodAMac, "fe80::a")},
      {"unicast solicitation without an option still gets a full advertisement",
       {},
       NeighborSolicit(kPodAMac, "fd00::2", "fe80::1", false),
       TC_ACT_REDIRECT,
       NeighborAdvert(kGatewayMac, "fe80::1", kPodAMac, "fd00::2")},
      {"duplicate address detection (source ::) goes to the stack",
       {},
       NeighborSolicit(kPodAMac, "::", "fd00::2", false),
       TC_ACT_OK,
       std::nullopt},
  };
}

class FromPodTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    auto loaded = Datapath::Load(DatapathOptions{.gateway_mac = kGatewayMac});
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    datapath_ = std::move(*loaded);
  }
  std::unique_ptr<Datapath> datapath_;
};

TEST_P(FromPodTest, Verdict) {
  const Case& c = GetParam();
  SCOPED_TRACE(c.description);
  EndpointMap endpoints = *datapath_->OpenMap<EndpointMap>(DatapathMap::kEndpoints);
  for (const EndpointRow& row : c.endpoints) {
    Endpoint ep{.address = *IpAddress::Parse(row.address),
                .host_ifindex = kPodBHostIfindex,
                .pod_mac = kPodBMac,
                .flags = row.flags};
    ASSERT_TRUE(endpoints.Upsert(ep).ok());
  }

  Bytes out(c.input.size() + 64);
  DECLARE_LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = c.input.data(), .data_out = out.data(),
                      .data_size_in = (__u32)c.input.size(), .data_size_out = (__u32)out.size());
  ASSERT_EQ(bpf_prog_test_run_opts(datapath_->from_pod_fd(), &run), 0) << strerror(errno);
  out.resize(run.data_size_out);

  EXPECT_EQ(static_cast<int>(run.retval), c.verdict);
  const Bytes& expected = c.output ? *c.output : c.input;
  EXPECT_EQ(out, expected) << "got:\n" << Hex(out) << "\nwant:\n" << Hex(expected);
}

INSTANTIATE_TEST_SUITE_P(Table, FromPodTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::to_string(info.index);
                         });

}  // namespace
}  // namespace weir::testing
