// The uplink's XDP program (bpf/from_uplink_xdp.bpf.c), as a table run through BPF_PROG_TEST_RUN:
// NodePort and LoadBalancer flows to a backend on another node leave from XDP (SNAT, and DSR's
// wrapping), their replies go back to the client from XDP, and what XDP leaves to tc goes on with
// the translation's result in the XDP metadata, or unmarked when XDP did not touch it. The program
// runs inside a namespace of the test's own with a small routing table (an uplink with a router and
// another node behind it, permanent neighbour entries), so that its FIB lookups are real. Every
// case runs through both entry points, native mode's and generic mode's, which share one body.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bpf/abi/metrics.h"
#include "bpf/abi/service.h"
#include "gtest/gtest.h"
#include "lib/abi_codec.h"
#include "lib/datapath.h"
#include "lib/endpoint_map.h"
#include "lib/service_maps.h"
#include "privileged/scoped_netns.h"
#include "testlib/packets.h"

namespace weir::testing {
namespace {

const MacAddress kGw = WEIR_GATEWAY_MAC;
const MacAddress kPodA = {0x0a, 0, 0, 0, 0, 0x0a};
const MacAddress kUplink = {0x0e, 0, 0, 0, 0, 0x01};
const MacAddress kNode2 = {0x0e, 0, 0, 0, 0, 0x02};
const MacAddress kRouter = {0x0e, 0, 0, 0, 0, 0xfe};
constexpr char kNodeIp[] = "192.168.0.1";
constexpr char kNodeIp6[] = "fd00:168::1";
constexpr char kClient[] = "172.16.0.5";  // outside, behind the router
constexpr char kClient6[] = "2001:db8:16::5";
constexpr char kRemote[] = "10.244.2.7";  // a pod on node2, 192.168.0.2
constexpr char kRemote6[] = "fd00:10:244:2::7";
constexpr char kLocal[] = "10.244.1.2";  // a pod of this node

// The verdicts (linux/bpf.h enum xdp_action), by name in the table.
constexpr int kPass = XDP_PASS, kTx = XDP_TX;
// enum translation (bpf/lib/service_nat.h), as XDP hands it on.
constexpr uint32_t kNotTranslated = 0, kTranslated = 1, kNoBackend = 2;

struct Step {
  std::string description;
  Bytes input;
  int verdict;
  std::optional<Bytes> output;                     // nullopt: unchanged
  std::optional<uint32_t> handoff = std::nullopt;  // the translation's result XDP handed on, if any
};

constexpr uint16_t kNodePortFlags = WEIR_SVC_NODE_PORT;
constexpr uint16_t kDsrFlags = WEIR_SVC_LOAD_BALANCER | WEIR_SVC_DSR;

class Maps {
 public:
  explicit Maps(const Datapath& dp)
      : services_(*dp.OpenMap<ServicesMap>(DatapathMap::kServices)),
        slots_(*dp.OpenMap<SlotsMap>(DatapathMap::kBackendSlots)),
        backends_(*dp.OpenMap<BackendsMap>(DatapathMap::kBackends)),
        endpoints_(*dp.OpenMap<EndpointMap>(DatapathMap::kEndpoints)) {}

  void Pod(const std::string& ip, int ifindex, const MacAddress& mac) {
    ASSERT_TRUE(
        endpoints_.Upsert({.address = *IpAddress::Parse(ip), .host_ifindex = ifindex, .pod_mac = mac}).ok());
  }
  // A frontend with one backend.
  void Service(const std::string& ip, uint16_t port, uint8_t proto, uint32_t id, uint16_t flags,
               const std::string& backend, uint16_t backend_port, bool local) {
    ASSERT_TRUE(backends_
                    .Update(id, abi::EncodeBackend({*IpAddress::Parse(backend), backend_port, proto,
                                                    static_cast<uint16_t>(local ? WEIR_BACKEND_LOCAL : 0)}))
                    .ok());
    ASSERT_TRUE(slots_.Update({id, 1}, id).ok());
    const weir_service_key key = abi::EncodeServiceKey({*IpAddress::Parse(ip), port, proto});
    ASSERT_TRUE(services_.Update(key, {.service_id = id, .backend_count = 1, .flags = flags}).ok());
  }
  void ServiceWithoutBackends(const std::string& ip, uint16_t port, uint8_t proto, uint32_t id) {
    const weir_service_key key = abi::EncodeServiceKey({*IpAddress::Parse(ip), port, proto});
    ASSERT_TRUE(services_.Update(key, {.service_id = id, .backend_count = 0, .flags = kNodePortFlags}).ok());
  }

