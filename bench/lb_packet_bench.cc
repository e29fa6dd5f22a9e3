// Per-packet cost of weir's from_pod program (the tc program on every pod veth) with 1 to 100k
// Services in the maps, measured with BPF_PROG_TEST_RUN. Run by bench/lb_bench.py; prints JSON.
//
// BPF_PROG_TEST_RUN with `repeat` runs the program again and again on the same skb, and the program
// rewrites that skb (DNAT, TTL, MACs), so repetition k sees what repetition k-1 left. Each case is
// built so that every repetition does the same work as a packet of its kind would.
//
// Every packet the program sends on (bpf_redirect, to a local pod or out of the node) is one routed
// hop: its TTL goes down by one, and at TTL 1 the packet goes to the stack instead. The cases that
// redirect therefore start at TTL 255 and make at most 250 repetitions per call (kRoutedRepeat), so
// every repetition is forwarded and none stops at the TTL check; what comes out is checked with the
// TTL 255 - repetitions and its IP checksum (built independently, testlib/packets.h). The cases
// whose packet is not forwarded use `--repeat` repetitions; `Repeated` makes as many calls as
// needed for about calls x repeat packets per run either way.
//
//
//   baseline_remote  pod -> pod on another node, no Service: conntrack miss, Service miss, not a
//                    local endpoint -> to the stack. The packet is not changed.
//   baseline_local   pod -> pod on this node, no Service: as above, then TTL - 1, MACs and
//                    bpf_redirect. Only the TTL changes (255 in, 5 out).
//   lookup           pod -> ClusterIP port without ready endpoints: conntrack miss, Service hit, no
//                    backend, drop record, drop (the packet is a TCP reset, which gets no reset
//                    back). Service lookup without conntrack entries; the packet is not changed.
//   established      pod -> ClusterIP, established flow: conntrack hit, DNAT (address and port),
//                    endpoint miss, bpf_fib_lookup, MACs, bpf_redirect. The flow's first packet went
//                    through the real new-flow path (checked); a second conntrack entry maps the
//                    backend back to the frontend, so the packet goes frontend -> backend ->
//                    frontend ... and is back to what went in after an even number (250) of
//                    repetitions (checked), its TTL 250 lower.
//   new_flow         pod -> ClusterIP, first packet of a flow: conntrack miss, Service hit, backend
//                    pick, conntrack create (two entries), DNAT, FIB, redirect. The Services form a
//                    ring: Service j's backend is Service j+1's frontend, so each repetition's packet
//                    is the first packet of a new flow to the next Service (checked at the end, TTL
//                    255 - repetitions). Needs 2 or more Services; `--chain` (at most 250)
//                    repetitions per call, `--chain_calls` calls per run.
//   new_flow_single  new_flow as single runs (repeat 1), each a new flow to a random Service from a
//                    new source port, minus the harness cost of a single run (the empty program run
//                    the same way). The system call between packets leaves caches and TLB colder, as
//                    for real first packets arriving among other work. baseline_remote_single is
//                    baseline_remote measured the same way, to compare the two methods.
//   new_flow_drained new_flow_single with the events ring buffer emptied before every packet, so
//                    that the translation record is written (as while `weirctl events` keeps up).
//   established_single, floor_new_flow_single
//                    established and floor_new_flow measured as new_flow_single, interleaved with
//                    it call by call: the floor under new_flow_single taken the same way.
//   floor_*          bench/bpf/lb_floor.bpf.c on the datapath's own maps (no packet work): floor_lookup
//                    a Service lookup at a random Service; floor_pick that and its backend as
//                    the datapath finds it (slot, then backend by id); floor_insert a conntrack
//                    lookup that misses and one insert; floor_new_flow a Service lookup, the miss
//                    and two inserts (both directions), the map work no tracked, translated flow
//                    can do without: the physical floor under new_flow. As many packets per run
//                    as new_flow, so that they find the conntrack map as full.
//   uplink_egress    to_uplink (tc egress of an uplink) on a segment the node sends that answers no
//                    translated flow: parse, conntrack miss. What every packet leaving through an
//                    uplink pays. The packet is not changed.
//   udp_remote       baseline_remote for a UDP datagram: with --masquerade, the in-cluster lookup
//                    (LPM) that a TCP segment other than a SYN skips. The packet is not changed.
//   masq_established with --masquerade: a pod's established flow to outside the cluster: conntrack
//                    hit, SNAT (address; the port is the pod's own), endpoint miss, bpf_fib_lookup,
//                    MACs, bpf_redirect. The first packet went through the real masquerade path
//                    (checked); a second conntrack entry maps the node back to the pod, as for
//                    `established` (250 repetitions, TTL 255 in, 5 out).
//
// --masquerade loads the datapath with egress masquerade on, the pod and node ranges in the
// in-cluster set, up0 as the uplink and a default route through the next node.
//
// The events ring buffer is otherwise kept full: on a node nobody reads it unless `weirctl events`
// runs, so a full ring is the usual state and a record costs a failed reservation.
//
// Service j: ClusterIP 10.96.0.1+j, TCP port 80 (even j) or 8080 (odd j) with one backend (not on
// this node) at the next Service's frontend (with one Service: its own ClusterIP, port 8080), and
// TCP port 81 without ready endpoints. N Services are 2N frontend entries. The maps are sized as the
// agent's defaults, larger where N needs it.
//
// Every call picks a random Service. The process moves into a network namespace of its own
// (unshare) before anything else and sets it up there: a veth pair for the pod side and one for the
// uplink, with the next node as permanent neighbour and routes to the ClusterIP range through it, so
// bpf_fib_lookup succeeds as on a node. The namespace goes away with the process. Nothing is
// attached, and no packet leaves a test run.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bpf/abi/conntrack.h"
#include "bpf/abi/events.h"
#include "bpf/abi/masquerade.h"
#include "bpf/abi/service.h"
#include "lb_floor.skel.h"
#include "lib/abi_codec.h"
#include "lib/conntrack_map.h"
#include "lib/datapath.h"
#include "lib/endpoint_map.h"
#include "lib/masquerade_maps.h"
#include "lib/service_maps.h"
#include "lib/unique_fd.h"
#include "testlib/packets.h"

