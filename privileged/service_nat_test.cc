// Service translation in the tc programs, as a table run through BPF_PROG_TEST_RUN: each case sets
// up maps, then feeds packets through from_pod, from_uplink or to_uplink in order (conntrack state carries
// from one step to the next) and compares verdict and output packet byte for byte. The programs
// run inside a namespace of the test's own, so FIB lookups see an empty routing table.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>
#include <time.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "bpf/abi/events.h"
#include "bpf/abi/metrics.h"
#include "gtest/gtest.h"
#include "lib/abi_codec.h"
#include "lib/datapath.h"
#include "lib/endpoint_map.h"
#include "lib/service_maps.h"
#include "privileged/scoped_netns.h"
#include "proxy/sync/nonmasq_table.h"
#include "testlib/packets.h"

namespace weir::testing {
namespace {

const MacAddress kGw = WEIR_GATEWAY_MAC;
const MacAddress kPodA = {0x0a, 0, 0, 0, 0, 0x0a};
const MacAddress kPodB = {0x0a, 0, 0, 0, 0, 0x0b};
const MacAddress kClient = {0x0c, 0, 0, 0, 0, 0x0c};
const MacAddress kUplink = {0x0e, 0, 0, 0, 0, 0x01};
const MacAddress kOtherNode = {0x0e, 0, 0, 0, 0, 0x02};
constexpr char kNodeIp[] = "192.168.0.1";
constexpr char kNodeIp6[] = "fd00:168::1";

enum class Program { kFromPod, kFromUplink, kToUplink };

struct Step {
  std::string description;
  Program program;
  Bytes input;
  int verdict;
  std::optional<Bytes> output;  // nullopt: unchanged
};

class Maps {
 public:
  explicit Maps(const Datapath& dp)
      : services_(*dp.OpenMap<ServicesMap>(DatapathMap::kServices)),
        slots_(*dp.OpenMap<SlotsMap>(DatapathMap::kBackendSlots)),
        backends_(*dp.OpenMap<BackendsMap>(DatapathMap::kBackends)),
        maglev_(*dp.OpenMap<MaglevMap>(DatapathMap::kMaglev)),
        endpoints_(*dp.OpenMap<EndpointMap>(DatapathMap::kEndpoints)),
        affinity_(*dp.OpenMap<AffinityMap>(DatapathMap::kAffinity)),
        nonmasq_(*sync::BpfNonMasqTable::FromFd(UniqueFd(dup(dp.map_fd(DatapathMap::kNonMasquerade))))) {}

  // Another node of the cluster: the only sender whose DSR packets are unwrapped.
  void Node(const std::string& ip) {
    const IpAddress address = *IpAddress::Parse(ip);
    ASSERT_TRUE(nonmasq_->Add(IpPrefix(address, address.bit_length()), sync::CidrKind::kNode).ok());
  }

  void Pod(const std::string& ip, int ifindex, const MacAddress& mac) {
    ASSERT_TRUE(
        endpoints_.Upsert({.address = *IpAddress::Parse(ip), .host_ifindex = ifindex, .pod_mac = mac}).ok());
  }
  void Backend(uint32_t id, const std::string& ip, uint16_t port, bool local) {
    const weir_backend b = abi::EncodeBackend(
        {*IpAddress::Parse(ip), port, WEIR_PROTO_TCP, static_cast<uint16_t>(local ? WEIR_BACKEND_LOCAL : 0)});
    ASSERT_TRUE(backends_.Update(id, b).ok());
    written_backends_[id] = b;
  }
  void Service(const std::string& ip, uint16_t port, uint8_t proto, uint32_t service_id, uint16_t flags,
               std::vector<uint32_t> backend_ids, uint8_t scope = WEIR_SCOPE_EXTERNAL,
               uint32_t affinity_timeout = 0) {
    const weir_service_key key = abi::EncodeServiceKey({*IpAddress::Parse(ip), port, proto, scope});
    for (uint32_t slot = 0; slot < backend_ids.size(); ++slot) {
      ASSERT_TRUE(slots_.Update({service_id, slot + 1}, backend_ids[slot]).ok());
    }
    weir_service_value value{.service_id = service_id,
                             .backend_count = (uint16_t)backend_ids.size(),
                             .flags = flags,
                             .affinity_timeout = affinity_timeout};
    // As the agent writes it: the first slots travel in the entry too.
    abi::CarryBackends(value, backend_ids, [&](uint32_t id) -> const weir_backend* {
      auto found = written_backends_.find(id);
      return found == written_backends_.end() ? nullptr : &found->second;
    });
    ASSERT_TRUE(services_.Update(key, value).ok());
  }
  void Maglev(uint32_t service_id, uint32_t backend_id) {
    ASSERT_TRUE(maglev_.Update(service_id, std::vector<uint32_t>(MaglevTableSize(maglev_), backend_id)).ok());
  }
  void Affinity(const std::string& client, uint32_t service_id, uint32_t backend_id) {
    const weir_affinity_key key = abi::EncodeAffinityKey(*IpAddress::Parse(client), service_id);
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    weir_affinity_value value{.last_used_ns = (uint64_t)now.tv_sec * 1000000000ull + now.tv_nsec,
                              .backend_id = backend_id};
    ASSERT_TRUE(affinity_.Update(key, value).ok());
  }

