// NetworkPolicy verdicts in the tc programs, as a table run through BPF_PROG_TEST_RUN: each case
// writes endpoints and their enforcement through the real BpfPolicyWriter, then feeds packets
// through from_pod or from_uplink in order (the policy conntrack carries from one step to the
// next) and checks each verdict: redirected into the pod, handed on, or dropped.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>

#include <functional>
#include <optional>
#include <vector>

#include "bpf/abi/events.h"
#include "bpf/abi/policy.h"
#include "gtest/gtest.h"
#include "lib/abi_codec.h"
#include "lib/datapath.h"
#include "lib/endpoint_map.h"
#include "lib/policy_maps.h"
#include "lib/service_maps.h"
#include "privileged/scoped_netns.h"
#include "proxy/policy_sync/bpf_policy_maps.h"
#include "proxy/policy_sync/bpf_policy_writer.h"
#include "proxy/sync/nonmasq_table.h"
#include "testlib/packets.h"

namespace weir::testing {
namespace {

using policy::AllowEntry;
using policy::EndpointEnforcement;
using policy::EnforcementMode;
using policy::Identity;
using policy::PeerKind;

const MacAddress kGw = WEIR_GATEWAY_MAC;
const MacAddress kMacA = {0x0a, 0, 0, 0, 0, 0x0a};
const MacAddress kMacB = {0x0a, 0, 0, 0, 0, 0x0b};
const MacAddress kMacC = {0x0a, 0, 0, 0, 0, 0x0c};
const MacAddress kClientMac = {0x0c, 0, 0, 0, 0, 0x0c};
const MacAddress kUplinkMac = {0x0e, 0, 0, 0, 0, 0x01};
constexpr char kNode[] = "192.168.0.1";
constexpr char kOtherNode[] = "192.168.0.2";
constexpr char kA[] = "10.244.1.2";
constexpr char kB[] = "10.244.1.3";
constexpr char kC[] = "10.244.1.4";
constexpr char kRemotePod[] = "10.244.2.9";
constexpr char kOutside[] = "203.0.113.7";
constexpr char kClusterIp[] = "10.96.0.10";
constexpr Identity kIdA = 256, kIdB = 257, kIdC = 258, kIdRemote = 259;
constexpr uint32_t kPolicyA = 1, kPolicyB = 2, kPolicyC = 3;

enum class Program { kFromPod, kFromUplink };

struct Step {
  std::string description;
  Program program;
  Bytes input;
  int verdict;              // TC_ACT_REDIRECT: into a pod; TC_ACT_OK: to the stack; TC_ACT_SHOT: dropped
  std::string source = "";  // when set: the IPv4 source the packet leaves with
};

AllowEntry Allow(policy::Peer peer, std::optional<L4Proto> proto = std::nullopt, uint16_t first = 0,
                 uint16_t last = 65535) {
  return AllowEntry{.peer = std::move(peer), .protocol = proto, .ports = {first, last}};
}
policy::Peer AnyPeer() { return {.kind = PeerKind::kAny}; }
policy::Peer IdentityPeer(Identity id) { return {.kind = PeerKind::kIdentity, .identity = id}; }
policy::Peer CidrPeer(const std::string& cidr, std::vector<std::string> except = {}) {
  policy::Peer peer{.kind = PeerKind::kCidr, .cidr = *IpPrefix::Parse(cidr)};
  for (const std::string& e : except) peer.except.push_back(*IpPrefix::Parse(e));
  return peer;
}
policy::Peer AddressPeer(const std::string& address) {
  return {.kind = PeerKind::kAddress, .cidr = *IpPrefix::Parse(address + "/32")};
}

// One direction: nullopt is "not isolated".
using Rules = std::optional<std::vector<AllowEntry>>;

class Node {
 public:
  explicit Node(const Datapath& dp)
      : endpoints_(*dp.OpenMap<EndpointMap>(DatapathMap::kEndpoints)),
        services_(*dp.OpenMap<ServicesMap>(DatapathMap::kServices)),
        slots_(*dp.OpenMap<SlotsMap>(DatapathMap::kBackendSlots)),
        backends_(*dp.OpenMap<BackendsMap>(DatapathMap::kBackends)),
        maps_(*policy_sync::BpfPolicyMaps::Open(dp)),
        writer_(maps_) {
    // Both nodes' pod CIDRs, as the agent writes them: pods on other nodes enter pods directly.
    auto nonmasq = sync::BpfNonMasqTable::FromFd(UniqueFd(dup(dp.map_fd(DatapathMap::kNonMasquerade))));
    EXPECT_TRUE(nonmasq.ok() &&
                (*nonmasq)->Add(*IpPrefix::Parse("10.244.0.0/16"), sync::CidrKind::kPods).ok());
    Pod(kA, 41, kMacA);
    Pod(kB, 42, kMacB);
    Pod(kC, 43, kMacC);
    std::map<IpPrefix, Identity> peers = {{Host(kA), kIdA},
                                          {Host(kB), kIdB},
                                          {Host(kC), kIdC},
                                          {Host(kRemotePod), kIdRemote},
                                          {Host(kNode), policy::kIdentityHost},
                                          {Host(kOtherNode), policy::kIdentityRemoteNode}};
    EXPECT_TRUE(writer_.SetPeers(peers).ok());
  }