namespace weir::bench {
namespace {

using testing::Bytes;
using testing::L2;
using testing::Tcp;

const MacAddress kGw = WEIR_GATEWAY_MAC;
const MacAddress kPodA = {0x0a, 0, 0, 0, 0, 0x0a};
const MacAddress kPodB = {0x0a, 0, 0, 0, 0, 0x0b};
const MacAddress kUplinkMac = {0x0e, 0, 0, 0, 0, 0x01};
const MacAddress kNextHopMac = {0x0e, 0, 0, 0, 0, 0x02};
const L2 kFromPodA{kPodA, kGw};
const L2 kRouted{kUplinkMac, kNextHopMac};  // as bpf_fib_lookup addresses it to the next node
constexpr char kPodAIp[] = "10.244.1.2";
constexpr char kPodBIp[] = "10.244.1.3";
constexpr char kRemotePodIp[] = "10.244.2.9";
constexpr uint32_t kClusterIpBase = 0x0a600001;  // 10.96.0.1
constexpr uint32_t kNoEndpointsServiceIdBase = 1u << 24;
constexpr uint16_t kNoEndpointsPort = 81;
constexpr char kNodeIp[] = "192.168.77.1";
constexpr uint32_t kOutsideBase = 0xcb007150;  // 203.0.113.80
// A packet the program forwards loses one TTL per repetition: it starts at kFreshTtl, and a call
// makes at most kRoutedRepeat repetitions (even, for the cases that go back and forth), so the TTL
// never reaches 1.
constexpr uint8_t kFreshTtl = 255;
constexpr uint32_t kRoutedRepeat = 250;

struct Options {
  std::vector<uint32_t> sizes = {1, 1000, 10000, 100000};
  int runs = 15;
  int calls = 20;                  // test-run calls per run and case, each with a random Service
  uint32_t repeat = 10000;         // repetitions per call
  uint32_t chain = kRoutedRepeat;  // new_flow: repetitions (new flows) per call
  int chain_calls = 10;            // new_flow: calls per run
  int single_calls = 1000;         // single-run cases: calls per run
  uint32_t seed = 1;
  std::set<std::string> cases;  // empty: all; "single" stands for the single-run cases
  bool masquerade = false;
};

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "weir_lb_packet_bench: %s\n", message.c_str());
  std::exit(1);
}

void Progress(const std::string& message) { std::fprintf(stderr, "  packet bench: %s\n", message.c_str()); }

void Sh(const std::string& command) {
  if (std::system(command.c_str()) != 0) Fail(absl::StrCat("failed: ", command));
}

