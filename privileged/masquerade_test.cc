// Egress masquerade in the tc programs, as a table run through BPF_PROG_TEST_RUN: a pod's flow out
// of the cluster leaves through the uplink with the node's address, its reply finds the pod, and
// traffic to in-cluster destinations keeps its source. The programs run inside a namespace of the
// test's own with a small routing table: an uplink (veth) with a router behind it, so that the FIB
// lookups are real; the router's MAC is a permanent neighbour entry.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>
#include <net/if.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bpf/abi/masquerade.h"
#include "gtest/gtest.h"
#include "lib/abi_codec.h"
#include "lib/datapath.h"
#include "lib/endpoint_map.h"
#include "lib/masquerade_maps.h"
#include "lib/service_maps.h"
#include "privileged/scoped_netns.h"
#include "proxy/sync/nonmasq_table.h"
#include "testlib/packets.h"

namespace weir::testing {
namespace {

const MacAddress kGw = WEIR_GATEWAY_MAC;
const MacAddress kPodA = {0x0a, 0, 0, 0, 0, 0x0a};
const MacAddress kUplink = {0x0e, 0, 0, 0, 0, 0x01};
const MacAddress kRouter = {0x0e, 0, 0, 0, 0, 0xfe};
const MacAddress kNode2 = {0x0e, 0, 0, 0, 0, 0x02};
constexpr char kNodeIp[] = "192.168.0.1";
constexpr char kNodeIp6[] = "fd00:168::1";
constexpr char kPod[] = "10.244.1.2";
constexpr char kPod6[] = "fd00:10:244:1::2";
constexpr char kServer[] = "203.0.113.10";
constexpr char kServer6[] = "2001:db8:113::10";

enum class Program { kFromPod, kFromUplink };

struct Step {
  std::string description;
  Program program;
  Bytes input;
  int verdict;
  std::optional<Bytes> output;  // nullopt: unchanged, unless `check` judges the output
  std::function<void(const Bytes& out)> check = nullptr;
  std::function<Bytes()> make_input = nullptr;  // instead of `input`: made from earlier outputs
};

uint16_t Read16(const Bytes& b, size_t at) { return static_cast<uint16_t>(b[at] << 8 | b[at + 1]); }

// A masqueraded IPv4 frame's source address and its source port (TCP/UDP) or echo identifier.
std::string SourceOf(const Bytes& frame) {
  return absl::StrFormat("%d.%d.%d.%d", frame[26], frame[27], frame[28], frame[29]);
}
uint16_t SourcePortOf(const Bytes& frame) { return Read16(frame, frame[23] == 1 ? 38 : 34); }

// The maps a case sets up: local pods, the in-cluster CIDRs, a Service.
class Maps {
 public:
  explicit Maps(const Datapath& dp)
      : endpoints_(*dp.OpenMap<EndpointMap>(DatapathMap::kEndpoints)),
        nonmasq_(*sync::BpfNonMasqTable::FromFd(UniqueFd(dup(dp.map_fd(DatapathMap::kNonMasquerade))))),
        services_(*dp.OpenMap<ServicesMap>(DatapathMap::kServices)),
        slots_(*dp.OpenMap<SlotsMap>(DatapathMap::kBackendSlots)),
        backends_(*dp.OpenMap<BackendsMap>(DatapathMap::kBackends)) {}

  void Pod(const std::string& ip, int ifindex, const MacAddress& mac) {
    ASSERT_TRUE(
        endpoints_.Upsert({.address = *IpAddress::Parse(ip), .host_ifindex = ifindex, .pod_mac = mac}).ok());
  }
  void InCluster(const std::string& cidr) {
    ASSERT_TRUE(nonmasq_->Add(*IpPrefix::Parse(cidr), sync::CidrKind::kInCluster).ok());
  }
  void PodCidr(const std::string& cidr) {
    ASSERT_TRUE(nonmasq_->Add(*IpPrefix::Parse(cidr), sync::CidrKind::kPods).ok());
  }
  void ClusterIp(const std::string& ip, uint16_t port, uint32_t service_id, const std::string& backend,
                 uint16_t backend_port) {
    ASSERT_TRUE(
        backends_.Update(service_id, abi::EncodeBackend({*IpAddress::Parse(backend), backend_port})).ok());
    ASSERT_TRUE(slots_.Update({service_id, 1}, service_id).ok());
    const weir_service_key key = abi::EncodeServiceKey({*IpAddress::Parse(ip), port});
    ASSERT_TRUE(
        services_.Update(key, {.service_id = service_id, .backend_count = 1, .flags = WEIR_SVC_CLUSTER_IP})
            .ok());
  }