  static IpPrefix Host(const std::string& address) { return IpPrefix(*IpAddress::Parse(address), 32); }

  void Pod(const std::string& ip, int ifindex, const MacAddress& mac, bool pending = false) {
    ASSERT_TRUE(endpoints_
                    .Upsert({.address = *IpAddress::Parse(ip),
                             .host_ifindex = ifindex,
                             .pod_mac = mac,
                             .flags = static_cast<uint16_t>(WEIR_ENDPOINT_LOCAL_POD |
                                                            (pending ? WEIR_ENDPOINT_POLICY_PENDING : 0))})
                    .ok());
  }

  // Writes `address`'s enforcement through the BpfPolicyWriter.
  void Enforce(uint32_t policy_id, const std::string& address, Rules ingress, Rules egress,
               EnforcementMode mode = EnforcementMode::kEnforce) {
    EndpointEnforcement e{.policy_id = policy_id, .ingress_mode = mode, .egress_mode = mode};
    e.policy.addresses = {*IpAddress::Parse(address)};
    e.policy.ingress.isolated = ingress.has_value();
    if (ingress) e.policy.ingress.allowed = {ingress->begin(), ingress->end()};
    e.policy.egress.isolated = egress.has_value();
    if (egress) e.policy.egress.allowed = {egress->begin(), egress->end()};
    absl::Status written = writer_.WriteEndpoint(e);
    ASSERT_TRUE(written.ok()) << written;
  }

  void Service(const std::string& ip, uint16_t port, uint32_t service_id, const std::string& backend,
               uint16_t backend_port) {
    const weir_backend b = abi::EncodeBackend({*IpAddress::Parse(backend), backend_port, WEIR_PROTO_TCP,
                                               static_cast<uint16_t>(WEIR_BACKEND_LOCAL)});
    ASSERT_TRUE(backends_.Update(service_id, b).ok());
    ASSERT_TRUE(slots_.Update({service_id, 1}, service_id).ok());
    const weir_service_key key = abi::EncodeServiceKey({*IpAddress::Parse(ip), port, WEIR_PROTO_TCP});
    weir_service_value value{.service_id = service_id, .backend_count = 1, .flags = WEIR_SVC_CLUSTER_IP};
    ASSERT_TRUE(services_.Update(key, value).ok());
  }