std::string MacText(const MacAddress& mac) {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

uint32_t Ipv4(const char* text) {
  in_addr a{};
  inet_pton(AF_INET, text, &a);
  return ntohl(a.s_addr);
}

std::string Ipv4Text(uint32_t host_order) { return IpAddress::V4(host_order).ToString(); }

void EnterPrivateNetns() {
  if (unshare(CLONE_NEWNET) != 0) Fail(absl::StrCat("unshare(CLONE_NEWNET): ", std::strerror(errno)));
  Sh("ip link set lo up");
  Sh("sysctl -qw net.ipv4.ip_forward=1");
  Sh("ip link add pod0 type veth peer name pod0p");
  Sh(absl::StrCat("ip link add up0 address ", MacText(kUplinkMac), " type veth peer name up0p"));
  for (const char* link : {"pod0", "pod0p", "up0", "up0p"}) Sh(absl::StrCat("ip link set ", link, " up"));
  Sh("ip addr add 192.168.77.1/24 dev up0");
  Sh(absl::StrCat("ip neigh replace 192.168.77.2 lladdr ", MacText(kNextHopMac), " nud permanent dev up0"));
  Sh("ip route add 10.96.0.0/12 via 192.168.77.2");
  Sh("ip route add 10.244.2.0/24 via 192.168.77.2");
}

struct RunOut {
  uint32_t retval = 0;
  uint32_t duration_ns = 0;  // per repetition, truncated by the kernel
  Bytes out;
};

// The packet arrives on pod0 (ingress_ifindex is what bpf_fib_lookup starts from).
RunOut TestRun(int prog, const Bytes& in, uint32_t repeat, int ifindex) {
  __sk_buff ctx{};
  ctx.ifindex = ifindex;
  ctx.ingress_ifindex = ifindex;
  RunOut r;
  r.out.resize(in.size() + 256);
  DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = r.out.data(),
                      .data_size_in = (__u32)in.size(), .data_size_out = (__u32)r.out.size(), .ctx_in = &ctx,
                      .ctx_size_in = sizeof(ctx), .repeat = (int)repeat);
  if (bpf_prog_test_run_opts(prog, &opts) != 0)
    Fail(absl::StrCat("BPF_PROG_TEST_RUN: ", std::strerror(errno)));
  r.retval = opts.retval;
  r.duration_ns = opts.duration;
  r.out.resize(opts.data_size_out);
  return r;
}

// `return TC_ACT_OK`: what a test run costs around the program.
UniqueFd LoadEmptyProgram() {
  bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[0].dst_reg = BPF_REG_0;
  insns[0].imm = TC_ACT_OK;
  insns[1].code = BPF_JMP | BPF_EXIT;
  int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "weir_bench_nop", "GPL", insns, 2, nullptr);
  if (fd < 0) Fail(absl::StrCat("load empty program: ", std::strerror(errno)));
  return UniqueFd(fd);
}

void Check(const absl::Status& status) {
  if (!status.ok()) Fail(absl::StrCat("map update: ", status.ToString()));
}

Tcp Segment(const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport, uint8_t flags,
            uint8_t ttl = 64) {
  return Tcp{.src = src,
             .sport = sport,
             .dst = dst,
             .dport = dport,
             .flags = flags,
             .seq = 1000,
             .ack = flags & 0x10 ? 5001u : 0u,
             .ttl = ttl};
}