 private:
  EndpointMap endpoints_;
  std::unique_ptr<sync::BpfNonMasqTable> nonmasq_;
  ServicesMap services_;
  SlotsMap slots_;
  BackendsMap backends_;
};

// What the agent computes for this node: pod CIDRs of both nodes, node addresses, and one
// nonMasqueradeCIDR per family.
void Cluster(Maps& m) {
  for (const char* cidr : {"10.244.1.0/24", "10.244.2.0/24", "fd00:10:244:1::/64", "fd00:10:244:2::/64"}) {
    m.PodCidr(cidr);
  }
  for (const char* cidr : {"192.168.0.1/32", "192.168.0.2/32", "fd00:168::1/128", "fd00:168::2/128",
                           "198.51.100.0/24", "2001:db8:51::/48"}) {
    m.InCluster(cidr);
  }
}

struct Case {
  std::string description;
  std::function<void(Maps&, int pod_ifindex)> setup;
  std::vector<Step> steps;
  bool masquerade = true;
};

Tcp Ack(std::string src, uint16_t sport, std::string dst, uint16_t dport, uint8_t ttl = 64) {
  return Tcp{.src = src,
             .sport = sport,
             .dst = dst,
             .dport = dport,
             .flags = 0x10,
             .seq = 1001,
             .ack = 5001,
             .ttl = ttl};
}
// What a packet sent on by the node carries: one hop fewer, as the node's stack would forward it.
constexpr uint8_t kForwarded = 63;

void PodA(Maps& m, int ifindex) {
  m.Pod(kPod, ifindex, kPodA);
  m.Pod(kPod6, ifindex, kPodA);
}

std::vector<Case> Cases() {
  const L2 from_a{kPodA, kGw}, to_a{kGw, kPodA};
  const L2 out{kUplink, kRouter}, in{kRouter, kUplink}, to_node2{kUplink, kNode2};
  auto cluster_with_pod = [](Maps& m, int ifindex) {
    Cluster(m);
    PodA(m, ifindex);
  };
  return {
      {"TCP to the outside leaves through the uplink as the node; the reply finds the pod",
       cluster_with_pod,
       {{"syn", Program::kFromPod, TcpPacket(from_a, SynSegment(kPod, 40000, kServer, 80)), TC_ACT_REDIRECT,
         TcpPacket(out, SynSegment(kNodeIp, 40000, kServer, 80, kForwarded))},
        {"syn-ack", Program::kFromUplink, TcpPacket(in, SynAckSegment(kServer, 80, kNodeIp, 40000)),
         TC_ACT_REDIRECT, TcpPacket(to_a, SynAckSegment(kServer, 80, kPod, 40000, 63))},
        {"the flow's next packet rides the conntrack entry", Program::kFromPod,
         TcpPacket(from_a, Ack(kPod, 40000, kServer, 80)), TC_ACT_REDIRECT,
         TcpPacket(out, Ack(kNodeIp, 40000, kServer, 80, kForwarded))}}},
      {"UDP to the outside, and its answer",
       cluster_with_pod,
       {{"query", Program::kFromPod, UdpPacket(from_a, kPod, 40001, kServer, 53), TC_ACT_REDIRECT,
         UdpPacket(out, kNodeIp, 40001, kServer, 53, kForwarded)},
        {"answer", Program::kFromUplink, UdpPacket(in, kServer, 53, kNodeIp, 40001), TC_ACT_REDIRECT,
         UdpPacket(to_a, kServer, 53, kPod, 40001, 63)}}},
      {"IPv6: TCP to the outside as the node's IPv6 address, and back",
       cluster_with_pod,
       {{"syn", Program::kFromPod, TcpPacket(from_a, SynSegment(kPod6, 40000, kServer6, 443)),
         TC_ACT_REDIRECT, TcpPacket(out, SynSegment(kNodeIp6, 40000, kServer6, 443, kForwarded))},
        {"syn-ack", Program::kFromUplink, TcpPacket(in, SynAckSegment(kServer6, 443, kNodeIp6, 40000)),
         TC_ACT_REDIRECT, TcpPacket(to_a, SynAckSegment(kServer6, 443, kPod6, 40000, 63))}}},
      {"IPv6 UDP",
       cluster_with_pod,
       {{"query", Program::kFromPod, UdpPacket(from_a, kPod6, 40002, kServer6, 53), TC_ACT_REDIRECT,
         UdpPacket(out, kNodeIp6, 40002, kServer6, 53, kForwarded)},
        {"answer", Program::kFromUplink, UdpPacket(in, kServer6, 53, kNodeIp6, 40002), TC_ACT_REDIRECT,
         UdpPacket(to_a, kServer6, 53, kPod6, 40002, 63)}}},
      {"the pod's source port is taken towards that destination: another port is picked",
       [](Maps& m, int ifindex) {
         Cluster(m);
         PodA(m, ifindex);
         m.Pod("10.244.1.3", ifindex, kPodA);
       },
       {{"first pod", Program::kFromPod, UdpPacket(from_a, kPod, 40003, kServer, 53), TC_ACT_REDIRECT,
         UdpPacket(out, kNodeIp, 40003, kServer, 53, kForwarded)},
        {"second pod, same port and destination", Program::kFromPod,
         UdpPacket(from_a, "10.244.1.3", 40003, kServer, 53), TC_ACT_REDIRECT, std::nullopt,
         [](const Bytes& out) {
           EXPECT_EQ(SourceOf(out), kNodeIp);
           EXPECT_NE(SourcePortOf(out), 40003);
           EXPECT_TRUE(L4ChecksumValid(out)) << Hex(out);
         }},
        {"the first flow's answer still reaches the first pod", Program::kFromUplink,
         UdpPacket(in, kServer, 53, kNodeIp, 40003), TC_ACT_REDIRECT,
         UdpPacket(to_a, kServer, 53, kPod, 40003, 63)}}},
      {"ICMP echo to the outside as the node, by identifier, and its reply",
       cluster_with_pod,
       {{"request", Program::kFromPod, IcmpEcho(from_a, kPod, kServer, 0x1234), TC_ACT_REDIRECT,
         IcmpEcho(out, kNodeIp, kServer, 0x1234, false, kForwarded)},
        {"reply", Program::kFromUplink, IcmpEcho(in, kServer, kNodeIp, 0x1234, true), TC_ACT_REDIRECT,
         IcmpEcho(to_a, kServer, kPod, 0x1234, true, 63)},
        {"a reply nobody asked for goes to the stack", Program::kFromUplink,
         IcmpEcho(in, kServer, kNodeIp, 0x4321, true), TC_ACT_OK, std::nullopt}}},
      {"ICMPv6 echo",
       cluster_with_pod,
       {{"request", Program::kFromPod, IcmpEcho(from_a, kPod6, kServer6, 0x1234), TC_ACT_REDIRECT,
         IcmpEcho(out, kNodeIp6, kServer6, 0x1234, false, kForwarded)},
        {"reply", Program::kFromUplink, IcmpEcho(in, kServer6, kNodeIp6, 0x1234, true), TC_ACT_REDIRECT,
         IcmpEcho(to_a, kServer6, kPod6, 0x1234, true, 63)}}},
      {"a pod's echo reply (to someone else's request) and a ping inside the cluster keep the source",
       cluster_with_pod,
       {{"echo reply", Program::kFromPod, IcmpEcho(from_a, kPod, kServer, 7, true), TC_ACT_OK, std::nullopt},
        {"ping another node's pod", Program::kFromPod, IcmpEcho(from_a, kPod, "10.244.2.7", 7), TC_ACT_OK,
         std::nullopt}}},
      [&] {
        // Two pods ping the same server with the same identifier: the second gets another one,
        // rewritten in the request and back in the reply, checksums intact.
        auto rewritten = std::make_shared<uint16_t>(0);
        return Case{
            "the identifier is taken: another is picked and translated back",
            [](Maps& m, int ifindex) {
              Cluster(m);
              PodA(m, ifindex);
              m.Pod("10.244.1.3", ifindex, kPodA);
            },
            {{"first pod", Program::kFromPod, IcmpEcho(from_a, kPod, kServer, 0x77), TC_ACT_REDIRECT,
              IcmpEcho(out, kNodeIp, kServer, 0x77, false, kForwarded)},
             {"second pod", Program::kFromPod, IcmpEcho(from_a, "10.244.1.3", kServer, 0x77), TC_ACT_REDIRECT,
              std::nullopt,
              [rewritten](const Bytes& out) {
                EXPECT_EQ(SourceOf(out), kNodeIp);
                *rewritten = SourcePortOf(out);
                EXPECT_NE(*rewritten, 0x77);
                EXPECT_TRUE(L4ChecksumValid(out)) << Hex(out);
              }},
             {"its reply",
              Program::kFromUplink,
              {},
              TC_ACT_REDIRECT,
              std::nullopt,
              [](const Bytes& out) {
                EXPECT_EQ(out, IcmpEcho(L2{kGw, kPodA}, kServer, "10.244.1.3", 0x77, true, 63)) << Hex(out);
              },
              [rewritten, in] { return IcmpEcho(in, kServer, kNodeIp, *rewritten, true); }}}};
      }(),
      {"in-cluster destinations keep the pod's source",
       cluster_with_pod,
       {{"a nonMasqueradeCIDR", Program::kFromPod,
         TcpPacket(from_a, SynSegment(kPod, 40000, "198.51.100.7", 80)), TC_ACT_OK, std::nullopt},
        {"a nonMasqueradeCIDR (IPv6)", Program::kFromPod,
         TcpPacket(from_a, SynSegment(kPod6, 40000, "2001:db8:51::7", 80)), TC_ACT_OK, std::nullopt},
        {"another node's pod", Program::kFromPod, UdpPacket(from_a, kPod, 40000, "10.244.2.7", 53), TC_ACT_OK,
         std::nullopt},
        {"another node's pod (IPv6)", Program::kFromPod,
         UdpPacket(from_a, kPod6, 40000, "fd00:10:244:2::7", 53), TC_ACT_OK, std::nullopt},
        {"another node", Program::kFromPod, TcpPacket(from_a, SynSegment(kPod, 40000, "192.168.0.2", 10250)),
         TC_ACT_OK, std::nullopt},
        {"this node", Program::kFromPod, TcpPacket(from_a, SynSegment(kPod, 40000, kNodeIp, 10250)),
         TC_ACT_OK, std::nullopt}}},
      {"a destination routed through a device that is no uplink keeps the pod's source",
       cluster_with_pod,
       {{"syn", Program::kFromPod, TcpPacket(from_a, SynSegment(kPod, 40000, "172.31.0.9", 80)), TC_ACT_OK,
         std::nullopt}}},
      {"a pod's answer to a TCP connection it did not open is not masqueraded",
       cluster_with_pod,
       {{"syn-ack", Program::kFromPod, TcpPacket(from_a, SynAckSegment(kPod, 8080, kServer, 40000)),
         TC_ACT_OK, std::nullopt}}},
      {"a pod's answer to an outside client's UDP flow is not masqueraded",
       cluster_with_pod,
       // The stack delivers it (a peer that is no pod: netfilter sees the flow whole).
       {{"query from outside", Program::kFromUplink, UdpPacket(in, kServer, 5353, kPod, 53), TC_ACT_OK,
         std::nullopt},
        {"answer", Program::kFromPod, UdpPacket(from_a, kPod, 53, kServer, 5353), TC_ACT_OK, std::nullopt},
        {"the pod's own new flow to that client is", Program::kFromPod,
         UdpPacket(from_a, kPod, 54, kServer, 5353), TC_ACT_REDIRECT,
         UdpPacket(out, kNodeIp, 54, kServer, 5353, kForwarded)}}},
      {"from the uplink, another node's pod enters the pod directly; a node goes through the stack",
       cluster_with_pod,
       {{"another node's pod", Program::kFromUplink, UdpPacket(in, "10.244.2.7", 5353, kPod, 53),
         TC_ACT_REDIRECT, UdpPacket(to_a, "10.244.2.7", 5353, kPod, 53, 63)},
        {"another node", Program::kFromUplink, UdpPacket(in, "192.168.0.2", 5353, kPod, 53), TC_ACT_OK,
         std::nullopt}}},
      {"a Service whose backend is on another node: translated as before, not masqueraded",
       [](Maps& m, int ifindex) {
         Cluster(m);
         PodA(m, ifindex);
         m.ClusterIp("10.96.0.10", 80, 1, "10.244.2.7", 8080);
       },
       {{"syn", Program::kFromPod, TcpPacket(from_a, SynSegment(kPod, 40000, "10.96.0.10", 80)),
         TC_ACT_REDIRECT, TcpPacket(to_node2, SynSegment(kPod, 40000, "10.244.2.7", 8080, kForwarded))}}},
      {"masquerade off: the pod's source leaves unchanged",
       cluster_with_pod,
       {{"syn", Program::kFromPod, TcpPacket(from_a, SynSegment(kPod, 40000, kServer, 80)), TC_ACT_OK,
         std::nullopt},
        {"udp", Program::kFromPod, UdpPacket(from_a, kPod, 40001, kServer, 53), TC_ACT_OK, std::nullopt}},
       false},
  };
}

// Commands in the test's namespace (`ip -n`, and sysctls there: never the machine's own).
void InNetns(const ScopedNetNs& ns, const std::string& command) {
  const std::string line = absl::StrCat("ip netns exec ", ns.name(), " sh -ec '", command, "'");
  ASSERT_EQ(std::system(line.c_str()), 0) << line;
}

std::string MacText(const MacAddress& mac) {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

// uplink0 (the node's address, the router behind it, node2 beside it), other0 (a route that is not
// the uplink's), and pod0: the host end of a pod's veth, the interface pod traffic comes in on.
void WireNode(const ScopedNetNs& ns) {
  InNetns(ns,
          absl::StrCat("sysctl -qw net.ipv4.conf.all.forwarding=1 net.ipv6.conf.all.forwarding=1;"
                       "ip link add uplink0 address ",
                       MacText(kUplink),
                       " type veth peer name fabric0;"
                       "ip link add other0 type veth peer name other1;"
                       "ip link add pod0 type veth peer name pod1;"
                       "for l in uplink0 fabric0 other0 other1 pod0 pod1; do ip link set $l up; done;"
                       "ip addr add 192.168.0.1/24 dev uplink0; ip addr add fd00:168::1/64 dev uplink0 nodad;"
                       "ip addr add 172.31.0.1/16 dev other0;"
                       "ip neigh add 192.168.0.254 lladdr ",
                       MacText(kRouter),
                       " dev uplink0 nud permanent;"
                       "ip neigh add fd00:168::fe lladdr ",
                       MacText(kRouter),
                       " dev uplink0 nud permanent;"
                       "ip neigh add 192.168.0.2 lladdr ",
                       MacText(kNode2),
                       " dev uplink0 nud permanent;"
                       "ip neigh add 172.31.0.9 lladdr ",
                       MacText(kRouter),
                       " dev other0 nud permanent;"
                       "ip route add default via 192.168.0.254; ip -6 route add default via fd00:168::fe;"
                       "ip route add 10.244.2.0/24 via 192.168.0.2"));
}

// The test's own checksum verifier, which judges the rewritten packets above.
TEST(L4ChecksumTest, AcceptsWhatThePacketBuildersMakeAndRejectsACorruption) {
  const L2 l2{kPodA, kGw};
  for (Bytes packet :
       {IcmpEcho(l2, kPod, kServer, 9), IcmpEcho(l2, kPod6, kServer6, 9, true),
        UdpPacket(l2, kPod, 1, kServer, 2), TcpPacket(l2, SynSegment(kPod6, 1, kServer6, 2))}) {
    EXPECT_TRUE(L4ChecksumValid(packet)) << Hex(packet);
    packet[packet.size() - 1] ^= 0x01;
    EXPECT_FALSE(L4ChecksumValid(packet)) << Hex(packet);
  }
}

class MasqueradeTest : public ::testing::TestWithParam<Case> {};

TEST_P(MasqueradeTest, Steps) {
  const Case& c = GetParam();
  SCOPED_TRACE(c.description);
  auto ns = ScopedNetNs::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  WireNode(**ns);
  int pod_ifindex = 0, uplink_ifindex = 0;
  ASSERT_TRUE((*ns)
                  ->ns()
                  .Run([&] {
                    pod_ifindex = static_cast<int>(if_nametoindex("pod0"));
                    uplink_ifindex = static_cast<int>(if_nametoindex("uplink0"));
                    return absl::OkStatus();
                  })
                  .ok());
  ASSERT_GT(pod_ifindex, 0);
  ASSERT_GT(uplink_ifindex, 0);

  auto loaded = Datapath::Load(DatapathOptions{.gateway_mac = kGw,
                                               .node_ipv4 = *IpAddress::Parse(kNodeIp),
                                               .node_ipv6 = *IpAddress::Parse(kNodeIp6),
                                               .masquerade = c.masquerade});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::unique_ptr<Datapath> dp = std::move(*loaded);
  Maps maps(*dp);
  c.setup(maps, pod_ifindex);
  auto uplinks = dp->OpenMap<UplinksMap>(DatapathMap::kUplinks);
  ASSERT_TRUE(uplinks.ok()) << uplinks.status();
  ASSERT_TRUE(uplinks->Update(static_cast<uint32_t>(uplink_ifindex), 0).ok());

  for (const Step& step : c.steps) {
    SCOPED_TRACE(step.description);
    const Bytes input = step.make_input ? step.make_input() : step.input;
    const bool from_pod = step.program == Program::kFromPod;
    // The interface the packet comes in on: the FIB lookups start from it.
    __sk_buff context{};
    context.ifindex = static_cast<__u32>(from_pod ? pod_ifindex : uplink_ifindex);
    context.ingress_ifindex = context.ifindex;
    Bytes out(input.size() + 128);
    __u32 retval = 0, out_size = 0;
    absl::Status ran = (*ns)->ns().Run([&] {
      DECLARE_LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = input.data(), .data_out = out.data(),
                          .data_size_in = (__u32)input.size(), .data_size_out = (__u32)out.size(),
                          .ctx_in = &context, .ctx_size_in = sizeof(context));
      if (bpf_prog_test_run_opts(from_pod ? dp->from_pod_fd() : dp->from_uplink_fd(), &run) != 0) {
        return absl::ErrnoToStatus(errno, "test run");
      }
      retval = run.retval;
      out_size = run.data_size_out;
      return absl::OkStatus();
    });
    ASSERT_TRUE(ran.ok()) << ran;
    out.resize(out_size);
    EXPECT_EQ(static_cast<int>(retval), step.verdict);
    if (step.check) {
      step.check(out);
      continue;
    }
    const Bytes& expected = step.output ? *step.output : input;
    EXPECT_EQ(out, expected) << "got:\n" << Hex(out) << "\nwant:\n" << Hex(expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Table, MasqueradeTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::to_string(info.index);
                         });

}  // namespace
}  // namespace weir::testing