 private:
  EndpointMap endpoints_;
  ServicesMap services_;
  SlotsMap slots_;
  BackendsMap backends_;
  policy_sync::BpfPolicyMaps maps_;
  policy_sync::BpfPolicyWriter writer_;
};

struct Case {
  std::string description;
  std::function<void(Node&)> setup;
  std::vector<Step> steps;
};

const L2 kFromA{kMacA, kGw}, kFromB{kMacB, kGw}, kFromC{kMacC, kGw}, kFromUplink{kClientMac, kUplinkMac};

Bytes Syn(const L2& l2, const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport) {
  return TcpPacket(l2, Tcp{.src = src, .sport = sport, .dst = dst, .dport = dport});
}
Bytes SynAck(const L2& l2, const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport) {
  return TcpPacket(l2,
                   Tcp{.src = src, .sport = sport, .dst = dst, .dport = dport, .flags = 0x12, .ack = 1001});
}
Bytes Ack(const L2& l2, const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport) {
  return TcpPacket(l2,
                   Tcp{.src = src, .sport = sport, .dst = dst, .dport = dport, .flags = 0x10, .seq = 1001});
}
Bytes SctpData(const L2& l2, const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport) {
  return SctpPacket(l2, Sctp{.src = src, .sport = sport, .dst = dst, .dport = dport});
}

constexpr int kIn = TC_ACT_REDIRECT, kOn = TC_ACT_OK, kDrop = TC_ACT_SHOT;

Bytes Fin(const L2& l2, const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport) {
  return TcpPacket(l2,
                   Tcp{.src = src, .sport = sport, .dst = dst, .dport = dport, .flags = 0x11, .seq = 1001});
}

std::vector<Case> Cases() {
  const std::vector<AllowEntry> none;
  return {
      {"no policy: nothing is judged",
       [](Node&) {},
       {{"A to B", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80), kIn},
        {"B to A", Program::kFromPod, UdpPacket(kFromB, kB, 5000, kA, 53), kIn}}},
      {"deny-all ingress on B drops everyone's first packet; A, not isolated, still reaches C",
       [none](Node& n) { n.Enforce(kPolicyB, kB, none, std::nullopt); },
       {{"A to B", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80), kDrop},
        {"A to B, a later segment", Program::kFromPod, Ack(kFromA, kA, 40000, kB, 80), kDrop},
        {"C to B over UDP", Program::kFromPod, UdpPacket(kFromC, kC, 5000, kB, 53), kDrop},
        {"A to C", Program::kFromPod, Syn(kFromA, kA, 40000, kC, 80), kIn},
        {"a remote pod to B", Program::kFromUplink, Syn(kFromUplink, kRemotePod, 40000, kB, 80), kDrop}}},
      {"B admits identity A on TCP 80 only",
       [](Node& n) {
         n.Enforce(kPolicyB, kB, std::vector{Allow(IdentityPeer(kIdA), L4Proto::kTcp, 80, 80)}, {});
       },
       {{"A to B:80", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80), kIn},
        {"A to B:80, the next segment rides conntrack", Program::kFromPod, Ack(kFromA, kA, 40000, kB, 80),
         kIn},
        {"A to B:81", Program::kFromPod, Syn(kFromA, kA, 40001, kB, 81), kDrop},
        {"C to B:80", Program::kFromPod, Syn(kFromC, kC, 40000, kB, 80), kDrop},
        {"A to B:80 over UDP: a TCP rule never admits UDP", Program::kFromPod,
         UdpPacket(kFromA, kA, 5000, kB, 80), kDrop},
        {"A to B:80 over SCTP: nor SCTP", Program::kFromPod, SctpData(kFromA, kA, 5000, kB, 80), kDrop},
        {"A pings B: ICMP needs a rule for every protocol", Program::kFromPod, IcmpEcho(kFromA, kA, kB, 7),
         kDrop}}},
      {"endPort: B admits TCP 1000-2000 from anyone",
       [](Node& n) { n.Enforce(kPolicyB, kB, std::vector{Allow(AnyPeer(), L4Proto::kTcp, 1000, 2000)}, {}); },
       {{"port 999", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 999), kDrop},
        {"port 1000", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 1000), kIn},
        {"port 1537", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 1537), kIn},
        {"port 2000", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 2000), kIn},
        {"port 2001", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 2001), kDrop},
        // Admitted, and delivered by the stack (a peer that is no pod).
        {"from outside, port 1500", Program::kFromUplink, Syn(kFromUplink, kOutside, 40000, kB, 1500), kOn}}},
      {"an all-protocols rule admits ICMP, UDP and SCTP too",
       [](Node& n) { n.Enforce(kPolicyB, kB, std::vector{Allow(IdentityPeer(kIdA))}, {}); },
       {{"A pings B", Program::kFromPod, IcmpEcho(kFromA, kA, kB, 7), kIn},
        {"A to B over SCTP", Program::kFromPod, SctpData(kFromA, kA, 5000, kB, 9), kIn},
        {"C pings B", Program::kFromPod, IcmpEcho(kFromC, kC, kB, 7), kDrop}}},
      {"ipBlock 10.244.0.0/16 except C's address: matched on the raw address, pods included",
       [](Node& n) {
         n.Enforce(kPolicyB, kB,
                   std::vector{Allow(CidrPeer("10.244.0.0/16", {"10.244.1.4/32"}), L4Proto::kTcp, 80, 80)},
                   {});
       },
       {{"A to B", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80), kIn},
        {"C (excepted) to B", Program::kFromPod, Syn(kFromC, kC, 40000, kB, 80), kDrop},
        {"a remote pod to B", Program::kFromUplink, Syn(kFromUplink, kRemotePod, 40000, kB, 80), kIn},
        {"outside to B", Program::kFromUplink, Syn(kFromUplink, kOutside, 40000, kB, 80), kDrop}}},
      {"two ipBlocks nest: the inner one's rules and the outer one's both apply inside it",
       [](Node& n) {
         n.Enforce(kPolicyB, kB,
                   std::vector{Allow(CidrPeer("10.0.0.0/8"), L4Proto::kTcp, 80, 80),
                               Allow(CidrPeer("10.244.1.0/24"), L4Proto::kTcp, 81, 81)},
                   {});
       },
       {{"A to B:80", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80), kIn},
        {"A to B:81", Program::kFromPod, Syn(kFromA, kA, 40001, kB, 81), kIn},
        {"remote pod to B:80", Program::kFromUplink, Syn(kFromUplink, kRemotePod, 40000, kB, 80), kIn},
        {"remote pod to B:81", Program::kFromUplink, Syn(kFromUplink, kRemotePod, 40001, kB, 81), kDrop}}},
      {"egress to a named port resolved on B alone (an address peer)",
       [](Node& n) {
         n.Enforce(kPolicyA, kA, std::nullopt,
                   std::vector{Allow(AddressPeer(kB), L4Proto::kTcp, 8080, 8080)});
       },
       {{"A to B:8080", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 8080), kIn},
        {"A to C:8080", Program::kFromPod, Syn(kFromA, kA, 40000, kC, 8080), kDrop},
        {"A to B:8081", Program::kFromPod, Syn(kFromA, kA, 40001, kB, 8081), kDrop},
        {"A to its node", Program::kFromPod, Syn(kFromA, kA, 40002, kNode, 10250), kOn}}},
      {"pending: everything but the pod's own node is denied, both ways",
       [](Node& n) { n.Pod(kA, 41, kMacA, true); },
       {{"A to B", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80), kDrop},
        {"B to A", Program::kFromPod, Syn(kFromB, kB, 40000, kA, 80), kDrop},
        {"A to its node", Program::kFromPod, Syn(kFromA, kA, 40001, kNode, 10250), kOn},
        {"A answers its node", Program::kFromPod, SynAck(kFromA, kA, 8080, kNode, 50000), kOn},
        {"the other node to A", Program::kFromUplink, Syn(kFromUplink, kOtherNode, 40000, kA, 80), kDrop}}},
      {"replies of an allowed flow pass an isolated endpoint: A isolated both ways, egress to B:80 only",
       [none](Node& n) {
         n.Enforce(kPolicyA, kA, none, std::vector{Allow(IdentityPeer(kIdB), L4Proto::kTcp, 80, 80)});
       },
       {{"A to B:80", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80), kIn},
        {"B's answer into A", Program::kFromPod, SynAck(kFromB, kB, 80, kA, 40000), kIn},
        {"A's next segment", Program::kFromPod, Ack(kFromA, kA, 40000, kB, 80), kIn},
        {"B opens its own connection to A", Program::kFromPod, Syn(kFromB, kB, 80, kA, 40001), kDrop},
        {"a segment B makes up on a tuple A never opened", Program::kFromPod, Ack(kFromB, kB, 80, kA, 40002),
         kDrop},
        {"A to B:81", Program::kFromPod, Syn(kFromA, kA, 40003, kB, 81), kDrop}}},
      {"A not isolated, B isolated both ways (deny-all egress): B still answers what it admitted",
       [none](Node& n) {
         n.Enforce(kPolicyB, kB, std::vector{Allow(IdentityPeer(kIdA), L4Proto::kTcp, 80, 80)}, none);
       },
       {{"A to B:80", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80), kIn},
        {"B answers A", Program::kFromPod, SynAck(kFromB, kB, 80, kA, 40000), kIn},
        {"B opens to A", Program::kFromPod, Syn(kFromB, kB, 5000, kA, 80), kDrop},
        {"a remote pod's answer to a flow B never opened", Program::kFromUplink,
         SynAck(kFromUplink, kRemotePod, 80, kB, 5001), kDrop}}},
      {"an egress verdict does not stand in for the receiver's ingress verdict",
       [none](Node& n) {
         n.Enforce(kPolicyA, kA, std::nullopt, std::vector{Allow(AnyPeer())});
         n.Enforce(kPolicyB, kB, none, std::nullopt);
       },
       {{"A to B: A's egress allows, B's ingress denies", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80),
         kDrop},
        {"A's next segment", Program::kFromPod, Ack(kFromA, kA, 40000, kB, 80), kDrop},
        {"B's own packet to A: B's egress is open, and A opened the flow", Program::kFromPod,
         SynAck(kFromB, kB, 80, kA, 40000), kIn}}},
      {"Service traffic is judged after translation, against the backend",
       [](Node& n) {
         n.Service(kClusterIp, 80, 1, kB, 8080);
         n.Service("10.96.0.11", 80, 2, kC, 8080);
         n.Enforce(kPolicyA, kA, std::vector<AllowEntry>{},
                   std::vector{Allow(IdentityPeer(kIdB), L4Proto::kTcp, 8080, 8080)});
         n.Enforce(kPolicyB, kB, std::vector{Allow(IdentityPeer(kIdA), L4Proto::kTcp, 8080, 8080)},
                   std::nullopt);
       },
       {{"A to the ClusterIP backed by B:8080", Program::kFromPod, Syn(kFromA, kA, 40000, kClusterIp, 80),
         kIn},
        {"B's reply, translated back to the ClusterIP, into A", Program::kFromPod,
         SynAck(kFromB, kB, 8080, kA, 40000), kIn},
        {"A to the ClusterIP backed by C", Program::kFromPod, Syn(kFromA, kA, 40001, "10.96.0.11", 80),
         kDrop},
        {"C to the ClusterIP backed by B: B's ingress denies", Program::kFromPod,
         Syn(kFromC, kC, 40000, kClusterIp, 80), kDrop}}},
      {"socket-LB-rewritten connects arrive translated and are judged as such",
       [](Node& n) {
         n.Enforce(kPolicyA, kA, std::nullopt,
                   std::vector{Allow(IdentityPeer(kIdB), L4Proto::kTcp, 8080, 8080)});
       },
       {{"A to B:8080 directly", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 8080), kIn},
        {"A to C:8080 directly", Program::kFromPod, Syn(kFromA, kA, 40000, kC, 8080), kDrop}}},
      {"the node always passes: deny-all both ways",
       [none](Node& n) { n.Enforce(kPolicyA, kA, none, none); },
       {{"A to its node", Program::kFromPod, Syn(kFromA, kA, 40000, kNode, 10250), kOn},
        {"A to B", Program::kFromPod, Syn(kFromA, kA, 40001, kB, 80), kDrop},
        {"the other node to A (remote-node is no host)", Program::kFromUplink,
         Syn(kFromUplink, kOtherNode, 40000, kA, 80), kDrop}}},
      // Later packets of pod-to-pod flows ride their policy conntrack entry (plain flows: no Service
      // or conntrack lookup, no verdict); what they may not do stays denied.
      {"plain flows: a remote pod's flow into B, its later segments and B's answers",
       [none](Node& n) {
         n.Enforce(kPolicyB, kB, std::vector{Allow(IdentityPeer(kIdRemote), L4Proto::kTcp, 80, 80)}, none);
       },
       {{"remote pod to B:80", Program::kFromUplink, Syn(kFromUplink, kRemotePod, 40000, kB, 80), kIn},
        {"its next segment", Program::kFromUplink, Ack(kFromUplink, kRemotePod, 40000, kB, 80), kIn},
        {"B answers (deny-all egress: a reply)", Program::kFromPod, SynAck(kFromB, kB, 80, kRemotePod, 40000),
         kOn},
        {"B answers again", Program::kFromPod, Ack(kFromB, kB, 80, kRemotePod, 40000), kOn},
        {"B opens its own flow to the remote pod", Program::kFromPod, Syn(kFromB, kB, 80, kRemotePod, 40001),
         kDrop},
        {"B sends on a tuple nobody opened", Program::kFromPod, Ack(kFromB, kB, 80, kRemotePod, 40002),
         kDrop},
        {"the remote pod's segment on a tuple B never admitted", Program::kFromUplink,
         Ack(kFromUplink, kRemotePod, 40003, kB, 81), kDrop},
        {"the flow's FIN", Program::kFromUplink, Fin(kFromUplink, kRemotePod, 40000, kB, 80), kIn},
        {"a segment after the FIN still passes (the whole way)", Program::kFromUplink,
         Ack(kFromUplink, kRemotePod, 40000, kB, 80), kIn}}},
      {"plain flows on one node: A to B both isolated, both ways, and UDP",
       [none](Node& n) {
         n.Enforce(kPolicyA, kA, none, std::vector{Allow(IdentityPeer(kIdB))});
         n.Enforce(kPolicyB, kB, std::vector{Allow(IdentityPeer(kIdA))}, none);
       },
       {{"A to B", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80), kIn},
        {"B answers", Program::kFromPod, SynAck(kFromB, kB, 80, kA, 40000), kIn},
        {"A's next segment", Program::kFromPod, Ack(kFromA, kA, 40000, kB, 80), kIn},
        {"B's next segment", Program::kFromPod, Ack(kFromB, kB, 80, kA, 40000), kIn},
        {"A to B over UDP", Program::kFromPod, UdpPacket(kFromA, kA, 5000, kB, 53), kIn},
        {"B answers over UDP", Program::kFromPod, UdpPacket(kFromB, kB, 53, kA, 5000), kIn},
        {"A again over UDP", Program::kFromPod, UdpPacket(kFromA, kA, 5000, kB, 53), kIn},
        {"C to A", Program::kFromPod, UdpPacket(kFromC, kC, 53, kA, 5000), kDrop}}},
      {"a Service flow reusing a plain flow's tuple is still translated back",
       [none](Node& n) {
         n.Service(kClusterIp, 80, 1, kB, 8080);
         n.Enforce(kPolicyA, kA, std::vector{Allow(IdentityPeer(kIdB))},
                   std::vector{Allow(IdentityPeer(kIdB))});
         n.Enforce(kPolicyB, kB, std::vector{Allow(IdentityPeer(kIdA))},
                   std::vector{Allow(IdentityPeer(kIdA))});
       },
       {{"B opens B:8080 to A:40000", Program::kFromPod, Syn(kFromB, kB, 8080, kA, 40000), kIn, kB},
        {"B's next segment, plain", Program::kFromPod, Ack(kFromB, kB, 8080, kA, 40000), kIn, kB},
        {"A:40000 to the ClusterIP, backed by B:8080", Program::kFromPod,
         Syn(kFromA, kA, 40000, kClusterIp, 80), kIn, kA},
        {"B's reply leaves as the ClusterIP", Program::kFromPod, SynAck(kFromB, kB, 8080, kA, 40000), kIn,
         kClusterIp},
        {"and so does its next segment", Program::kFromPod, Ack(kFromB, kB, 8080, kA, 40000), kIn,
         kClusterIp}}},
      {"audit: what deny-all would drop passes",
       [none](Node& n) { n.Enforce(kPolicyB, kB, none, std::nullopt, EnforcementMode::kAudit); },
       {{"A to B", Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80), kIn},
        {"C to B", Program::kFromPod, UdpPacket(kFromC, kC, 5000, kB, 53), kIn}}},
  };
}