// Busy-waits `ns` nanoseconds.
void SpinFor(int64_t ns) {
  timespec start{}, now{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((now.tv_sec - start.tv_sec) * 1'000'000'000 + (now.tv_nsec - start.tv_nsec) < ns);
}

// A packet for a test run and what must come out of it after all the repetitions.
struct InOut {
  Bytes in;
  Bytes out;
};

// A packet the program lets through (or drops) without changing it.
InOut Unchanged(Bytes packet) { return {packet, packet}; }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string JsonList(const std::vector<double>& v) {
  return absl::StrCat(
      "[",
      absl::StrJoin(v, ", ",
                    [](std::string* out, double x) { absl::StrAppend(out, absl::StrFormat("%.3f", x)); }),
      "]");
}

class Bench {
 public:
  Bench(const Options& options, uint32_t size, int ifindex, int empty_prog)
      : o_(options), size_(size), ifindex_(ifindex), empty_(empty_prog), rng_(options.seed + size) {}

  // {"case": [ns per packet, one per run]}.
  std::map<std::string, std::vector<double>> Measure() {
    Load();
    std::map<std::string, std::vector<double>> results;
    // Interleaved: every case gets one run before any case gets the next, so drift hits all alike.
    for (int run = 0; run < o_.runs; ++run) {
      if (On("empty")) {
        results["empty"].push_back(Repeated(empty_, TC_ACT_OK, o_.repeat, [&] {
          return Unchanged(testing::TcpPacket(kFromPodA, Segment(kPodAIp, 40000, kRemotePodIp, 8080, 0x10)));
        }));
      }
      if (On("baseline_remote")) {
        results["baseline_remote"].push_back(Repeated(prog_, TC_ACT_OK, o_.repeat, [&] {
          return Unchanged(testing::TcpPacket(kFromPodA, Segment(kPodAIp, 40000, kRemotePodIp, 8080, 0x10)));
        }));
      }
      if (On("uplink_egress")) {
        results["uplink_egress"].push_back(Repeated(dp_->to_uplink_fd(), TC_ACT_OK, o_.repeat, [&] {
          return Unchanged(testing::TcpPacket(kFromPodA, Segment(kNodeIp, 40000, kRemotePodIp, 8080, 0x10)));
        }));
      }
      if (On("baseline_local")) {
        const InOut packets{
            testing::TcpPacket(kFromPodA, Segment(kPodAIp, 40000, kPodBIp, 8080, 0x10, kFreshTtl)),
            testing::TcpPacket(L2{kGw, kPodB},
                               Segment(kPodAIp, 40000, kPodBIp, 8080, 0x10, kFreshTtl - kRoutedRepeat))};
        results["baseline_local"].push_back(
            Repeated(prog_, TC_ACT_REDIRECT, kRoutedRepeat, [&] { return packets; }));
      }
      if (On("lookup")) {
        results["lookup"].push_back(Repeated(prog_, TC_ACT_SHOT, o_.repeat, [&] {
          return Unchanged(testing::TcpPacket(
              kFromPodA, Segment(kPodAIp, 40000, Frontend(RandomService()), kNoEndpointsPort, 0x14)));
        }));
      }
      if (On("udp_remote")) {
        results["udp_remote"].push_back(Repeated(prog_, TC_ACT_OK, o_.repeat, [&] {
          return Unchanged(testing::UdpPacket(kFromPodA, kPodAIp, 40000, kRemotePodIp, 53));
        }));
      }
      if (o_.masquerade && On("masq_established")) {
        results["masq_established"].push_back(Repeated(prog_, TC_ACT_REDIRECT, kRoutedRepeat, [&] {
          return masq_established_[std::uniform_int_distribution<size_t>(0,
                                                                         masq_established_.size() - 1)(rng_)];
        }));
      }
      if (On("established")) {
        results["established"].push_back(Repeated(prog_, TC_ACT_REDIRECT, kRoutedRepeat, [&] {
          return established_[std::uniform_int_distribution<size_t>(0, established_.size() - 1)(rng_)];
        }));
      }
      if (On("new_flow") && size_ >= 2) results["new_flow"].push_back(NewFlowChain());
      for (auto& [name, prog] : {std::pair{"floor_lookup", floor_->progs.floor_lookup},
                                 std::pair{"floor_insert", floor_->progs.floor_insert},
                                 std::pair{"floor_pick", floor_->progs.floor_pick},
                                 std::pair{"floor_new_flow", floor_->progs.floor_new_flow}}) {
        if (On(name)) results[name].push_back(Floor(bpf_program__fd(prog)));
      }
      if (!On("single")) continue;
      Single single = SingleRuns();
      results["empty_single"].push_back(single.empty);
      results["baseline_remote_single"].push_back(single.baseline);
      results["new_flow_single"].push_back(single.new_flow);
      results["new_flow_drained"].push_back(single.new_flow_drained);
      results["established_single"].push_back(single.established);
      results["floor_new_flow_single"].push_back(single.floor_new_flow);
    }
    ring_buffer__free(ring_);
    lb_floor__destroy(floor_);
    dp_.reset();
    return results;
  }

 private:
  bool On(const std::string& name) const { return o_.cases.empty() || o_.cases.count(name) > 0; }
  uint32_t RandomService() { return std::uniform_int_distribution<uint32_t>(0, size_ - 1)(rng_); }
  uint32_t Next(uint32_t j) const { return (j + 1) % size_; }
  static std::string Frontend(uint32_t j) { return Ipv4Text(kClusterIpBase + j); }
  uint16_t Port(uint32_t j) const { return j % 2 ? 8080 : 80; }
  // Where Service j's one backend is.
  std::string BackendIp(uint32_t j) const { return Frontend(size_ == 1 ? j : Next(j)); }
  uint16_t BackendPort(uint32_t j) const { return size_ == 1 ? 8080 : Port(Next(j)); }

  void Load() {
    Progress(absl::StrCat(size_, " Services: loading the datapath"));
    auto loaded = Datapath::Load(DatapathOptions{.gateway_mac = kGw,
                                                 .node_ipv4 = *IpAddress::Parse(kNodeIp),
                                                 .services_max = std::max<uint32_t>(65536, 2 * size_ + 1024),
                                                 .backends_max = std::max<uint32_t>(262144, size_ + 1024),
                                                 .masquerade = o_.masquerade});
    if (!loaded.ok()) Fail(absl::StrCat("Datapath::Load: ", loaded.status().ToString()));
    dp_ = std::move(*loaded);
    prog_ = dp_->from_pod_fd();
    EndpointMap endpoints = *dp_->OpenMap<EndpointMap>(DatapathMap::kEndpoints);
    int host_ifindex = if_nametoindex("pod0p");
    for (auto [ip, mac] : {std::pair{kPodAIp, kPodA}, std::pair{kPodBIp, kPodB}}) {
      if (!endpoints.Upsert({.address = *IpAddress::Parse(ip), .host_ifindex = host_ifindex, .pod_mac = mac})
               .ok()) {
        Fail("endpoint upsert");
      }
    }
    timespec t0{}, t1{};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    FillServices();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    Progress(absl::StrFormat("%u Services (%u frontends) in the maps in %.2fs", size_, 2 * size_,
                             (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9));
    PrepareEstablished();
    if (o_.masquerade) PrepareMasquerade();
    LoadFloor();
    ring_ = ring_buffer__new(
        dp_->map_fd(DatapathMap::kEvents), [](void*, void*, size_t) { return 0; }, nullptr, nullptr);
    if (ring_ == nullptr) Fail("ring_buffer__new");
    FillEventsRing();
  }

  // bench/bpf/lb_floor.bpf.c on this load's Services and conntrack maps.
  void LoadFloor() {
    floor_ = lb_floor__open();
    if (floor_ == nullptr) Fail("lb_floor__open");
    floor_->rodata->services = size_;
    if (bpf_map__reuse_fd(floor_->maps.services_map, dp_->map_fd(DatapathMap::kServices)) != 0 ||
        bpf_map__reuse_fd(floor_->maps.slots_map, dp_->map_fd(DatapathMap::kBackendSlots)) != 0 ||
        bpf_map__reuse_fd(floor_->maps.backends_map, dp_->map_fd(DatapathMap::kBackends)) != 0 ||
        bpf_map__reuse_fd(floor_->maps.conntrack_map, dp_->map_fd(DatapathMap::kConntrack)) != 0) {
      Fail("lb_floor: reuse the datapath's maps");
    }
    if (lb_floor__load(floor_) != 0) Fail(absl::StrCat("lb_floor__load: ", std::strerror(errno)));
  }

  // Mean ns per packet of a floor program, as many packets per run as new_flow.
  double Floor(int prog) {
    const Bytes packet = testing::TcpPacket(kFromPodA, Segment(kPodAIp, 40000, kRemotePodIp, 8080, 0x10));
    double total = 0;
    for (int c = 0; c < o_.chain_calls; ++c) {
      const uint64_t first = FloorFlows();
      RunOut r = TestRun(prog, packet, o_.chain, ifindex_);
      if (r.retval != TC_ACT_OK) Fail(absl::StrCat("floor program verdict ", r.retval));
      total += r.duration_ns;
      ForgetFloorFlows(first, FloorFlows());
    }
    return total / o_.chain_calls;
  }

  // How many tuples the floor programs made so far (their counter).
  uint64_t FloorFlows() const {
    uint32_t zero = 0;
    uint64_t flows = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(floor_->maps.flows), &zero, &flows) != 0) Fail("floor counter");
    return flows;
  }

  // Deletes the conntrack entries of the floor's tuples [first, last), as lb_floor.bpf.c built
  // them, so that the floor cases leave the map as full as they found it: over many runs, they
  // would otherwise push the established case's entries out of the LRU.
  void ForgetFloorFlows(uint64_t first, uint64_t last) const {
    const int ct = dp_->map_fd(DatapathMap::kConntrack);
    for (uint64_t n = first; n < last; ++n) {
      weir_ct_key key{};
      key.saddr.v4 = htonl(0x0b000000 + n / 50000);
      key.daddr.v4 = htonl(0x0a600001);
      key.sport = htons(1024 + n % 50000);
      key.dport = htons(80);
      key.proto = WEIR_PROTO_TCP;
      key.family = WEIR_FAMILY_IPV4;
      bpf_map_delete_elem(ct, &key);
      weir_ct_key reply{};
      reply.saddr.v4 = htonl(0x0a600002);
      reply.daddr = key.saddr;
      reply.sport = htons(8080);
      reply.dport = key.sport;
      reply.proto = WEIR_PROTO_TCP;
      reply.family = WEIR_FAMILY_IPV4;
      bpf_map_delete_elem(ct, &reply);  // floor_new_flow's only
    }
  }

  // A typed view of one of the loaded datapath's maps.
  template <typename Map>
  Map Open(DatapathMap which) const {
    absl::StatusOr<Map> map = dp_->OpenMap<Map>(which);
    if (!map.ok()) Fail(absl::StrCat("open a datapath map: ", map.status().ToString()));
    return *std::move(map);
  }

  void FillServices() {
    const auto services = Open<ServicesMap>(DatapathMap::kServices);
    const auto slots = Open<SlotsMap>(DatapathMap::kBackendSlots);
    const auto backends = Open<BackendsMap>(DatapathMap::kBackends);
    for (uint32_t j = 0; j < size_; ++j) {
      const uint32_t backend_id = j + 1;
      const weir_backend backend = abi::EncodeBackend({*IpAddress::Parse(BackendIp(j)), BackendPort(j)});
      Check(backends.Update(backend_id, backend));
      Check(slots.Update({.service_id = j + 1, .slot = 1}, backend_id));
      const IpAddress cluster_ip = IpAddress::V4(kClusterIpBase + j);
      // As the agent writes it: the one slot travels in the entry too.
      weir_service_value value{.service_id = j + 1, .backend_count = 1, .flags = WEIR_SVC_CLUSTER_IP};
      value.inline_count = 1;
      value.backends[0] = {
          .addr = backend.addr, .port = backend.port, .family = backend.family, .id = backend_id};
      Check(services.Update(abi::EncodeServiceKey({cluster_ip, Port(j)}), value));
      Check(services.Update(
          abi::EncodeServiceKey({cluster_ip, kNoEndpointsPort}),
          {.service_id = kNoEndpointsServiceIdBase + j, .backend_count = 0, .flags = WEIR_SVC_CLUSTER_IP}));
    }
  }

  // Mean ns per packet over calls of `repeat` repetitions, each call on a new packet from `make`
  // (an InOut); about calls x repeat packets per run whatever the repeat. The packet must come out
  // as the InOut says.
  template <typename MakePackets>
  double Repeated(int prog, int verdict, uint32_t repeat, MakePackets make) {
    int calls = std::max<int>(1, (int)((uint64_t)o_.calls * o_.repeat / repeat));
    double total = 0;
    for (int c = 0; c < calls; ++c) {
      const InOut packets = make();
      RunOut r = TestRun(prog, packets.in, repeat, ifindex_);
      if ((int)r.retval != verdict) Fail(absl::StrCat("verdict ", r.retval, ", want ", verdict));
      const Bytes& want = packets.out;
      if (r.out != want) {
        Fail(absl::StrCat("unexpected packet after the repetitions:\n", testing::Hex(r.out), "\nwant\n",
                          testing::Hex(want)));
      }
      total += r.duration_ns;
    }
    return total / calls;
  }

  // For up to 64 Services, a flow whose first packet took the real new-flow path (checked), plus
  // the conntrack entry that turns the backend back into the frontend.
  void PrepareEstablished() {
    const auto ct = Open<ConntrackMap>(DatapathMap::kConntrack);
    uint32_t count = std::min<uint32_t>(size_, 64);
    for (uint32_t i = 0; i < count; ++i) {
      uint32_t j = size_ <= 64 ? i : RandomService();
      uint16_t sport = 30000 + i;
      RunOut first =
          TestRun(prog_, testing::TcpPacket(kFromPodA, Segment(kPodAIp, sport, Frontend(j), Port(j), 0x02)),
                  1, ifindex_);
      // One routed hop: TTL 64 in, 63 out.
      Bytes want =
          testing::TcpPacket(kRouted, Segment(kPodAIp, sport, BackendIp(j), BackendPort(j), 0x02, 63));
      if (first.retval != TC_ACT_REDIRECT || first.out != want) {
        Fail(absl::StrCat("first packet to ", Frontend(j), ": verdict ", first.retval, "\n",
                          testing::Hex(first.out), "\nwant\n", testing::Hex(want)));
      }
      const weir_ct_key key =
          abi::EncodeConntrackKey({*IpAddress::Parse(kPodAIp), sport, *IpAddress::Parse(BackendIp(j)),
                                   BackendPort(j), WEIR_PROTO_TCP});
      weir_ct_value value{};
      value.nat_addr = abi::EncodeAddress(IpAddress::V4(kClusterIpBase + j));
      value.nat_port = htons(Port(j));
      value.kind = WEIR_CT_FORWARD;
      value.backend_id = j + 1;
      value.service_id = j + 1;
      Check(ct.Update(key, value));
      // As it leaves after an even number of repetitions: MACs from the FIB, addresses unchanged,
      // one TTL fewer per repetition.
      established_.push_back(
          {testing::TcpPacket(kRouted, Segment(kPodAIp, sport, Frontend(j), Port(j), 0x10, kFreshTtl)),
           testing::TcpPacket(
               kRouted, Segment(kPodAIp, sport, Frontend(j), Port(j), 0x10, kFreshTtl - kRoutedRepeat))});
    }
  }

  // The in-cluster set and the uplink; for up to 64 destinations outside the cluster, a flow whose
  // first packet was masqueraded (checked), plus the entry that turns the node back into the pod.
  void PrepareMasquerade() {
    const auto nonmasq = Open<NonMasqueradeMap>(DatapathMap::kNonMasquerade);
    for (const char* cidr : {"10.244.0.0/16", "192.168.77.0/24"}) {
      Check(nonmasq.Update(abi::EncodeNonMasqueradeKey(*IpPrefix::Parse(cidr)), 0));
    }
    Check(Open<UplinksMap>(DatapathMap::kUplinks).Update(if_nametoindex("up0"), 0));
    const auto ct = Open<ConntrackMap>(DatapathMap::kConntrack);
    for (uint32_t i = 0; i < 64; ++i) {
      const std::string outside = Ipv4Text(kOutsideBase + i);
      const uint16_t sport = 31000 + i;
      RunOut first = TestRun(prog_, testing::TcpPacket(kFromPodA, Segment(kPodAIp, sport, outside, 80, 0x02)),
                             1, ifindex_);
      Bytes want = testing::TcpPacket(kRouted, Segment(kNodeIp, sport, outside, 80, 0x02, 63));
      if (first.retval != TC_ACT_REDIRECT || first.out != want) {
        Fail(absl::StrCat("first packet to ", outside, ": verdict ", first.retval, "\n",
                          testing::Hex(first.out), "\nwant\n", testing::Hex(want)));
      }
      const weir_ct_key key = abi::EncodeConntrackKey(
          {*IpAddress::Parse(kNodeIp), sport, IpAddress::V4(kOutsideBase + i), 80, WEIR_PROTO_TCP});
      weir_ct_value value{};
      value.nat_addr = abi::EncodeAddress(IpAddress::V4(kOutsideBase + i));
      value.nat_port = htons(80);
      value.snat_addr = abi::EncodeAddress(*IpAddress::Parse(kPodAIp));
      value.snat_port = htons(sport);
      value.kind = WEIR_CT_FORWARD;
      value.flags = WEIR_CT_SNAT | WEIR_CT_MASQ;
      Check(ct.Update(key, value));
      masq_established_.push_back(
          {testing::TcpPacket(kRouted, Segment(kPodAIp, sport, outside, 80, 0x10, kFreshTtl)),
           testing::TcpPacket(kRouted,
                              Segment(kPodAIp, sport, outside, 80, 0x10, kFreshTtl - kRoutedRepeat))});
    }
  }

  // Drop records until the ring buffer is full (nobody reads it).
  void FillEventsRing() {
    Bytes reset = testing::TcpPacket(kFromPodA, Segment(kPodAIp, 40000, Frontend(0), kNoEndpointsPort, 0x14));
    TestRun(prog_, reset, 2 * WEIR_EVENTS_RING_BYTES / sizeof(weir_event), ifindex_);
  }

  // A flow nobody used before: a new source address and port.
  std::pair<std::string, uint16_t> NewSource() {
    uint32_t flow = flows_++;
    return {Ipv4Text(Ipv4(kPodAIp) + 1 + flow / 50000), (uint16_t)(1024 + flow % 50000)};
  }

  // Each call: one new source, `chain` Services in a row from a random one, each packet a new flow.
  double NewFlowChain() {
    uint32_t repeat = std::min(o_.chain, size_);
    double total = 0;
    for (int c = 0; c < o_.chain_calls; ++c) {
      auto [src, sport] = NewSource();
      uint32_t j = RandomService(), last = (j + repeat) % size_;
      RunOut r = TestRun(
          prog_, testing::TcpPacket(kRouted, Segment(src, sport, Frontend(j), Port(j), 0x02, kFreshTtl)),
          repeat, ifindex_);
      Bytes want = testing::TcpPacket(
          kRouted, Segment(src, sport, Frontend(last), Port(last), 0x02, kFreshTtl - repeat));
      if (r.retval != TC_ACT_REDIRECT || r.out != want) {
        Fail(absl::StrCat("new-flow chain: verdict ", r.retval, "\n", testing::Hex(r.out), "\nwant\n",
                          testing::Hex(want)));
      }
      total += r.duration_ns;
    }
    return total / o_.chain_calls;
  }

  // A new flow to a random Service: its first packet, single run.
  double NewFlowSingle() {
    auto [src, sport] = NewSource();
    uint32_t j = RandomService();
    RunOut r = TestRun(prog_, testing::TcpPacket(kFromPodA, Segment(src, sport, Frontend(j), Port(j), 0x02)),
                       1, ifindex_);
    if (r.retval != TC_ACT_REDIRECT) Fail(absl::StrCat("new flow verdict ", r.retval));
    return r.duration_ns;
  }

  struct Single {
    double empty, baseline, new_flow, new_flow_drained, established, floor_new_flow;
  };

  // Medians over single runs (repeat 1), minus the empty program's median, in ns.
  Single SingleRuns() {
    std::vector<double> empty, baseline, fresh, drained, established, floor;
    Bytes to_remote = testing::TcpPacket(kFromPodA, Segment(kPodAIp, 40000, kRemotePodIp, 8080, 0x10));
    const int floor_prog = bpf_program__fd(floor_->progs.floor_new_flow);
    const uint64_t first_floor_flow = FloorFlows();
    for (int c = 0; c < o_.single_calls; ++c) {
      empty.push_back(TestRun(empty_, to_remote, 1, ifindex_).duration_ns);
      RunOut b = TestRun(prog_, to_remote, 1, ifindex_);
      if (b.retval != TC_ACT_OK) Fail("baseline single run verdict");
      baseline.push_back(b.duration_ns);
      fresh.push_back(NewFlowSingle());
      // The same flow's next packet, and the floor's map work for a new flow, each on its own.
      const Bytes& known =
          established_[std::uniform_int_distribution<size_t>(0, established_.size() - 1)(rng_)].in;
      RunOut e = TestRun(prog_, known, 1, ifindex_);
      if (e.retval != TC_ACT_REDIRECT) Fail("established single run verdict");
      established.push_back(e.duration_ns);
      RunOut f = TestRun(floor_prog, to_remote, 1, ifindex_);
      if (f.retval != TC_ACT_OK) Fail("floor single run verdict");
      floor.push_back(f.duration_ns);
    }
    ForgetFloorFlows(first_floor_flow, FloorFlows());
    // The programs take a ring they found full as full for the rest of that tick (bpf/lib/events.h):
    // a reader's records start with the next tick. Waited for on the CPU: a sleep would hand it
    // and its caches to other work.
    ring_buffer__consume(ring_);
    SpinFor(20'000'000);
    for (int c = 0; c < o_.single_calls; ++c) {
      ring_buffer__consume(ring_);
      drained.push_back(NewFlowSingle());
    }
    FillEventsRing();
    double overhead = Median(empty);
    return {overhead,
            Median(baseline) - overhead,
            Median(fresh) - overhead,
            Median(drained) - overhead,
            Median(established) - overhead,
            Median(floor) - overhead};
  }

  const Options& o_;
  uint32_t size_;
  int ifindex_;
  int empty_;
  std::mt19937 rng_;
  std::unique_ptr<Datapath> dp_;
  int prog_ = -1;
  std::vector<InOut> established_;
  std::vector<InOut> masq_established_;
  uint32_t flows_ = 0;
  ring_buffer* ring_ = nullptr;
  lb_floor* floor_ = nullptr;
};

std::vector<uint32_t> ParseSizes(const std::string& text) {
  std::vector<uint32_t> sizes;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    uint32_t n = 0;
    if (!absl::SimpleAtoi(part, &n) || n == 0 || n > (1u << 20)) Fail(absl::StrCat("bad size: ", part));
    sizes.push_back(n);
  }
  return sizes;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto eq = arg.find('=');
    std::string key = arg.substr(0, eq), value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    auto number = [&](auto& out) {
      if (!absl::SimpleAtoi(value, &out)) Fail(absl::StrCat("bad value for ", key));
    };
    if (key == "--sizes")
      o.sizes = ParseSizes(value);
    else if (key == "--runs")
      number(o.runs);
    else if (key == "--calls")
      number(o.calls);
    else if (key == "--repeat")
      number(o.repeat);
    else if (key == "--chain")
      number(o.chain);
    else if (key == "--chain_calls")
      number(o.chain_calls);
    else if (key == "--single_calls")
      number(o.single_calls);
    else if (key == "--seed")
      number(o.seed);
    else if (key == "--cases")
      o.cases = absl::StrSplit(value, ',');
    else if (key == "--masquerade")
      o.masquerade = true;
    else {
      std::fprintf(
          stderr,
          "usage: %s [--sizes=1,1000,10000,100000] [--runs=15] [--calls=20] [--repeat=10000] [--chain=250]\n"
          "  [--chain_calls=10] [--single_calls=1000] [--seed=1]\n"
          "  "
          "[--cases=empty,baseline_remote,uplink_egress,udp_remote,baseline_local,lookup,established,new_"
          "flow,single,\n"
          "  floor_lookup,floor_pick,floor_insert,floor_new_flow,"
          "  masq_established] [--masquerade]\n"
          "Prints JSON: ns per packet, one value per run, per case and number of Services.\n",
          argv[0]);
      std::exit(2);
    }
  }
  if (o.repeat < 2 || o.chain < 1 || o.runs < 1 || o.calls < 1 || o.chain_calls < 1 || o.single_calls < 1) {
    Fail("repeat must be >= 2 and the other counts >= 1");
  }
  if (o.chain > kRoutedRepeat) {
    Fail(absl::StrCat("chain must be <= ", kRoutedRepeat,
                      ": each new flow is a routed hop, and the packet starts at TTL ", kFreshTtl));
  }
  return o;
}