 private:
  ServicesMap services_;
  SlotsMap slots_;
  BackendsMap backends_;
  MaglevMap maglev_;
  EndpointMap endpoints_;
  AffinityMap affinity_;
  std::unique_ptr<sync::BpfNonMasqTable> nonmasq_;
  std::map<uint32_t, weir_backend> written_backends_;
};

struct Case {
  std::string description;
  std::function<void(Maps&)> setup;
  std::vector<Step> steps;
  bool dsr_ip_option = false;
};

// A byte of the payload flipped after the CRC was computed: a packet corrupted on the way.
Bytes Corrupted(Bytes packet) {
  packet[packet.size() - 5] ^= 0x40;
  return packet;
}

void LocalPods(Maps& m) {
  m.Pod("10.244.1.2", 41, kPodA);
  m.Pod("10.244.1.3", 42, kPodB);
}

std::vector<Case> Cases() {
  const L2 from_a{kPodA, kGw}, to_a{kGw, kPodA}, from_b{kPodB, kGw}, to_b{kGw, kPodB};
  const L2 outside{kClient, kUplink}, from_node2{kOtherNode, kUplink}, to_client{kUplink, kClient};
  return {
      {"pod to ClusterIP, local backend: DNAT and redirect; the reply gets the ClusterIP back",
       [](Maps& m) {
         LocalPods(m);
         m.Backend(1, "10.244.1.3", 8080, true);
         m.Service("10.96.0.10", 80, WEIR_PROTO_TCP, 1, WEIR_SVC_CLUSTER_IP, {1});
       },
       {{"syn", Program::kFromPod, TcpPacket(from_a, SynSegment("10.244.1.2", 40000, "10.96.0.10", 80)),
         TC_ACT_REDIRECT, TcpPacket(to_b, SynSegment("10.244.1.2", 40000, "10.244.1.3", 8080, 63))},
        {"syn-ack", Program::kFromPod,
         TcpPacket(from_b, SynAckSegment("10.244.1.3", 8080, "10.244.1.2", 40000)), TC_ACT_REDIRECT,
         TcpPacket(to_a, SynAckSegment("10.96.0.10", 80, "10.244.1.2", 40000, 63))}}},
      {"pod to ClusterIP, remote backend: DNAT, then the FIB (empty here: stack)",
       [](Maps& m) {
         LocalPods(m);
         m.Backend(7, "10.244.2.7", 8080, false);
         m.Service("10.96.0.10", 80, WEIR_PROTO_TCP, 1, WEIR_SVC_CLUSTER_IP, {7});
       },
       {{"syn", Program::kFromPod, TcpPacket(from_a, SynSegment("10.244.1.2", 40000, "10.96.0.10", 80)),
         TC_ACT_OK, TcpPacket(from_a, SynSegment("10.244.1.2", 40000, "10.244.2.7", 8080))},
        {"syn-ack from the other node", Program::kFromUplink,
         TcpPacket(from_node2, SynAckSegment("10.244.2.7", 8080, "10.244.1.2", 40000)), TC_ACT_REDIRECT,
         TcpPacket(to_a, SynAckSegment("10.96.0.10", 80, "10.244.1.2", 40000, 63))}}},
      {"a Service without endpoints answers a SYN with a reset",
       [](Maps& m) {
         LocalPods(m);
         m.Service("10.96.0.11", 80, WEIR_PROTO_TCP, 2, WEIR_SVC_CLUSTER_IP, {});
       },
       {{"syn", Program::kFromPod, TcpPacket(from_a, SynSegment("10.244.1.2", 40000, "10.96.0.11", 80)),
         TC_ACT_REDIRECT,
         TcpPacket(to_a, Tcp{.src = "10.96.0.11",
                             .sport = 80,
                             .dst = "10.244.1.2",
                             .dport = 40000,
                             .flags = 0x14,
                             .seq = 0,
                             .ack = 1001,
                             .window = 0})}}},
      {"a UDP Service without endpoints answers with ICMP port unreachable",
       [](Maps& m) {
         LocalPods(m);
         m.Service("10.96.0.12", 53, WEIR_PROTO_UDP, 3, WEIR_SVC_CLUSTER_IP, {});
       },
       {{"datagram", Program::kFromPod, UdpPacket(from_a, "10.244.1.2", 40000, "10.96.0.12", 53),
         TC_ACT_REDIRECT,
         PortUnreachable(to_a, "10.96.0.12", "10.244.1.2",
                         UdpPacket(from_a, "10.244.1.2", 40000, "10.96.0.12", 53))}}},
      {"... and over IPv6 with ICMPv6 port unreachable",
       [](Maps& m) { m.Service("fd00:96::12", 53, WEIR_PROTO_UDP, 3, WEIR_SVC_CLUSTER_IP, {}); },
       {{"datagram", Program::kFromPod, UdpPacket(from_a, "fd00::2", 40000, "fd00:96::12", 53),
         TC_ACT_REDIRECT,
         PortUnreachable(to_a, "fd00:96::12", "fd00::2",
                         UdpPacket(from_a, "fd00::2", 40000, "fd00:96::12", 53))}}},
      {"NodePort from outside to a local backend keeps the client's address",
       [](Maps& m) {
         LocalPods(m);
         m.Backend(1, "10.244.1.3", 8080, true);
         m.Service(kNodeIp, 30080, WEIR_PROTO_TCP, 4, WEIR_SVC_NODE_PORT, {1});
       },
       {{"syn", Program::kFromUplink, TcpPacket(outside, SynSegment("172.16.0.5", 40000, kNodeIp, 30080)),
         TC_ACT_REDIRECT, TcpPacket(to_b, SynSegment("172.16.0.5", 40000, "10.244.1.3", 8080, 63))},
        {"syn-ack leaves as the NodePort", Program::kFromPod,
         TcpPacket(from_b, SynAckSegment("10.244.1.3", 8080, "172.16.0.5", 40000)), TC_ACT_OK,
         TcpPacket(from_b, SynAckSegment(kNodeIp, 30080, "172.16.0.5", 40000))}}},
      {"NodePort to a backend on another node: SNAT to the node, reverse both on the reply",
       [](Maps& m) {
         m.Backend(7, "10.244.2.7", 8080, false);
         m.Service(kNodeIp, 30081, WEIR_PROTO_TCP, 5, WEIR_SVC_NODE_PORT, {7});
       },
       {{"syn", Program::kFromUplink, TcpPacket(outside, SynSegment("172.16.0.5", 40000, kNodeIp, 30081)),
         TC_ACT_OK, TcpPacket(outside, SynSegment(kNodeIp, 40000, "10.244.2.7", 8080))},
        {"syn-ack", Program::kFromUplink,
         TcpPacket(from_node2, SynAckSegment("10.244.2.7", 8080, kNodeIp, 40000)), TC_ACT_OK,
         TcpPacket(from_node2, SynAckSegment(kNodeIp, 30081, "172.16.0.5", 40000))}}},
      {"NodePort to this node's own address (a hostNetwork endpoint): DNAT, up to the stack; the host's "
       "reply leaves the uplink as the NodePort",
       [](Maps& m) {
         m.Backend(9, kNodeIp, 9080, true);
         m.Service(kNodeIp, 30083, WEIR_PROTO_TCP, 12, WEIR_SVC_NODE_PORT, {9});
       },
       {{"syn", Program::kFromUplink, TcpPacket(outside, SynSegment("172.16.0.5", 40000, kNodeIp, 30083)),
         TC_ACT_OK, TcpPacket(outside, SynSegment("172.16.0.5", 40000, kNodeIp, 9080))},
        {"syn-ack from the host", Program::kToUplink,
         TcpPacket(to_client, SynAckSegment(kNodeIp, 9080, "172.16.0.5", 40000)), TC_ACT_OK,
         TcpPacket(to_client, SynAckSegment(kNodeIp, 30083, "172.16.0.5", 40000))},
        {"the host's own connection from that port to someone else leaves untouched", Program::kToUplink,
         TcpPacket(to_client, SynSegment(kNodeIp, 9080, "172.16.0.6", 40000)), TC_ACT_OK, std::nullopt}}},
      {"... for UDP, over IPv6",
       [](Maps& m) {
         m.Backend(9, kNodeIp6, 9080, true);
         m.Service(kNodeIp6, 30083, WEIR_PROTO_UDP, 13, WEIR_SVC_NODE_PORT, {9});
       },
       {{"datagram", Program::kFromUplink, UdpPacket(outside, "2001:db8:16::5", 40000, kNodeIp6, 30083),
         TC_ACT_OK, UdpPacket(outside, "2001:db8:16::5", 40000, kNodeIp6, 9080)},
        {"answer from the host", Program::kToUplink,
         UdpPacket(to_client, kNodeIp6, 9080, "2001:db8:16::5", 40000), TC_ACT_OK,
         UdpPacket(to_client, kNodeIp6, 30083, "2001:db8:16::5", 40000)}}},
      {"to_uplink leaves a pod's reply alone: from_pod translated it already",
       [](Maps& m) {
         LocalPods(m);
         m.Backend(1, "10.244.1.3", 8080, true);
         m.Service(kNodeIp, 30084, WEIR_PROTO_TCP, 14, WEIR_SVC_NODE_PORT, {1});
       },
       {{"syn", Program::kFromUplink, TcpPacket(outside, SynSegment("172.16.0.5", 40000, kNodeIp, 30084)),
         TC_ACT_REDIRECT, TcpPacket(to_b, SynSegment("172.16.0.5", 40000, "10.244.1.3", 8080, 63))},
        {"syn-ack leaves the pod as the NodePort", Program::kFromPod,
         TcpPacket(from_b, SynAckSegment("10.244.1.3", 8080, "172.16.0.5", 40000)), TC_ACT_OK,
         TcpPacket(from_b, SynAckSegment(kNodeIp, 30084, "172.16.0.5", 40000))},
        {"and passes the uplink unchanged", Program::kToUplink,
         TcpPacket(to_client, SynAckSegment(kNodeIp, 30084, "172.16.0.5", 40000)), TC_ACT_OK, std::nullopt}}},
      {"Maglev: outside traffic follows the service's lookup table",
       [](Maps& m) {
         LocalPods(m);
         m.Backend(1, "10.244.1.2", 8080, true);
         m.Backend(2, "10.244.1.3", 8080, true);
         m.Service("203.0.113.10", 80, WEIR_PROTO_TCP, 6, WEIR_SVC_LOAD_BALANCER | WEIR_SVC_MAGLEV, {1, 2});
         m.Maglev(6, 2);
       },
       {{"syn", Program::kFromUplink, TcpPacket(outside, SynSegment("172.16.0.5", 40000, "203.0.113.10", 80)),
         TC_ACT_REDIRECT, TcpPacket(to_b, SynSegment("172.16.0.5", 40000, "10.244.1.3", 8080, 63))}}},
      {"session affinity: a client's new flow goes to the backend it used before",
       [](Maps& m) {
         LocalPods(m);
         m.Backend(1, "10.244.1.2", 8080, true);
         m.Backend(2, "10.244.1.3", 8080, true);
         m.Service("10.96.0.20", 80, WEIR_PROTO_TCP, 7, WEIR_SVC_CLUSTER_IP | WEIR_SVC_AFFINITY, {1},
                   WEIR_SCOPE_EXTERNAL, 10800);
         m.Affinity("172.16.0.5", 7, 2);
       },
       {{"syn", Program::kFromUplink, TcpPacket(outside, SynSegment("172.16.0.5", 40001, "10.96.0.20", 80)),
         TC_ACT_REDIRECT, TcpPacket(to_b, SynSegment("172.16.0.5", 40001, "10.244.1.3", 8080, 63))}}},
      {"externalTrafficPolicy Local: outside gets only local backends (none: reset), pods get all",
       [](Maps& m) {
         LocalPods(m);
         m.Backend(7, "10.244.2.7", 8080, false);
         m.Service("203.0.113.11", 80, WEIR_PROTO_TCP, 8,
                   WEIR_SVC_LOAD_BALANCER | WEIR_SVC_LOCAL_ONLY | WEIR_SVC_TWO_SCOPES, {});
         m.Service("203.0.113.11", 80, WEIR_PROTO_TCP, 9, WEIR_SVC_LOAD_BALANCER, {7}, WEIR_SCOPE_INTERNAL);
       },
       {{"outside syn", Program::kFromUplink,
         TcpPacket(outside, SynSegment("172.16.0.5", 40000, "203.0.113.11", 80)), TC_ACT_REDIRECT,
         TcpPacket(L2{kUplink, kClient}, Tcp{.src = "203.0.113.11",
                                             .sport = 80,
                                             .dst = "172.16.0.5",
                                             .dport = 40000,
                                             .flags = 0x14,
                                             .seq = 0,
                                             .ack = 1001,
                                             .window = 0})},
        {"pod syn", Program::kFromPod, TcpPacket(from_a, SynSegment("10.244.1.2", 40000, "203.0.113.11", 80)),
         TC_ACT_OK, TcpPacket(from_a, SynSegment("10.244.1.2", 40000, "10.244.2.7", 8080))}}},
      {"DSR, on the node the client reached: the packet goes on unchanged inside IPIP to the backend",
       [](Maps& m) {
         m.Backend(7, "10.244.2.7", 8080, false);
         m.Service("203.0.113.20", 80, WEIR_PROTO_TCP, 10, WEIR_SVC_LOAD_BALANCER | WEIR_SVC_DSR, {7});
       },
       {{"syn", Program::kFromUplink, TcpPacket(outside, SynSegment("172.16.0.5", 40000, "203.0.113.20", 80)),
         TC_ACT_OK,
         Ipip(outside, kNodeIp, "10.244.2.7", 8080,
              TcpPacket(outside, SynSegment("172.16.0.5", 40000, "203.0.113.20", 80)))},
        {"next packet of the flow: same backend, same wrapping", Program::kFromUplink,
         TcpPacket(outside, SynAckSegment("172.16.0.5", 40000, "203.0.113.20", 80)), TC_ACT_OK,
         Ipip(outside, kNodeIp, "10.244.2.7", 8080,
              TcpPacket(outside, SynAckSegment("172.16.0.5", 40000, "203.0.113.20", 80)))}}},
      {"DSR, on the backend's node: unwrap, deliver, and answer the client directly as the frontend",
       [](Maps& m) {
         m.Pod("10.244.2.7", 43, kPodB);
         m.Node("192.168.0.2");
       },
       {{"wrapped syn", Program::kFromUplink,
         Ipip(from_node2, "192.168.0.2", "10.244.2.7", 8080,
              TcpPacket(from_node2, SynSegment("172.16.0.5", 40000, "203.0.113.20", 80))),
         TC_ACT_REDIRECT, TcpPacket(to_b, SynSegment("172.16.0.5", 40000, "10.244.2.7", 8080, 63))},
        {"syn-ack straight to the client", Program::kFromPod,
         TcpPacket(from_b, SynAckSegment("10.244.2.7", 8080, "172.16.0.5", 40000)), TC_ACT_OK,
         TcpPacket(from_b, SynAckSegment("203.0.113.20", 80, "172.16.0.5", 40000))}}},
      {"DSR, on the backend's node, the backend its own address (hostNetwork): unwrapped to the stack; "
       "the host's reply leaves as the frontend",
       [](Maps& m) { m.Node("192.168.0.2"); },
       {{"wrapped syn", Program::kFromUplink,
         Ipip(from_node2, "192.168.0.2", kNodeIp, 9080,
              TcpPacket(from_node2, SynSegment("172.16.0.5", 40000, "203.0.113.20", 80))),
         TC_ACT_OK, TcpPacket(from_node2, SynSegment("172.16.0.5", 40000, kNodeIp, 9080))},
        {"syn-ack from the host straight to the client", Program::kToUplink,
         TcpPacket(to_client, SynAckSegment(kNodeIp, 9080, "172.16.0.5", 40000)), TC_ACT_OK,
         TcpPacket(to_client, SynAckSegment("203.0.113.20", 80, "172.16.0.5", 40000))}}},
      {"DSR, IP-option variant, on the node the client reached: translated, frontend in an option",
       [](Maps& m) {
         m.Backend(7, "10.244.2.7", 8080, false);
         m.Service("203.0.113.20", 80, WEIR_PROTO_TCP, 10, WEIR_SVC_LOAD_BALANCER | WEIR_SVC_DSR, {7});
       },
       {{"syn", Program::kFromUplink, TcpPacket(outside, SynSegment("172.16.0.5", 40000, "203.0.113.20", 80)),
         TC_ACT_OK,
         WithIpv4Option(TcpPacket(outside, SynSegment("172.16.0.5", 40000, "10.244.2.7", 8080)),
                        {0x9a, 8, 0, 80, 203, 0, 113, 20})}},
       true},
      {"DSR, IP-option variant, on the backend's node: option taken off, reply sent as the frontend",
       [](Maps& m) { m.Pod("10.244.2.7", 43, kPodB); },
       {{"syn with the option", Program::kFromUplink,
         WithIpv4Option(TcpPacket(from_node2, SynSegment("172.16.0.5", 40000, "10.244.2.7", 8080)),
                        {0x9a, 8, 0, 80, 203, 0, 113, 20}),
         TC_ACT_REDIRECT, TcpPacket(to_b, SynSegment("172.16.0.5", 40000, "10.244.2.7", 8080, 63))},
        {"syn-ack straight to the client", Program::kFromPod,
         TcpPacket(from_b, SynAckSegment("10.244.2.7", 8080, "172.16.0.5", 40000)), TC_ACT_OK,
         TcpPacket(from_b, SynAckSegment("203.0.113.20", 80, "172.16.0.5", 40000))}},
       true},
      {"DSR over IPv6, on the node the client reached: IPv6-in-IPv6 to the backend, port in the flow label",
       [](Maps& m) {
         m.Backend(7, "fd00:10:244:2::7", 8080, false);
         m.Service("2001:db8:113::20", 80, WEIR_PROTO_TCP, 11, WEIR_SVC_LOAD_BALANCER | WEIR_SVC_DSR, {7});
       },
       {{"syn", Program::kFromUplink,
         TcpPacket(outside, SynSegment("2001:db8:16::5", 40000, "2001:db8:113::20", 80)), TC_ACT_OK,
         Ip6ip6(outside, kNodeIp6, "fd00:10:244:2::7", 8080,
                TcpPacket(outside, SynSegment("2001:db8:16::5", 40000, "2001:db8:113::20", 80)))},
        {"next packet of the flow: same backend, same wrapping", Program::kFromUplink,
         TcpPacket(outside, SynAckSegment("2001:db8:16::5", 40000, "2001:db8:113::20", 80)), TC_ACT_OK,
         Ip6ip6(outside, kNodeIp6, "fd00:10:244:2::7", 8080,
                TcpPacket(outside, SynAckSegment("2001:db8:16::5", 40000, "2001:db8:113::20", 80)))}},
       // The option variant is IPv4's: IPv6 is wrapped whatever the dispatch setting.
       true},
      {"DSR over IPv6, on the backend's node: unwrap, deliver, answer the client directly as the frontend",
       [](Maps& m) {
         m.Pod("fd00:10:244:2::7", 43, kPodB);
         m.Node("fd00:168::2");
       },
       {{"wrapped syn", Program::kFromUplink,
         Ip6ip6(from_node2, "fd00:168::2", "fd00:10:244:2::7", 8080,
                TcpPacket(from_node2, SynSegment("2001:db8:16::5", 40000, "2001:db8:113::20", 80))),
         TC_ACT_REDIRECT, TcpPacket(to_b, SynSegment("2001:db8:16::5", 40000, "fd00:10:244:2::7", 8080, 63))},
        {"syn-ack straight to the client", Program::kFromPod,
         TcpPacket(from_b, SynAckSegment("fd00:10:244:2::7", 8080, "2001:db8:16::5", 40000)), TC_ACT_OK,
         TcpPacket(from_b, SynAckSegment("2001:db8:113::20", 80, "2001:db8:16::5", 40000))},
        {"another tunnel's IPv6-in-IPv6 to this node (flow label not a port) goes to the stack untouched",
         Program::kFromUplink,
         Ip6ip6(from_node2, "fd00:168::2", kNodeIp6, 0x12345,
                TcpPacket(from_node2, SynSegment("2001:db8:16::6", 40000, "2001:db8:113::20", 80))),
         TC_ACT_OK, std::nullopt}}},
      {"DSR from a sender that is no node: dropped, and the pod's replies keep their source",
       [](Maps& m) {
         m.Pod("10.244.2.7", 43, kPodB);
         m.Pod("fd00:10:244:2::7", 43, kPodB);
         m.Node("192.168.0.2");
         m.Node("fd00:168::2");
       },
       {{"IPIP from an outside address", Program::kFromUplink,
         Ipip(outside, "172.16.0.66", "10.244.2.7", 8080,
              TcpPacket(outside, SynSegment("172.16.0.5", 40000, "203.0.113.20", 80))),
         TC_ACT_SHOT, std::nullopt},
        {"IPIP from another address of the fabric", Program::kFromUplink,
         Ipip(from_node2, "10.244.3.9", "10.244.2.7", 8080,
              TcpPacket(from_node2, SynSegment("172.16.0.5", 40000, "203.0.113.20", 80))),
         TC_ACT_SHOT, std::nullopt},
        {"IPv6-in-IPv6 with a port in the label from an outside address", Program::kFromUplink,
         Ip6ip6(outside, "2001:db8:16::66", "fd00:10:244:2::7", 8080,
                TcpPacket(outside, SynSegment("2001:db8:16::5", 40000, "2001:db8:113::20", 80))),
         TC_ACT_SHOT, std::nullopt},
        {"no reply entry was made: the pod's syn-ack leaves as it is", Program::kFromPod,
         TcpPacket(from_b, SynAckSegment("10.244.2.7", 8080, "172.16.0.5", 40000)), TC_ACT_OK,
         std::nullopt}}},
      {"SCTP pod to ClusterIP on another port: the port and the CRC32c rewritten both ways",
       [](Maps& m) {
         LocalPods(m);
         m.Backend(1, "10.244.1.3", 3868, true);
         m.Service("10.96.0.40", 80, WEIR_PROTO_SCTP, 40, WEIR_SVC_CLUSTER_IP, {1});
       },
       {{"data", Program::kFromPod,
         SctpPacket(from_a, Sctp{.src = "10.244.1.2", .sport = 40000, .dst = "10.96.0.40", .dport = 80}),
         TC_ACT_REDIRECT,
         SctpPacket(
             to_b, Sctp{.src = "10.244.1.2", .sport = 40000, .dst = "10.244.1.3", .dport = 3868, .ttl = 63})},
        {"reply", Program::kFromPod,
         SctpPacket(from_b, Sctp{.src = "10.244.1.3", .sport = 3868, .dst = "10.244.1.2", .dport = 40000}),
         TC_ACT_REDIRECT,
         SctpPacket(to_a,
                    Sctp{.src = "10.96.0.40", .sport = 80, .dst = "10.244.1.2", .dport = 40000, .ttl = 63})},
        {"CRC left to the offload (field zero): stays zero", Program::kFromPod,
         SctpPacket(from_a, Sctp{.src = "10.244.1.2",
                                 .sport = 40000,
                                 .dst = "10.96.0.40",
                                 .dport = 80,
                                 .crc = false,
                                 .tsn = 2}),
         TC_ACT_REDIRECT,
         SctpPacket(to_b, Sctp{.src = "10.244.1.2",
                               .sport = 40000,
                               .dst = "10.244.1.3",
                               .dport = 3868,
                               .ttl = 63,
                               .crc = false,
                               .tsn = 2})},
        {"corrupted on the way: stays detectably corrupted", Program::kFromPod,
         Corrupted(SctpPacket(
             from_a, Sctp{.src = "10.244.1.2", .sport = 40000, .dst = "10.96.0.40", .dport = 80, .tsn = 3})),
         TC_ACT_REDIRECT,
         Corrupted(SctpPacket(to_b, Sctp{.src = "10.244.1.2",
                                         .sport = 40000,
                                         .dst = "10.244.1.3",
                                         .dport = 3868,
                                         .ttl = 63,
                                         .tsn = 3}))}}},
      {"SCTP over IPv6, large packets, pod to ClusterIP on another port",
       [](Maps& m) {
         m.Pod("fd00:10:244:1::2", 41, kPodA);
         m.Pod("fd00:10:244:1::3", 42, kPodB);
         m.Backend(1, "fd00:10:244:1::3", 3868, true);
         m.Service("fd00:96::40", 80, WEIR_PROTO_SCTP, 41, WEIR_SVC_CLUSTER_IP, {1});
       },
       {{"data", Program::kFromPod,
         SctpPacket(from_a, Sctp{.src = "fd00:10:244:1::2",
                                 .sport = 40000,
                                 .dst = "fd00:96::40",
                                 .dport = 80,
                                 .payload = 3001}),
         TC_ACT_REDIRECT,
         SctpPacket(to_b, Sctp{.src = "fd00:10:244:1::2",
                               .sport = 40000,
                               .dst = "fd00:10:244:1::3",
                               .dport = 3868,
                               .payload = 3001,
                               .ttl = 63})},
        {"reply", Program::kFromPod,
         SctpPacket(from_b, Sctp{.src = "fd00:10:244:1::3",
                                 .sport = 3868,
                                 .dst = "fd00:10:244:1::2",
                                 .dport = 40000,
                                 .payload = 1400}),
         TC_ACT_REDIRECT,
         SctpPacket(to_a, Sctp{.src = "fd00:96::40",
                               .sport = 80,
                               .dst = "fd00:10:244:1::2",
                               .dport = 40000,
                               .payload = 1400,
                               .ttl = 63})}}},
      {"SCTP NodePort to a backend on another node: SNAT, port and CRC32c rewritten, reversed on the reply",
       [](Maps& m) {
         m.Backend(7, "10.244.2.7", 3868, false);
         m.Service(kNodeIp, 30082, WEIR_PROTO_SCTP, 42, WEIR_SVC_NODE_PORT, {7});
       },
       {{"data", Program::kFromUplink,
         SctpPacket(outside, Sctp{.src = "172.16.0.5", .sport = 40000, .dst = kNodeIp, .dport = 30082}),
         TC_ACT_OK,
         SctpPacket(outside, Sctp{.src = kNodeIp, .sport = 40000, .dst = "10.244.2.7", .dport = 3868})},
        {"reply", Program::kFromUplink,
         SctpPacket(from_node2, Sctp{.src = "10.244.2.7", .sport = 3868, .dst = kNodeIp, .dport = 40000}),
         TC_ACT_OK,
         SctpPacket(from_node2, Sctp{.src = kNodeIp, .sport = 30082, .dst = "172.16.0.5", .dport = 40000})}}},
      {"SCTP NodePort over IPv6 to a backend on another node",
       [](Maps& m) {
         m.Backend(7, "fd00:10:244:2::7", 3868, false);
         m.Service(kNodeIp6, 30082, WEIR_PROTO_SCTP, 43, WEIR_SVC_NODE_PORT, {7});
       },
       {{"data", Program::kFromUplink,
         SctpPacket(outside, Sctp{.src = "2001:db8:16::5", .sport = 40000, .dst = kNodeIp6, .dport = 30082}),
         TC_ACT_OK,
         SctpPacket(outside,
                    Sctp{.src = kNodeIp6, .sport = 40000, .dst = "fd00:10:244:2::7", .dport = 3868})},
        {"reply", Program::kFromUplink,
         SctpPacket(from_node2,
                    Sctp{.src = "fd00:10:244:2::7", .sport = 3868, .dst = kNodeIp6, .dport = 40000}),
         TC_ACT_OK,
         SctpPacket(from_node2,
                    Sctp{.src = kNodeIp6, .sport = 30082, .dst = "2001:db8:16::5", .dport = 40000})}}},
  };
}

// The test's own CRC32c against the check value of RFC 3720 / the CRC catalogue.
TEST(Crc32cTest, CheckValue) {
  const char digits[] = "123456789";
  EXPECT_EQ(Crc32c(reinterpret_cast<const uint8_t*>(digits), 9), 0xe3069283u);
}

class ServiceNatTest : public ::testing::TestWithParam<Case> {};

TEST_P(ServiceNatTest, Steps) {
  const Case& c = GetParam();
  SCOPED_TRACE(c.description);
  auto ns = ScopedNetNs::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  auto loaded = Datapath::Load(DatapathOptions{.gateway_mac = kGw,
                                               .node_ipv4 = *IpAddress::Parse(kNodeIp),
                                               .node_ipv6 = *IpAddress::Parse(kNodeIp6),
                                               .dsr_ip_option = c.dsr_ip_option});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::unique_ptr<Datapath> dp = std::move(*loaded);
  Maps maps(*dp);
  c.setup(maps);

  for (const Step& step : c.steps) {
    SCOPED_TRACE(step.description);
    int prog = step.program == Program::kFromPod      ? dp->from_pod_fd()
               : step.program == Program::kFromUplink ? dp->from_uplink_fd()
                                                      : dp->to_uplink_fd();
    Bytes out(step.input.size() + 128);
    __u32 retval = 0, out_size = 0;
    absl::Status ran = (*ns)->ns().Run([&] {
      DECLARE_LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = step.input.data(), .data_out = out.data(),
                          .data_size_in = (__u32)step.input.size(), .data_size_out = (__u32)out.size());
      if (bpf_prog_test_run_opts(prog, &run) != 0) return absl::ErrnoToStatus(errno, "test run");
      retval = run.retval;
      out_size = run.data_size_out;
      return absl::OkStatus();
    });
    ASSERT_TRUE(ran.ok()) << ran;
    out.resize(out_size);
    EXPECT_EQ(static_cast<int>(retval), step.verdict);
    const Bytes& expected = step.output ? *step.output : step.input;
    EXPECT_EQ(out, expected) << "got:\n" << Hex(out) << "\nwant:\n" << Hex(expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Table, ServiceNatTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::to_string(info.index);
                         });

// While an upgrade copies conntrack, a segment without SYN of a flow to a frontend that conntrack
// does not know is dropped (the sender retransmits once the copy has brought the flow's entry)
// rather than balanced anew, and so is a reset of an unknown flow (the client's stack answering a
// backend's reply that the copy had not yet translated); a SYN is balanced; after the hold both
// pass as before.
TEST(UpgradeHoldTest, UnknownTcpSegmentsWaitForTheCopy) {
  auto ns = ScopedNetNs::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  auto loaded = Datapath::Load(DatapathOptions{.gateway_mac = kGw, .node_ipv4 = *IpAddress::Parse(kNodeIp)});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::unique_ptr<Datapath> dp = std::move(*loaded);
  Maps maps(*dp);
  LocalPods(maps);
  maps.Backend(7, "10.244.2.7", 8080, false);
  maps.Service("10.96.0.10", 80, WEIR_PROTO_TCP, 1, WEIR_SVC_CLUSTER_IP, {7});
  const L2 from_a{kPodA, kGw};
  Tcp ack{.src = "10.244.1.2", .sport = 40001, .dst = "10.96.0.10", .dport = 80, .flags = 0x10};
  auto run = [&](const Bytes& input, Bytes& out) {
    out.assign(input.size() + 128, 0);
    __u32 retval = 0, out_size = 0;
    absl::Status ran = (*ns)->ns().Run([&] {
      DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = input.data(), .data_out = out.data(),
                          .data_size_in = (__u32)input.size(), .data_size_out = (__u32)out.size());
      if (bpf_prog_test_run_opts(dp->from_pod_fd(), &opts) != 0)
        return absl::ErrnoToStatus(errno, "test run");
      retval = opts.retval;
      out_size = opts.data_size_out;
      return absl::OkStatus();
    });
    EXPECT_TRUE(ran.ok()) << ran;
    out.resize(out_size);
    return static_cast<int>(retval);
  };
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  dp->HoldUnknownTcpFlows(static_cast<uint64_t>(now.tv_sec + 60) * 1'000'000'000);

  const Bytes reset = TcpPacket(
      from_a, Tcp{.src = "10.244.1.2", .sport = 40003, .dst = "10.244.2.7", .dport = 8080, .flags = 0x14});
  Bytes out;
  EXPECT_EQ(run(TcpPacket(from_a, ack), out), TC_ACT_SHOT) << "an unknown flow's segment while held";
  EXPECT_EQ(run(reset, out), TC_ACT_SHOT) << "a reset of an unknown flow while held";
  Tcp translated = ack;
  translated.dst = "10.244.2.7";
  translated.dport = 8080;
  EXPECT_EQ(run(TcpPacket(from_a, SynSegment("10.244.1.2", 40002, "10.96.0.10", 80)), out), TC_ACT_OK);
  EXPECT_EQ(out, TcpPacket(from_a, SynSegment("10.244.1.2", 40002, "10.244.2.7", 8080)))
      << "a SYN is balanced";

  dp->HoldUnknownTcpFlows(0);
  EXPECT_EQ(run(TcpPacket(from_a, ack), out), TC_ACT_OK);
  EXPECT_EQ(out, TcpPacket(from_a, translated)) << "after the hold: balanced as before";
  EXPECT_EQ(run(reset, out), TC_ACT_OK);
  EXPECT_EQ(out, reset) << "after the hold: a reset passes";
}

// The events ring: a drop record while it has room, and a full ring (nobody reading) costs the
// packet nothing but its record.
TEST(ServiceEventsTest, DropRecordsWhileTheRingHasRoom) {
  auto ns = ScopedNetNs::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  auto loaded = Datapath::Load(DatapathOptions{.gateway_mac = kGw, .node_ipv4 = *IpAddress::Parse(kNodeIp)});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::unique_ptr<Datapath> dp = std::move(*loaded);
  Maps maps(*dp);
  maps.Service("10.96.0.30", 80, WEIR_PROTO_TCP, 30, WEIR_SVC_CLUSTER_IP, {});

  std::vector<weir_event> events;
  ring_buffer* ring = ring_buffer__new(
      dp->map_fd(DatapathMap::kEvents),
      [](void* ctx, void* data, size_t size) {
        if (size == sizeof(weir_event))
          static_cast<std::vector<weir_event>*>(ctx)->push_back(*(weir_event*)data);
        return 0;
      },
      &events, nullptr);
  ASSERT_NE(ring, nullptr);
  // A reset to the Service: dropped without an answer, one record per packet.
  const Bytes reset =
      TcpPacket(L2{kPodA, kGw},
                Tcp{.src = "10.244.1.2", .sport = 40000, .dst = "10.96.0.30", .dport = 80, .flags = 0x14});
  auto run = [&](uint32_t repeat) {
    __u32 retval = 0;
    absl::Status ran = (*ns)->ns().Run([&] {
      DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = reset.data(),
                          .data_size_in = (__u32)reset.size(), .repeat = (int)repeat);
      if (bpf_prog_test_run_opts(dp->from_pod_fd(), &opts) != 0)
        return absl::ErrnoToStatus(errno, "test run");
      retval = opts.retval;
      return absl::OkStatus();
    });
    ASSERT_TRUE(ran.ok()) << ran;
    EXPECT_EQ(static_cast<int>(retval), TC_ACT_SHOT);
  };

  run(1);
  ASSERT_EQ(ring_buffer__consume(ring), 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, WEIR_EVENT_DROP);
  EXPECT_EQ(events[0].reason, WEIR_METRIC_NO_BACKEND);
  EXPECT_EQ(events[0].service_id, 30u);
  EXPECT_EQ(events[0].dport, htons(80));
  EXPECT_NE(events[0].timestamp_ns, 0u);

  // Twice as many packets as the ring holds records: it fills, every packet is still dropped, and
  // a reader finds exactly what fit.
  const size_t record = (sizeof(weir_event) + 8 + 7) / 8 * 8;
  const size_t capacity = WEIR_EVENTS_RING_BYTES / record;
  events.clear();
  run(2 * capacity);
  EXPECT_EQ(ring_buffer__consume(ring), (int)capacity);
  // Room again: a packet is recorded from the next tick on (the program takes the ring it found
  // full as full for the rest of that tick, bpf/lib/events.h; a tick is at most 10 ms).
  events.clear();
  usleep(20000);
  run(1);
  EXPECT_EQ(ring_buffer__consume(ring), 1);
  ring_buffer__free(ring);
}

}  // namespace
}  // namespace weir::testing