class PolicyTest : public ::testing::TestWithParam<Case> {};

absl::StatusOr<int> RunProgram(ScopedNetNs& ns, int prog, const Bytes& input, Bytes* output = nullptr) {
  Bytes out(input.size() + 128);
  int verdict = -1;
  absl::Status ran = ns.ns().Run([&] {
    DECLARE_LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = input.data(), .data_out = out.data(),
                        .data_size_in = (__u32)input.size(), .data_size_out = (__u32)out.size());
    if (bpf_prog_test_run_opts(prog, &run) != 0) return absl::ErrnoToStatus(errno, "test run");
    verdict = static_cast<int>(run.retval);
    out.resize(run.data_size_out);
    return absl::OkStatus();
  });
  if (!ran.ok()) return ran;
  if (output) *output = std::move(out);
  return verdict;
}

// The IPv4 source of an Ethernet frame.
std::string Ipv4Source(const Bytes& frame) {
  constexpr size_t kSourceOffset = 14 + 12;
  if (frame.size() < kSourceOffset + 4) return "(short frame)";
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, frame.data() + kSourceOffset, text, sizeof(text));
  return text;
}

absl::StatusOr<std::unique_ptr<Datapath>> LoadDatapath() {
  return Datapath::Load(DatapathOptions{.gateway_mac = kGw, .node_ipv4 = *IpAddress::Parse(kNode)});
}