int Main(int argc, char** argv) {
  Options options = ParseArgs(argc, argv);
  EnterPrivateNetns();
  int ifindex = if_nametoindex("pod0");
  if (ifindex == 0) Fail("no pod0");
  if (options.masquerade) Sh("ip route add default via 192.168.77.2");
  UniqueFd empty = LoadEmptyProgram();
  std::vector<std::string> entries;
  for (uint32_t size : options.sizes) {
    auto results = Bench(options, size, ifindex, empty.get()).Measure();
    std::vector<std::string> cases;
    for (const auto& [name, runs] : results) {
      cases.push_back(absl::StrCat("\"", name, "\": ", JsonList(runs)));
      if (name != "empty_single")
        Progress(absl::StrFormat("%u Services: %-22s p50 %7.1f ns", size, name, Median(runs)));
    }
    entries.push_back(absl::StrCat("\"", size, "\": {", absl::StrJoin(cases, ", "), "}"));
  }
  std::printf(
      "{\"repeat\": %u, \"calls\": %d, \"runs\": %d, \"chain\": %u, \"chain_calls\": %d, \"single_calls\": "
      "%d, "
      "\"sizes\": {%s}}\n",
      options.repeat, options.calls, options.runs, options.chain, options.chain_calls, options.single_calls,
      absl::StrJoin(entries, ", ").c_str());
  return 0;
}

}  // namespace
}  // namespace weir::bench

int main(int argc, char** argv) { return weir::bench::Main(argc, argv); }