 private:
  ServicesMap services_;
  SlotsMap slots_;
  BackendsMap backends_;
  EndpointMap endpoints_;
};

struct Case {
  std::string description;
  std::function<void(Maps&)> setup;
  std::vector<Step> steps;
};

// What a packet sent on by the node carries: one hop fewer, as the node's stack would forward it.
constexpr uint8_t kForwarded = 63;

// `packet` with its UDP checksum cleared: a sender that computed none.
Bytes WithoutUdpChecksum(Bytes packet) {
  packet[14 + 20 + 6] = 0;
  packet[14 + 20 + 7] = 0;
  return packet;
}

std::vector<Case> Cases() {
  const L2 from_client{kRouter, kUplink}, to_client{kUplink, kRouter};
  const L2 from_node2{kNode2, kUplink}, to_node2{kUplink, kNode2};
  const int kAnyIfindex = 77;
  return {
      {"NodePort TCP to a backend on another node, SNAT: the syn and the syn-ack leave from XDP",
       [](Maps& m) { m.Service(kNodeIp, 30080, WEIR_PROTO_TCP, 1, kNodePortFlags, kRemote, 8080, false); },
       {{"syn, out to node2 as the node", TcpPacket(from_client, SynSegment(kClient, 40000, kNodeIp, 30080)),
         kTx, TcpPacket(to_node2, SynSegment(kNodeIp, 40000, kRemote, 8080, kForwarded))},
        {"syn-ack, back to the client as the NodePort",
         TcpPacket(from_node2, SynAckSegment(kRemote, 8080, kNodeIp, 40000)), kTx,
         TcpPacket(to_client, SynAckSegment(kNodeIp, 30080, kClient, 40000, kForwarded))}}},
      {"NodePort UDP, SNAT, both ways; a datagram without a checksum keeps none",
       [](Maps& m) { m.Service(kNodeIp, 30090, WEIR_PROTO_UDP, 2, kNodePortFlags, kRemote, 9000, false); },
       {{"datagram", UdpPacket(from_client, kClient, 40001, kNodeIp, 30090), kTx,
         UdpPacket(to_node2, kNodeIp, 40001, kRemote, 9000, kForwarded)},
        {"answer", UdpPacket(from_node2, kRemote, 9000, kNodeIp, 40001), kTx,
         UdpPacket(to_client, kNodeIp, 30090, kClient, 40001, kForwarded)},
        {"datagram without a checksum",
         WithoutUdpChecksum(UdpPacket(from_client, kClient, 40002, kNodeIp, 30090)), kTx,
         WithoutUdpChecksum(UdpPacket(to_node2, kNodeIp, 40002, kRemote, 9000, kForwarded))}}},
      {"IPv6 NodePort, SNAT, both ways",
       [](Maps& m) { m.Service(kNodeIp6, 30080, WEIR_PROTO_TCP, 3, kNodePortFlags, kRemote6, 8080, false); },
       {{"syn", TcpPacket(from_client, SynSegment(kClient6, 40000, kNodeIp6, 30080)), kTx,
         TcpPacket(to_node2, SynSegment(kNodeIp6, 40000, kRemote6, 8080, kForwarded))},
        {"syn-ack", TcpPacket(from_node2, SynAckSegment(kRemote6, 8080, kNodeIp6, 40000)), kTx,
         TcpPacket(to_client, SynAckSegment(kNodeIp6, 30080, kClient6, 40000, kForwarded))}}},
      {"LoadBalancer IP in DSR mode: XDP wraps the client's packet in IPIP to the backend, port in the id",
       [](Maps& m) { m.Service("203.0.113.20", 80, WEIR_PROTO_TCP, 4, kDsrFlags, kRemote, 8080, false); },
       {{"syn", TcpPacket(from_client, SynSegment(kClient, 40000, "203.0.113.20", 80)), kTx,
         Ipip(to_node2, kNodeIp, kRemote, 8080,
              TcpPacket(to_node2, SynSegment(kClient, 40000, "203.0.113.20", 80)))},
        {"the flow's next packet, wrapped the same way",
         TcpPacket(from_client, SynAckSegment(kClient, 40000, "203.0.113.20", 80)), kTx,
         Ipip(to_node2, kNodeIp, kRemote, 8080,
              TcpPacket(to_node2, SynAckSegment(kClient, 40000, "203.0.113.20", 80)))}}},
      {"IPv6 LoadBalancer IP in DSR mode: IPv6-in-IPv6, port in the flow label",
       [](Maps& m) {
         m.Service("2001:db8:113::20", 80, WEIR_PROTO_TCP, 5, kDsrFlags, kRemote6, 8080, false);
       },
       {{"syn", TcpPacket(from_client, SynSegment(kClient6, 40000, "2001:db8:113::20", 80)), kTx,
         Ip6ip6(to_node2, kNodeIp6, kRemote6, 8080,
                TcpPacket(to_node2, SynSegment(kClient6, 40000, "2001:db8:113::20", 80)))}}},
      {"a local backend: translated here, handed on to tc to enter the pod",
       [kAnyIfindex](Maps& m) {
         m.Pod(kLocal, kAnyIfindex, kPodA);
         m.Service(kNodeIp, 30080, WEIR_PROTO_TCP, 6, kNodePortFlags, kLocal, 8080, true);
       },
       {{"syn", TcpPacket(from_client, SynSegment(kClient, 40000, kNodeIp, 30080)), kPass,
         TcpPacket(from_client, SynSegment(kClient, 40000, kLocal, 8080)), kTranslated}}},
      {"no Service: handed on untouched, marked so that tc does not look again",
       [](Maps& m) {},
       {{"a pod of node2 to a pod of this node",
         TcpPacket(from_node2, SynSegment("10.244.2.9", 40000, kLocal, 80)), kPass, std::nullopt,
         kNotTranslated}}},
      {"a Service without a backend: handed on for tc to answer",
       [](Maps& m) { m.ServiceWithoutBackends(kNodeIp, 30080, WEIR_PROTO_TCP, 7); },
       {{"syn", TcpPacket(from_client, SynSegment(kClient, 40000, kNodeIp, 30080)), kPass, std::nullopt,
         kNoBackend}}},
      {"what XDP leaves alone goes on unmarked: DSR from node2, ICMP, an IPv4 option",
       [](Maps& m) {},
       {{"IPIP from node2",
         Ipip(from_node2, "192.168.0.2", kLocal, 8080,
              TcpPacket(from_node2, SynSegment(kClient, 40000, "203.0.113.20", 80))),
         kPass, std::nullopt},
        {"ping", IcmpEcho(from_client, kClient, kNodeIp, 7), kPass, std::nullopt},
        {"TCP with an IPv4 option",
         WithIpv4Option(TcpPacket(from_node2, SynSegment(kClient, 40000, kLocal, 8080)),
                        {0x9a, 8, 0, 80, 203, 0, 113, 20}),
         kPass, std::nullopt}}},
  };
}

// Commands in the test's namespace (`ip netns exec`, and sysctls there: never the machine's own).
void InNetns(const ScopedNetNs& ns, const std::string& command) {
  const std::string line = absl::StrCat("ip netns exec ", ns.name(), " sh -ec '", command, "'");
  ASSERT_EQ(std::system(line.c_str()), 0) << line;
}

std::string MacText(const MacAddress& mac) {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

// uplink0: the node's addresses, the router (default route) and node2 (its pod CIDRs) behind it.
void WireNode(const ScopedNetNs& ns) {
  InNetns(ns,
          absl::StrCat("sysctl -qw net.ipv4.conf.all.forwarding=1 net.ipv6.conf.all.forwarding=1;"
                       "ip link add uplink0 address ",
                       MacText(kUplink), " type veth peer name fabric0;",
                       "ip link set uplink0 up; ip link set fabric0 up;"
                       "ip addr add 192.168.0.1/24 dev uplink0; ip addr add fd00:168::1/64 dev uplink0 nodad;"
                       "ip neigh add 192.168.0.254 lladdr ",
                       MacText(kRouter), " dev uplink0 nud permanent;", "ip neigh add fd00:168::fe lladdr ",
                       MacText(kRouter), " dev uplink0 nud permanent;", "ip neigh add 192.168.0.2 lladdr ",
                       MacText(kNode2), " dev uplink0 nud permanent;", "ip neigh add fd00:168::2 lladdr ",
                       MacText(kNode2), " dev uplink0 nud permanent;",
                       "ip route add default via 192.168.0.254; ip -6 route add default via fd00:168::fe;"
                       "ip route add 10.244.2.0/24 via 192.168.0.2;"
                       "ip -6 route add fd00:10:244:2::/64 via fd00:168::2"));
}

// The metadata XDP puts in front of a packet it hands on, as the test run returns it.
Bytes HandoffBytes(uint32_t translation) {
  const uint32_t words[2] = {0x77656972u, translation};
  Bytes bytes(sizeof(words));
  std::memcpy(bytes.data(), words, sizeof(words));
  return bytes;
}

class XdpTest : public ::testing::TestWithParam<std::tuple<Case, XdpMode>> {};

TEST_P(XdpTest, Steps) {
  const auto& [c, mode] = GetParam();
  SCOPED_TRACE(absl::StrCat(c.description, " (", XdpModeName(mode), ")"));
  auto ns = ScopedNetNs::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  WireNode(**ns);
  int uplink_ifindex = 0;
  ASSERT_TRUE((*ns)
                  ->ns()
                  .Run([&] {
                    uplink_ifindex = static_cast<int>(if_nametoindex("uplink0"));
                    return absl::OkStatus();
                  })
                  .ok());
  ASSERT_GT(uplink_ifindex, 0);
  auto loaded = Datapath::Load(DatapathOptions{
      .gateway_mac = kGw, .node_ipv4 = *IpAddress::Parse(kNodeIp), .node_ipv6 = *IpAddress::Parse(kNodeIp6)});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::unique_ptr<Datapath> dp = std::move(*loaded);
  Maps maps(*dp);
  c.setup(maps);

  for (const Step& step : c.steps) {
    SCOPED_TRACE(step.description);
    xdp_md context{};
    context.data_end = static_cast<__u32>(step.input.size());
    context.ingress_ifindex = static_cast<__u32>(uplink_ifindex);
    Bytes out(step.input.size() + 128);
    __u32 retval = 0, out_size = 0;
    absl::Status ran = (*ns)->ns().Run([&] {
      DECLARE_LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = step.input.data(), .data_out = out.data(),
                          .data_size_in = (__u32)step.input.size(), .data_size_out = (__u32)out.size(),
                          .ctx_in = &context, .ctx_size_in = sizeof(context));
      if (bpf_prog_test_run_opts(dp->from_uplink_xdp_fd(mode), &run) != 0) {
        return absl::ErrnoToStatus(errno, "test run");
      }
      retval = run.retval;
      out_size = run.data_size_out;
      return absl::OkStatus();
    });
    ASSERT_TRUE(ran.ok()) << ran;
    out.resize(out_size);
    EXPECT_EQ(static_cast<int>(retval), step.verdict);
    Bytes expected = step.handoff ? HandoffBytes(*step.handoff) : Bytes{};
    const Bytes& packet = step.output ? *step.output : step.input;
    expected.insert(expected.end(), packet.begin(), packet.end());
    EXPECT_EQ(out, expected) << "got:\n" << Hex(out) << "\nwant:\n" << Hex(expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Table, XdpTest,
                         ::testing::Combine(::testing::ValuesIn(Cases()),
                                            ::testing::Values(XdpMode::kNative, XdpMode::kGeneric)),
                         [](const ::testing::TestParamInfo<std::tuple<Case, XdpMode>>& info) {
                           return absl::StrCat(info.index / 2, "_", XdpModeName(std::get<1>(info.param)));
                         });

}  // namespace
}  // namespace weir::testing