TEST_P(PolicyTest, Verdicts) {
  const Case& c = GetParam();
  SCOPED_TRACE(c.description);
  auto ns = ScopedNetNs::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  auto loaded = LoadDatapath();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::unique_ptr<Datapath> dp = std::move(*loaded);
  Node node(*dp);
  c.setup(node);
  for (const Step& step : c.steps) {
    SCOPED_TRACE(step.description);
    const int prog = step.program == Program::kFromPod ? dp->from_pod_fd() : dp->from_uplink_fd();
    Bytes output;
    absl::StatusOr<int> verdict = RunProgram(**ns, prog, step.input, &output);
    ASSERT_TRUE(verdict.ok()) << verdict.status();
    EXPECT_EQ(*verdict, step.verdict);
    if (!step.source.empty()) EXPECT_EQ(Ipv4Source(output), step.source);
  }
}

INSTANTIATE_TEST_SUITE_P(Table, PolicyTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::to_string(info.index);
                         });

class PolicyVisibilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ns = ScopedNetNs::Create();
    ASSERT_TRUE(ns.ok()) << ns.status();
    ns_ = std::move(*ns);
    auto loaded = LoadDatapath();
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    dp_ = std::move(*loaded);
    node_ = std::make_unique<Node>(*dp_);
    ring_ = ring_buffer__new(
        dp_->map_fd(DatapathMap::kEvents),
        [](void* ctx, void* data, size_t size) {
          if (size == sizeof(weir_event))
            static_cast<std::vector<weir_event>*>(ctx)->push_back(*(weir_event*)data);
          return 0;
        },
        &events_, nullptr);
    ASSERT_NE(ring_, nullptr);
  }
  void TearDown() override {
    if (ring_) ring_buffer__free(ring_);
  }

  int Send(Program program, const Bytes& packet) {
    absl::StatusOr<int> verdict =
        RunProgram(*ns_, program == Program::kFromPod ? dp_->from_pod_fd() : dp_->from_uplink_fd(), packet);
    EXPECT_TRUE(verdict.ok()) << verdict.status();
    return verdict.value_or(-1);
  }

  // Summed over CPUs: [direction][verdict].
  weir_policy_counters Counters(uint32_t policy_id) {
    weir_policy_counters sum{};
    auto map = dp_->OpenMap<PolicyCountersMap>(DatapathMap::kPolicyCounters);
    EXPECT_TRUE(map.ok()) << map.status();
    auto per_cpu = map->LookupPerCpu(policy_id);
    EXPECT_TRUE(per_cpu.ok()) << per_cpu.status();
    if (!per_cpu.ok() || !per_cpu->has_value()) return sum;
    for (const weir_policy_counters& cpu : **per_cpu) {
      for (int d = 0; d < 2; ++d)
        for (int v = 0; v < WEIR_POLICY_VERDICTS; ++v) sum.packets[d][v] += cpu.packets[d][v];
    }
    return sum;
  }

  std::vector<weir_event> Events() {
    events_.clear();
    ring_buffer__consume(ring_);
    return events_;
  }

  std::unique_ptr<ScopedNetNs> ns_;
  std::unique_ptr<Datapath> dp_;
  std::unique_ptr<Node> node_;
  ring_buffer* ring_ = nullptr;
  std::vector<weir_event> events_;
};

