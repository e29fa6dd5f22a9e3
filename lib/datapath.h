// Loads weir's BPF programs and maps from the embedded skeletons. The agent pins them under the
// bpf root and attaches the node-level programs (uplinks, cgroup); tests load private, unpinned
// copies. Programs of different objects share one instance of every map.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/abi/constants.h"
#include "lib/errno_status.h"
#include "lib/ip.h"
#include "lib/netlink.h"
#include "lib/pin_layout.h"
#include "lib/unique_fd.h"
#include "lib/xdp_attach.h"

struct from_pod;
struct from_uplink;
struct from_uplink_xdp;
struct to_uplink;
struct sock_lb;

namespace weir {

struct DatapathOptions {
  // Empty: nothing is pinned or attached (tests).
  std::string bpf_root;
  MacAddress gateway_mac = WEIR_GATEWAY_MAC;
  // Source of NodePort traffic SNATed to backends on other nodes.
  std::optional<IpAddress> node_ipv4;
  std::optional<IpAddress> node_ipv6;
  uint32_t endpoints_max = WEIR_ENDPOINTS_DEFAULT_SIZE;
  uint32_t services_max = WEIR_SERVICES_DEFAULT_SIZE;
  uint32_t backends_max = WEIR_BACKENDS_DEFAULT_SIZE;
  uint32_t conntrack_max = WEIR_CONNTRACK_DEFAULT_SIZE;
  uint32_t maglev_table_size = WEIR_MAGLEV_DEFAULT_SIZE;
  // DSR dispatch: an IPv4 option carrying the frontend instead of IPIP encapsulation.
  bool dsr_ip_option = false;
  // Socket LB for the host's own sockets only, not pods'.
  bool socket_lb_host_only = false;
  // An event for every connect() and datagram the socket LB translates (refusals always have one).
  bool socket_lb_translation_events = false;
  // Egress masquerade of pods' flows out of the cluster (to the node address of the family).
  bool masquerade = false;
  uint32_t nonmasq_max = WEIR_NONMASQ_DEFAULT_SIZE;
  // NetworkPolicy: the tries allocate per entry, these are caps (bpf/abi/constants.h).
  uint32_t policy_peers_max = WEIR_POLICY_PEERS_DEFAULT_SIZE;
  uint32_t policy_rules_max = WEIR_POLICY_RULES_DEFAULT_SIZE;
  uint32_t policy_cidrs_max = WEIR_POLICY_CIDRS_DEFAULT_SIZE;
  uint32_t policy_conntrack_max = WEIR_POLICY_CT_DEFAULT_SIZE;
};

// Where the node-level programs go. Every one of these is a setting: tests point them at things
// they made (a veth in a lab namespace, a cgroup of their own), never at the machine's own.
struct DatapathAttachments {
  std::vector<std::string> uplinks;  // interface names in the agent's namespace
  std::string cgroup_path;           // cgroup v2 directory for socket LB; empty: no socket LB
  // XDP in front of the uplinks' tc program (the nodePortAcceleration setting).
  XdpMode xdp_mode = XdpMode::kDisabled;
};

// Owns a libbpf skeleton: destroys it exactly once, when its owner goes; moved, never copied.
struct SkeletonDestroyer {
  void operator()(from_pod* skeleton) const;
  void operator()(from_uplink* skeleton) const;
  void operator()(from_uplink_xdp* skeleton) const;
  void operator()(to_uplink* skeleton) const;
  void operator()(sock_lb* skeleton) const;
};
template <typename Skeleton>
using SkeletonOwner = std::unique_ptr<Skeleton, SkeletonDestroyer>;

// The maps every program shares (bpf/abi/constants.h names them).
enum class DatapathMap {
  kEndpoints,
  kMetrics,
  kServices,
  kBackendSlots,
  kBackends,
  kMaglev,
  kAffinity,
  kSockRevNat,
  kConntrack,
  kEvents,
  kNonMasquerade,
  kUplinks,
  kPolicyPeers,
  kPolicyHosts,
  kPolicyRules,
  kPolicyCidrs,
  kPolicyConntrack,
  kPolicyCounters,
};

// A pinned map whose definition differs from this agent's, on its way to a new map (datapath.cc).
struct MapMigration;

class Datapath {
 public:
  // Loads the programs. With a bpf root, maps already pinned there are reused (their contents
  // survive), missing ones are created and pinned, and the programs are pinned, replacing older ones
  // atomically; links pinned by earlier attachments are switched to the new programs. A pinned map
  // whose size, flags or layout differ from this agent's is migrated: its entries are copied
  // (converted where its layout changed) into a new map, the programs switch to the new map, and it
  // replaces the pin; a map whose entries cannot be carried over is refused before anything changed.
  static absl::StatusOr<std::unique_ptr<Datapath>> Load(const DatapathOptions& options);
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  // Attaches (or, when already attached by an earlier agent, updates) the node-level programs, and
  // makes the uplinks map name exactly these uplinks (masquerade applies to what leaves there).
  absl::Status Attach(const DatapathAttachments& attachments);

  // Until `until_ns` (CLOCK_MONOTONIC; 0 ends it), the programs drop TCP segments without SYN to a
  // frontend whose flow they do not know (bpf/lib/service_nat.h, held_at_upgrade): a migration sets
  // it around the switch of the links.
  void HoldUnknownTcpFlows(uint64_t until_ns);

  int from_pod_fd() const;
  int from_uplink_fd() const;
  // The uplink's XDP program for `mode` (native or generic: bpf/from_uplink_xdp.bpf.c says why they
  // differ).
  int from_uplink_xdp_fd(XdpMode mode) const;
  int to_uplink_fd() const;
  // Program fd of a socket hook by its short name: "connect4", "sendmsg6", "getpeername4", ...
  int sock_program_fd(const std::string& hook) const;
  // Owned by the datapath: valid while it lives.
  int map_fd(DatapathMap map) const;
  // What this load migrated, one line per pinned map ("migrated pinned map weir_ct: 262144 entries,
  // this agent is configured for 131072; 1200 entries copied, 3 more before the switch, 0 after
  // it") and one for the switch of the programs.
  const std::vector<std::string>& migrations() const { return migrations_; }
  // A typed map (lib/bpf_map.h) over one of the loaded maps, with an fd of its own.
  template <typename Map>
  absl::StatusOr<Map> OpenMap(DatapathMap map) const {
    UniqueFd fd(dup(map_fd(map)));
    if (!fd.valid()) return ErrnoStatus(errno, "duplicate a map's fd");
    return Map::FromFd(std::move(fd));
  }

 private:
  Datapath() = default;
  absl::Status PinAndSwitch(const PinLayout& layout, std::vector<MapMigration>& maps);
  // Destroyed in reverse: the socket programs first, the object whose maps the others share last.
  SkeletonOwner<from_pod> from_pod_;
  SkeletonOwner<from_uplink> from_uplink_;
  SkeletonOwner<from_uplink_xdp> from_uplink_xdp_;
  SkeletonOwner<to_uplink> to_uplink_;
  SkeletonOwner<sock_lb> sock_lb_;
  std::string bpf_root_;
  std::vector<std::string> migrations_;
};

// The socket hooks weir attaches, in attach order.
const std::vector<std::string>& SocketHooks();

}  // namespace weir