TEST_F(PolicyVisibilityTest, DenialsAreCountedAndReported) {
  node_->Enforce(kPolicyB, kB, std::vector{Allow(IdentityPeer(kIdA), L4Proto::kTcp, 80, 80)}, std::nullopt);
  EXPECT_EQ(Send(Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80)), kIn);
  EXPECT_EQ(Send(Program::kFromPod, Ack(kFromA, kA, 40000, kB, 80)), kIn);
  EXPECT_EQ(Send(Program::kFromPod, Syn(kFromC, kC, 40001, kB, 81)), kDrop);
  EXPECT_EQ(Send(Program::kFromPod, Syn(kFromC, kC, 40001, kB, 81)), kDrop);

  const weir_policy_counters counters = Counters(kPolicyB);
  EXPECT_EQ(counters.packets[WEIR_POLICY_INGRESS][WEIR_POLICY_ALLOWED], 1u) << "one verdict, then conntrack";
  EXPECT_EQ(counters.packets[WEIR_POLICY_INGRESS][WEIR_POLICY_DENIED], 2u);
  EXPECT_EQ(counters.packets[WEIR_POLICY_EGRESS][WEIR_POLICY_ALLOWED], 0u);

  std::vector<weir_event> events = Events();
  ASSERT_EQ(events.size(), 2u);
  const weir_event& denied = events[0];
  EXPECT_EQ(denied.type, WEIR_EVENT_POLICY);
  EXPECT_EQ(denied.reason, WEIR_POLICY_DENIED);
  EXPECT_EQ(denied.direction, WEIR_POLICY_INGRESS);
  EXPECT_EQ(denied.policy_id, kPolicyB);
  EXPECT_EQ(denied.peer_identity, kIdC);
  EXPECT_EQ(denied.proto, IPPROTO_TCP);
  EXPECT_EQ(denied.dport, htons(81));
  EXPECT_EQ(abi::RenderAddress(denied.saddr, denied.family), kC);
}

TEST_F(PolicyVisibilityTest, AuditPassesButCountsAndReports) {
  node_->Enforce(kPolicyA, kA, std::nullopt, std::vector<AllowEntry>{}, EnforcementMode::kAudit);
  EXPECT_EQ(Send(Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80)), kIn);
  EXPECT_EQ(Send(Program::kFromPod, Ack(kFromA, kA, 40000, kB, 80)), kIn);

  const weir_policy_counters counters = Counters(kPolicyA);
  EXPECT_EQ(counters.packets[WEIR_POLICY_EGRESS][WEIR_POLICY_AUDITED], 1u);
  EXPECT_EQ(counters.packets[WEIR_POLICY_EGRESS][WEIR_POLICY_DENIED], 0u);
  std::vector<weir_event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].reason, WEIR_POLICY_AUDITED);
  EXPECT_EQ(events[0].direction, WEIR_POLICY_EGRESS);
  EXPECT_EQ(events[0].peer_identity, kIdB);
}

// An older agent kept whole addresses in the peers trie: opening the maps moves them to the hosts
// map (weir_pol_hosts), and the verdicts stay what they were, before and after.
TEST_F(PolicyVisibilityTest, WholeAddressesLeftInTheTrieMoveToTheHostsMap) {
  auto trie = dp_->OpenMap<PolicyPeersMap>(DatapathMap::kPolicyPeers);
  auto hosts = dp_->OpenMap<PolicyHostsMap>(DatapathMap::kPolicyHosts);
  ASSERT_TRUE(trie.ok() && hosts.ok());
  const weir_policy_peer_key in_trie = abi::EncodePolicyPeerKey(Node::Host(kC));
  weir_policy_host_key host{};
  host.family = in_trie.family;
  host.addr = in_trie.addr;
  ASSERT_TRUE(hosts->Delete(host).ok());
  ASSERT_TRUE(trie->Update(in_trie, kIdC).ok());
  node_->Enforce(kPolicyB, kB, std::vector{Allow(IdentityPeer(kIdC), L4Proto::kTcp, 80, 80)}, std::nullopt);
  EXPECT_EQ(Send(Program::kFromPod, Syn(kFromC, kC, 40000, kB, 80)), kIn) << "kC found in the trie";

  ASSERT_TRUE(policy_sync::BpfPolicyMaps::Open(*dp_).ok());
  auto left = trie->Lookup(in_trie);
  ASSERT_TRUE(left.ok());
  EXPECT_FALSE(left->has_value()) << "moved out of the trie";
  auto moved = hosts->Lookup(host);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved->value_or(0), kIdC);
  EXPECT_EQ(Send(Program::kFromPod, Syn(kFromC, kC, 40001, kB, 80)), kIn) << "kC found in the hosts map";
  EXPECT_EQ(Send(Program::kFromPod, Syn(kFromC, kC, 40002, kB, 81)), kDrop);
}

// Established flows keep their verdict when the policy changes; new ones take the new policy.
TEST_F(PolicyVisibilityTest, PolicyChangeKeepsEstablishedFlows) {
  node_->Enforce(kPolicyB, kB, std::vector{Allow(IdentityPeer(kIdA), L4Proto::kTcp, 80, 80)}, std::nullopt);
  EXPECT_EQ(Send(Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80)), kIn);
  node_->Enforce(kPolicyB, kB, std::vector<AllowEntry>{}, std::nullopt);
  EXPECT_EQ(Send(Program::kFromPod, Ack(kFromA, kA, 40000, kB, 80)), kIn) << "established";
  EXPECT_EQ(Send(Program::kFromPod, Syn(kFromA, kA, 40000, kB, 80)), kDrop) << "a new SYN on the tuple";
  EXPECT_EQ(Send(Program::kFromPod, Syn(kFromA, kA, 40001, kB, 80)), kDrop) << "a new flow";
  node_->Enforce(kPolicyB, kB, std::vector{Allow(IdentityPeer(kIdA), L4Proto::kTcp, 80, 80)}, std::nullopt);
  EXPECT_EQ(Send(Program::kFromPod, Syn(kFromA, kA, 40001, kB, 80)), kIn) << "allowed again";
}

}  // namespace
}  // namespace weir::testing
