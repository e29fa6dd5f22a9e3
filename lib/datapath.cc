#include "lib/datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "from_pod.skel.h"
#include "from_uplink.skel.h"
#include "from_uplink_xdp.skel.h"
#include "lib/errno_status.h"
#include "lib/map_adoption.h"
#include "lib/map_copy.h"
#include "lib/map_layouts.h"
#include "lib/masquerade_maps.h"
#include "lib/policy_maps.h"
#include "lib/tc_attach.h"
#include "lib/unique_fd.h"
#include "sock_lb.skel.h"
#include "to_uplink.skel.h"

namespace weir {

struct MapMigration {
  std::string name;
  std::string pin;
  bpf_map* map;  // this agent's, created unpinned by the load
  UntypedBpfMap pinned;
  MapShape from;
  MapShape to;
  AdoptionPlan plan;
  CopiedKeys copied;  // the old map's keys carried so far
};

namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;

absl::Status RequireBpfFs(const std::string& root) {
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", root, ": ", ec.message()));
  struct statfs fs {};
  if (statfs(root.c_str(), &fs) != 0) return ErrnoStatus(errno, absl::StrCat("statfs ", root));
  if (fs.f_type != kBpfFsMagic) {
    return absl::FailedPreconditionError(absl::StrCat(root, " is not on a bpf filesystem (mount -t bpf)"));
  }
  return absl::OkStatus();
}

// Pins under a temporary name, then renames over the old pin: readers never see no program.
absl::Status PinReplacing(int fd, const std::string& path) {
  std::string staging = path + "_staging";  // bpffs refuses names with a dot
  unlink(staging.c_str());
  if (bpf_obj_pin(fd, staging.c_str()) != 0) return ErrnoStatus(errno, absl::StrCat("pin at ", staging));
  if (rename(staging.c_str(), path.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("rename ", staging, " to ", path));
  }
  return absl::OkStatus();
}

void SetCommonRodata(volatile uint8_t* gateway_mac, const DatapathOptions& options) {
  for (int i = 0; i < 6; ++i) gateway_mac[i] = options.gateway_mac[i];
}

template <typename Rodata>
void SetNodeAddresses(Rodata* rodata, const DatapathOptions& options) {
  if (options.node_ipv4) std::memcpy((void*)&rodata->node_ipv4, options.node_ipv4->bytes().data(), 4);
  if (options.node_ipv6) std::memcpy((void*)rodata->node_ipv6, options.node_ipv6->bytes().data(), 16);
  rodata->maglev_table_size = options.maglev_table_size;
  rodata->dsr_ip_option = options.dsr_ip_option;
  rodata->masquerade = options.masquerade;
}

// Map sizes are settings: each is set on the skeleton's map before load, and a refusal (a size the
// kernel or libbpf cannot take) is the agent's error, not a map of the default size.
absl::Status SizeMaps(from_pod* pod, const DatapathOptions& options) {
  const struct {
    bpf_map* map;
    uint32_t max_entries;
  } sizes[] = {
      {pod->maps.WEIR_ENDPOINTS_MAP, options.endpoints_max},
      {pod->maps.WEIR_SERVICES_MAP, options.services_max},
      {pod->maps.WEIR_BACKENDS_MAP, options.backends_max},
      {pod->maps.WEIR_BACKEND_SLOTS_MAP, options.backends_max},
      {pod->maps.WEIR_CONNTRACK_MAP, options.conntrack_max},
      {pod->maps.WEIR_NONMASQ_MAP, options.nonmasq_max},
      {pod->maps.WEIR_POLICY_PEERS_MAP, options.policy_peers_max},
      {pod->maps.WEIR_POLICY_HOSTS_MAP, options.policy_peers_max},
      {pod->maps.WEIR_POLICY_RULES_MAP, options.policy_rules_max},
      {pod->maps.WEIR_POLICY_CIDRS_MAP, options.policy_cidrs_max},
      {pod->maps.WEIR_POLICY_CT_MAP, options.policy_conntrack_max},
      // One counter entry per endpoint.
      {pod->maps.WEIR_POLICY_COUNTERS_MAP, options.endpoints_max},
  };
  for (const auto& size : sizes) {
    if (int err = bpf_map__set_max_entries(size.map, size.max_entries); err) {
      return ErrnoStatus(-err, absl::StrCat("size map ", bpf_map__name(size.map), " to ", size.max_entries));
    }
  }
  bpf_map* maglev = pod->maps.WEIR_MAGLEV_MAP;
  if (int err = bpf_map__set_value_size(maglev, options.maglev_table_size * sizeof(uint32_t)); err) {
    return ErrnoStatus(-err, absl::StrCat("size the tables of ", bpf_map__name(maglev)));
  }
  return absl::OkStatus();
}

// Tests load private copies: no map of theirs may land in a bpffs.
void Unpin(bpf_object* object) {
  bpf_map* map;
  bpf_object__for_each_map(map, object) bpf_map__set_pin_path(map, nullptr);
}

// Makes `object` use the maps `owner` already created, so all programs see one state.
absl::Status ShareMaps(bpf_object* owner, bpf_object* object) {
  bpf_map* map;
  bpf_object__for_each_map(map, object) {
    bpf_map* owned = bpf_object__find_map_by_name(owner, bpf_map__name(map));
    if (owned == nullptr || bpf_map__fd(owned) < 0) continue;
    if (int err = bpf_map__reuse_fd(map, bpf_map__fd(owned)); err) {
      return ErrnoStatus(-err, absl::StrCat("share map ", bpf_map__name(map)));
    }
  }
  return absl::OkStatus();
}

// The setting of weir-agent's configuration a map's size comes from, for the error below.
const char* SizeSettingOf(const std::string& map_name) {
  if (map_name == WEIR_CONNTRACK_MAP_NAME) return "conntrackMax";
  if (map_name == WEIR_MAGLEV_MAP_NAME) return "maglevTableSize";
  if (map_name == WEIR_SERVICES_MAP_NAME) return "servicesMax";
  if (map_name == WEIR_BACKENDS_MAP_NAME || map_name == WEIR_BACKEND_SLOTS_MAP_NAME) return "backendsMax";
  if (map_name == WEIR_NONMASQ_MAP_NAME) return "nonMasqueradeCIDRsMax";
  if (map_name == WEIR_ENDPOINTS_MAP_NAME || map_name == WEIR_POLICY_COUNTERS_MAP_NAME) return "endpointsMax";
  return PolicyMapSizeSetting(map_name);
}

// libbpf refuses to reuse a pinned map whose definition differs from the object's (with a bare
// EINVAL). A map's size is fixed when it is created and the pinned maps outlive the agent, so a size
// changed between two agents (conntrackMax, maglevTableSize) or a layout changed between two builds
// leaves a pinned map this agent cannot use as it is. Each such map is planned for migration
// (lib/map_adoption.h) and left for libbpf to create anew, unpinned; one that cannot be carried
// over is refused, naming the map, the setting and what to do, before anything changed.
absl::Status PlanPinnedMaps(bpf_object* object, const PinnedLayouts& layouts,
                            std::vector<MapMigration>& migrations) {
  bpf_map* map;
  bpf_object__for_each_map(map, object) {
    const std::string name = bpf_map__name(map);
    const bool migrating = std::any_of(migrations.begin(), migrations.end(),
                                       [&](const MapMigration& m) { return m.name == name; });
    if (migrating) {
      // Shared from the object that creates it: libbpf must not put the old pin back in its place.
      bpf_map__set_pin_path(map, nullptr);
      continue;
    }
    if (bpf_map__pin_path(map) == nullptr || bpf_map__fd(map) >= 0) continue;  // not pinned, or shared
    const std::string pin = bpf_map__pin_path(map);  // libbpf's copy goes with set_pin_path below
    absl::StatusOr<UntypedBpfMap> pinned = UntypedBpfMap::OpenPinned(pin, std::nullopt, std::nullopt);
    if (absl::IsNotFound(pinned.status())) continue;  // none yet: libbpf creates and pins it
    if (!pinned.ok()) return pinned.status();
    absl::StatusOr<uint32_t> layout = layouts.Of(name);
    if (!layout.ok()) return layout.status();
    const MapShape from = ShapeOf(*pinned, *layout);
    const MapShape to{.type = bpf_map__type(map),
                      .key_size = bpf_map__key_size(map),
                      .value_size = bpf_map__value_size(map),
                      .max_entries = bpf_map__max_entries(map),
                      .flags = bpf_map__map_flags(map),
                      .layout = LayoutVersion(name)};
    absl::StatusOr<AdoptionPlan> plan = PlanAdoption(name, from, to, WeirMapMigrations());
    if (!plan.ok()) {
      const char* setting = SizeSettingOf(name);
      return absl::FailedPreconditionError(absl::StrCat(
          "pinned map ", pin, " cannot be migrated to this agent's definition: it was created with ",
          plan.status().message(), ". Run the build",
          setting ? absl::StrCat(" and ", setting) : std::string(),
          " the node was set up with, or move the node's pods off, remove ", pin,
          " and start the agent again (docs/install.md, \"Changing a map size\")"));
    }
    if (plan->adoption == Adoption::kReuse) continue;
    bpf_map__set_pin_path(map, nullptr);
    migrations.push_back(MapMigration{.name = name,
                                      .pin = pin,
                                      .map = map,
                                      .pinned = *std::move(pinned),
                                      .from = from,
                                      .to = to,
                                      .plan = *std::move(plan)});
  }
  return absl::OkStatus();
}

// Every pinned map's layout, for the next agent to migrate from.
absl::Status RecordLayouts(const PinnedLayouts& layouts, std::initializer_list<bpf_object*> objects,
                           const std::vector<MapMigration>& migrations) {
  std::set<std::string> names;
  for (bpf_object* object : objects) {
    bpf_map* map;
    bpf_object__for_each_map(map, object) {
      if (bpf_map__pin_path(map) != nullptr) names.insert(bpf_map__name(map));
    }
  }
  for (const MapMigration& migration : migrations) names.insert(migration.name);
  for (const std::string& name : names) {
    if (absl::Status status = layouts.Record(name, LayoutVersion(name)); !status.ok()) {
      return absl::Status(status.code(), absl::StrCat("record the layout of ", name, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

struct SockHook {
  const char* name;
  bpf_attach_type type;
};

const SockHook kSockHooks[] = {
    {"connect4", BPF_CGROUP_INET4_CONNECT},         {"connect6", BPF_CGROUP_INET6_CONNECT},
    {"sendmsg4", BPF_CGROUP_UDP4_SENDMSG},          {"sendmsg6", BPF_CGROUP_UDP6_SENDMSG},
    {"recvmsg4", BPF_CGROUP_UDP4_RECVMSG},          {"recvmsg6", BPF_CGROUP_UDP6_RECVMSG},
    {"getpeername4", BPF_CGROUP_INET4_GETPEERNAME}, {"getpeername6", BPF_CGROUP_INET6_GETPEERNAME},
};

// Makes the uplinks map hold exactly `ifindexes`: an interface no longer configured as an uplink
// must not keep masquerading what leaves through it.
absl::Status SyncUplinksMap(UniqueFd fd, const std::set<uint32_t>& ifindexes) {
  absl::StatusOr<UplinksMap> map = UplinksMap::FromFd(std::move(fd), WEIR_UPLINKS_MAP_NAME);
  if (!map.ok()) return map.status();
  absl::StatusOr<std::vector<UplinksMap::Entry>> present = map->List();
  if (!present.ok()) return present.status();
  for (const UplinksMap::Entry& entry : *present) {
    if (ifindexes.count(entry.key)) continue;
    if (absl::Status s = map->Delete(entry.key); !s.ok()) return s;
  }
  for (uint32_t ifindex : ifindexes) {
    if (absl::Status s = map->Update(ifindex, 0); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// The socket LB tells the host's own sockets apart by their namespace's cookie.
absl::StatusOr<uint64_t> CurrentNetnsCookie() {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  UniqueFd probe(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return ErrnoStatus(errno, "open a socket to read the namespace cookie");
  constexpr int kSoNetnsCookie = 71;  // SO_NETNS_COOKIE, newer than Debian 12's headers
  if (getsockopt(probe.get(), SOL_SOCKET, kSoNetnsCookie, &cookie, &len) != 0) {
    return ErrnoStatus(errno, "read the network namespace cookie");
  }
  return cookie;
}

}  // namespace

const std::vector<std::string>& SocketHooks() {
  static const std::vector<std::string> hooks = [] {
    std::vector<std::string> names;
    for (const SockHook& hook : kSockHooks) names.push_back(hook.name);
    return names;
  }();
  return hooks;
}

absl::StatusOr<std::unique_ptr<Datapath>> Datapath::Load(const DatapathOptions& options) {
  if (!weir_maglev_size_valid(options.maglev_table_size)) {
    return absl::InvalidArgumentError(absl::StrCat("Maglev table size ", options.maglev_table_size,
                                                   " is not a prime up to ", WEIR_MAGLEV_MAX_SIZE));
  }
  for (uint32_t size : {options.policy_peers_max, options.policy_rules_max, options.policy_cidrs_max,
                        options.policy_conntrack_max}) {
    if (size == 0) return absl::InvalidArgumentError("a NetworkPolicy map needs room for at least one entry");
  }
  if (options.nonmasq_max == 0) {
    return absl::InvalidArgumentError("the non-masquerade CIDR map needs room for at least one entry");
  }
  const bool pinned = !options.bpf_root.empty();
  if (pinned) {
    if (absl::Status status = RequireBpfFs(options.bpf_root); !status.ok()) return status;
  }
  DECLARE_LIBBPF_OPTS(bpf_object_open_opts, open_opts,
                      .pin_root_path = pinned ? options.bpf_root.c_str() : nullptr);
  std::unique_ptr<Datapath> datapath(new Datapath());
  datapath->bpf_root_ = options.bpf_root;
  std::optional<PinnedLayouts> layouts;
  if (pinned) {
    absl::StatusOr<PinnedLayouts> opened =
        PinnedLayouts::OpenOrCreate(PinLayout{options.bpf_root}.layouts_map());
    if (!opened.ok()) return opened.status();
    layouts.emplace(*std::move(opened));
  }
  std::vector<MapMigration> migrations;
  auto plan_pinned_maps = [&](bpf_object* object) {
    return layouts ? PlanPinnedMaps(object, *layouts, migrations) : absl::OkStatus();
  };

  datapath->from_pod_.reset(from_pod__open_opts(&open_opts));
  if (datapath->from_pod_ == nullptr) return ErrnoStatus(errno, "open from_pod");
  from_pod* pod = datapath->from_pod_.get();
  SetCommonRodata(pod->rodata->gateway_mac, options);
  SetNodeAddresses(pod->rodata, options);
  if (absl::Status s = SizeMaps(pod, options); !s.ok()) return s;
  if (!pinned) Unpin(pod->obj);
  if (absl::Status s = plan_pinned_maps(pod->obj); !s.ok()) return s;
  if (int err = from_pod__load(pod); err) return ErrnoStatus(-err, "load from_pod");

  datapath->from_uplink_.reset(from_uplink__open_opts(&open_opts));
  if (datapath->from_uplink_ == nullptr) return ErrnoStatus(errno, "open from_uplink");
  from_uplink* uplink = datapath->from_uplink_.get();
  SetCommonRodata(uplink->rodata->gateway_mac, options);
  SetNodeAddresses(uplink->rodata, options);
  if (!pinned) Unpin(uplink->obj);
  if (absl::Status s = ShareMaps(pod->obj, uplink->obj); !s.ok()) return s;
  if (absl::Status s = plan_pinned_maps(uplink->obj); !s.ok()) return s;
  if (int err = from_uplink__load(uplink); err) return ErrnoStatus(-err, "load from_uplink");

  // The same translation as from_uplink, at XDP: the same per-node constants but masquerade's.
  datapath->from_uplink_xdp_.reset(from_uplink_xdp__open_opts(&open_opts));
  if (datapath->from_uplink_xdp_ == nullptr) return ErrnoStatus(errno, "open from_uplink_xdp");
  from_uplink_xdp* uplink_xdp = datapath->from_uplink_xdp_.get();
  if (options.node_ipv4)
    std::memcpy((void*)&uplink_xdp->rodata->node_ipv4, options.node_ipv4->bytes().data(), 4);
  if (options.node_ipv6)
    std::memcpy((void*)uplink_xdp->rodata->node_ipv6, options.node_ipv6->bytes().data(), 16);
  uplink_xdp->rodata->maglev_table_size = options.maglev_table_size;
  uplink_xdp->rodata->dsr_ip_option = options.dsr_ip_option;
  if (!pinned) Unpin(uplink_xdp->obj);
  if (absl::Status s = ShareMaps(pod->obj, uplink_xdp->obj); !s.ok()) return s;
  if (absl::Status s = plan_pinned_maps(uplink_xdp->obj); !s.ok()) return s;
  if (int err = from_uplink_xdp__load(uplink_xdp); err) return ErrnoStatus(-err, "load from_uplink_xdp");

  // Reads only conntrack: no per-node constants.
  datapath->to_uplink_.reset(to_uplink__open_opts(&open_opts));
  if (datapath->to_uplink_ == nullptr) return ErrnoStatus(errno, "open to_uplink");
  to_uplink* uplink_egress = datapath->to_uplink_.get();
  if (!pinned) Unpin(uplink_egress->obj);
  if (absl::Status s = ShareMaps(pod->obj, uplink_egress->obj); !s.ok()) return s;
  if (absl::Status s = plan_pinned_maps(uplink_egress->obj); !s.ok()) return s;
  if (int err = to_uplink__load(uplink_egress); err) return ErrnoStatus(-err, "load to_uplink");

  // Only host_only compares namespaces; without it the cookie is never read.
  absl::StatusOr<uint64_t> netns_cookie = uint64_t{0};
  if (options.socket_lb_host_only) netns_cookie = CurrentNetnsCookie();
  if (!netns_cookie.ok()) return netns_cookie.status();
  datapath->sock_lb_.reset(sock_lb__open_opts(&open_opts));
  if (datapath->sock_lb_ == nullptr) return ErrnoStatus(errno, "open sock_lb");
  sock_lb* sock = datapath->sock_lb_.get();
  sock->rodata->maglev_table_size = options.maglev_table_size;
  sock->rodata->host_only = options.socket_lb_host_only;
  sock->rodata->host_netns_cookie = *netns_cookie;
  sock->rodata->translation_events = options.socket_lb_translation_events;
  if (!pinned) Unpin(sock->obj);
  if (absl::Status s = ShareMaps(pod->obj, sock->obj); !s.ok()) return s;
  if (absl::Status s = plan_pinned_maps(sock->obj); !s.ok()) return s;
  if (int err = sock_lb__load(sock); err) return ErrnoStatus(-err, "load sock_lb");

  if (pinned) {
    if (absl::Status status = datapath->PinAndSwitch(PinLayout{options.bpf_root}, migrations); !status.ok())
      return status;
    if (absl::Status status = RecordLayouts(
            *layouts, {pod->obj, uplink->obj, uplink_xdp->obj, uplink_egress->obj, sock->obj}, migrations);
        !status.ok())
      return status;
  }
  return datapath;
}

// The longest an upgrade holds back unknown TCP flows should its agent die before it ends the hold:
// short enough for a retransmit to pass, long enough for any copy of conntrack.
constexpr uint64_t kUpgradeHoldBoundNs = 5'000'000'000;

uint64_t MonotonicNowNs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(now.tv_nsec);
}

// Copies every migrated map's entries with `mode`; `counts` gets each map's.
absl::Status CopyMigrated(std::vector<MapMigration>& maps, const std::vector<UntypedBpfMap>& created,
                          CopyMode mode, std::vector<CopyCounts>& counts) {
  counts.assign(maps.size(), {});
  for (size_t i = 0; i < maps.size(); ++i) {
    MapMigration& migration = maps[i];
    absl::StatusOr<CopyCounts> copied = CopyEntries(migration.pinned, migration.from, created[i],
                                                    migration.to, migration.plan, mode, migration.copied);
    if (!copied.ok()) {
      return absl::Status(copied.status().code(),
                          absl::StrCat("migrate pinned map ", migration.pin, " (", migration.plan.change,
                                       "): ", copied.status().message()));
    }
    counts[i] = *copied;
  }
  return absl::OkStatus();
}

// The order of a migration: the entries are copied while the old programs still run on the old
// maps, and the keys made since copied just before the switch; every attachment (pods, uplinks,
// socket hooks) is switched to the new programs, the links opened beforehand and updated back to
// back, each atomically; the keys the old programs made since the second copy follow at once
// (lib/map_copy.h, CopyMode::kNew: over what a new program made for them); then the new maps
// replace the pins. A failed copy before the switch changes nothing on the node.
absl::Status Datapath::PinAndSwitch(const PinLayout& layout, std::vector<MapMigration>& maps) {
  std::error_code ec;
  for (const std::string& dir : {layout.programs_dir(), layout.pod_links_dir(), layout.uplink_links_dir(),
                                 layout.uplink_egress_links_dir(), layout.uplink_xdp_links_dir("native"),
                                 layout.uplink_xdp_links_dir("generic"), layout.cgroup_links_dir()}) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("create ", dir, ": ", ec.message()));
  }
  std::vector<UntypedBpfMap> created;
  for (MapMigration& migration : maps) {
    absl::StatusOr<UntypedBpfMap> to = UntypedBpfMap::FromFd(UniqueFd(dup(bpf_map__fd(migration.map))),
                                                             migration.name, std::nullopt, std::nullopt);
    if (!to.ok()) return to.status();
    created.push_back(*std::move(to));
  }
  std::vector<CopyCounts> copied, caught_up, late;
  if (absl::Status s = CopyMigrated(maps, created, CopyMode::kAll, copied); !s.ok()) return s;

  absl::Status result;
  result.Update(PinReplacing(from_pod_fd(), layout.from_pod_program()));
  result.Update(PinReplacing(from_uplink_fd(), layout.program("from_uplink")));
  result.Update(PinReplacing(from_uplink_xdp_fd(XdpMode::kNative), layout.program("from_uplink_xdp")));
  result.Update(
      PinReplacing(from_uplink_xdp_fd(XdpMode::kGeneric), layout.program("from_uplink_xdp_generic")));
  result.Update(PinReplacing(to_uplink_fd(), layout.program("to_uplink")));
  for (const SockHook& hook : kSockHooks) {
    result.Update(PinReplacing(sock_program_fd(hook.name), layout.program(absl::StrCat("sock_", hook.name))));
  }
  if (!result.ok()) return result;
  // Pods, uplinks and socket hooks attached by an earlier agent switch to the new programs. The
  // socket hooks here rather than at Attach: no program may keep a migrated map's old copy.
  std::vector<LinkSwitch> links;
  result.Update(OpenPinnedLinks(layout.pod_links_dir(), from_pod_fd(), links));
  result.Update(OpenPinnedLinks(layout.uplink_links_dir(), from_uplink_fd(), links));
  result.Update(OpenPinnedLinks(layout.uplink_egress_links_dir(), to_uplink_fd(), links));
  for (XdpMode mode : {XdpMode::kNative, XdpMode::kGeneric}) {
    result.Update(
        OpenPinnedLinks(layout.uplink_xdp_links_dir(XdpModeName(mode)), from_uplink_xdp_fd(mode), links));
  }
  for (const SockHook& hook : kSockHooks) {
    std::string path = layout.cgroup_links_dir() + "/" + hook.name;
    UniqueFd link(bpf_obj_get(path.c_str()));
    if (link.valid()) links.push_back({std::move(link), sock_program_fd(hook.name), std::move(path)});
  }
  if (!result.ok()) return result;
  if (absl::Status s = CopyMigrated(maps, created, CopyMode::kNew, caught_up); !s.ok()) return s;
  // A flow the old programs open between the copy above and the one after the switch is unknown to
  // the new programs until that copy: its next segments are held back (dropped, retransmitted) rather
  // than balanced anew. The bound only matters if this agent dies in between.
  const bool moves_conntrack = std::any_of(maps.begin(), maps.end(), [](const MapMigration& migration) {
    return migration.name == "weir_ct" && migration.plan.adoption != Adoption::kRecreate;
  });
  if (moves_conntrack) HoldUnknownTcpFlows(MonotonicNowNs() + kUpgradeHoldBoundNs);
  const auto switch_start = std::chrono::steady_clock::now();
  result.Update(SwitchLinks(links));
  const auto switched = std::chrono::steady_clock::now();
  absl::Status late_copy = CopyMigrated(maps, created, CopyMode::kNew, late);
  if (moves_conntrack) HoldUnknownTcpFlows(0);
  if (!late_copy.ok()) return late_copy;
  const auto followed = std::chrono::steady_clock::now();
  if (!result.ok()) return result;

  for (size_t i = 0; i < maps.size(); ++i) {
    const MapMigration& migration = maps[i];
    if (absl::Status pinned = PinReplacing(created[i].fd(), migration.pin); !pinned.ok()) return pinned;
    std::string line =
        absl::StrCat("migrated pinned map ", migration.name, ": ", migration.plan.change, "; ");
    if (migration.plan.adoption == Adoption::kRecreate) {
      absl::StrAppend(&line, "started empty");
    } else {
      absl::StrAppend(&line, copied[i].written, " entries copied, ", caught_up[i].written,
                      " more before the switch, ", late[i].written, " after it");
      const uint64_t dropped = copied[i].dropped + caught_up[i].dropped + late[i].dropped;
      if (dropped > 0) absl::StrAppend(&line, ", ", dropped, " without an equivalent dropped");
    }
    migrations_.push_back(std::move(line));
  }
  if (!maps.empty()) {
    using std::chrono::duration;
    migrations_.push_back(absl::StrFormat(
        "switched %d links to the migrated maps in %.0f us; the entries made meanwhile followed in %.1f ms",
        links.size(), duration<double, std::micro>(switched - switch_start).count(),
        duration<double, std::milli>(followed - switched).count()));
    // A pod the CNI plugin attached to the old program while the maps moved.
    result.Update(UpdatePinnedLinks(layout.pod_links_dir(), from_pod_fd()));
  }
  return result;
}

void Datapath::HoldUnknownTcpFlows(uint64_t until_ns) {
  from_pod_->bss->upgrade_hold_until_ns = until_ns;
  from_uplink_->bss->upgrade_hold_until_ns = until_ns;
  to_uplink_->bss->upgrade_hold_until_ns = until_ns;
  from_uplink_xdp_->bss->upgrade_hold_until_ns = until_ns;
}

absl::Status Datapath::Attach(const DatapathAttachments& attachments) {
  if (bpf_root_.empty())
    return absl::FailedPreconditionError("attachments need a bpf root to pin their links");
  PinLayout layout{bpf_root_};
  absl::Status result;
  std::set<uint32_t> uplink_ifindexes;
  for (const std::string& uplink : attachments.uplinks) {
    unsigned ifindex = if_nametoindex(uplink.c_str());
    if (ifindex == 0) {
      result.Update(absl::NotFoundError(absl::StrCat("uplink ", uplink, " not found")));
      continue;
    }
    uplink_ifindexes.insert(ifindex);
    // Each direction on its own: an uplink attached by an agent older than the egress program
    // gets that one now. Pinned links were switched to the new programs at load.
    std::string pin = layout.uplink_links_dir() + "/" + uplink;
    if (access(pin.c_str(), F_OK) != 0) {
      result.Update(AttachTc(static_cast<int>(ifindex), TcDirection::kIngress, from_uplink_fd(), pin));
    }
    std::string egress_pin = layout.uplink_egress_links_dir() + "/" + uplink;
    if (access(egress_pin.c_str(), F_OK) != 0) {
      result.Update(AttachTc(static_cast<int>(ifindex), TcDirection::kEgress, to_uplink_fd(), egress_pin));
    }
    // XDP only accelerates what tc does anyway: a link of another mode goes first, whichever it is
    // (the kernel takes one XDP program per device, of one mode), and meanwhile tc handles everything.
    for (XdpMode mode : {XdpMode::kNative, XdpMode::kGeneric}) {
      if (mode != attachments.xdp_mode) {
        result.Update(DetachXdp(layout.uplink_xdp_links_dir(XdpModeName(mode)) + "/" + uplink));
      }
    }
    if (attachments.xdp_mode != XdpMode::kDisabled) {
      std::string xdp_pin = layout.uplink_xdp_links_dir(XdpModeName(attachments.xdp_mode)) + "/" + uplink;
      if (access(xdp_pin.c_str(), F_OK) != 0) {
        result.Update(AttachXdp(static_cast<int>(ifindex), attachments.xdp_mode,
                                from_uplink_xdp_fd(attachments.xdp_mode), xdp_pin));
      }
    }
  }
  result.Update(SyncUplinksMap(UniqueFd(dup(map_fd(DatapathMap::kUplinks))), uplink_ifindexes));
  if (attachments.cgroup_path.empty()) return result;

  UniqueFd cgroup(open(attachments.cgroup_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup.valid()) return ErrnoStatus(errno, absl::StrCat("open cgroup ", attachments.cgroup_path));
  for (const SockHook& hook : kSockHooks) {
    std::string pin = layout.cgroup_links_dir() + "/" + hook.name;
    UniqueFd existing(bpf_obj_get(pin.c_str()));
    if (existing.valid()) {
      if (bpf_link_update(existing.get(), sock_program_fd(hook.name), nullptr) != 0) {
        result.Update(ErrnoStatus(errno, absl::StrCat("update socket hook ", hook.name)));
      }
      continue;
    }
    UniqueFd link(bpf_link_create(sock_program_fd(hook.name), cgroup.get(), hook.type, nullptr));
    if (!link.valid()) {
      result.Update(ErrnoStatus(
          errno, absl::StrCat("attach socket hook ", hook.name, " to ", attachments.cgroup_path)));
      continue;
    }
    if (bpf_obj_pin(link.get(), pin.c_str()) != 0)
      result.Update(ErrnoStatus(errno, absl::StrCat("pin ", pin)));
  }
  return result;
}

void SkeletonDestroyer::operator()(from_pod* skeleton) const { from_pod__destroy(skeleton); }
void SkeletonDestroyer::operator()(from_uplink* skeleton) const { from_uplink__destroy(skeleton); }
void SkeletonDestroyer::operator()(from_uplink_xdp* skeleton) const { from_uplink_xdp__destroy(skeleton); }
void SkeletonDestroyer::operator()(to_uplink* skeleton) const { to_uplink__destroy(skeleton); }
void SkeletonDestroyer::operator()(sock_lb* skeleton) const { sock_lb__destroy(skeleton); }

int Datapath::from_pod_fd() const { return bpf_program__fd(from_pod_->progs.from_pod); }
int Datapath::from_uplink_fd() const { return bpf_program__fd(from_uplink_->progs.from_uplink); }
int Datapath::from_uplink_xdp_fd(XdpMode mode) const {
  return bpf_program__fd(mode == XdpMode::kGeneric ? from_uplink_xdp_->progs.from_uplink_xdp_generic
                                                   : from_uplink_xdp_->progs.from_uplink_xdp);
}
int Datapath::to_uplink_fd() const { return bpf_program__fd(to_uplink_->progs.to_uplink); }
int Datapath::sock_program_fd(const std::string& hook) const {
  bpf_program* program = bpf_object__find_program_by_name(sock_lb_->obj, ("sock_" + hook).c_str());
  return program ? bpf_program__fd(program) : -1;
}
// from_pod's object creates every map; the other objects reuse them (ShareMaps).
int Datapath::map_fd(DatapathMap map) const {
  const auto& maps = from_pod_->maps;
  switch (map) {
    case DatapathMap::kEndpoints: return bpf_map__fd(maps.WEIR_ENDPOINTS_MAP);
    case DatapathMap::kMetrics: return bpf_map__fd(maps.WEIR_METRICS_MAP);
    case DatapathMap::kServices: return bpf_map__fd(maps.WEIR_SERVICES_MAP);
    case DatapathMap::kBackendSlots: return bpf_map__fd(maps.WEIR_BACKEND_SLOTS_MAP);
    case DatapathMap::kBackends: return bpf_map__fd(maps.WEIR_BACKENDS_MAP);
    case DatapathMap::kMaglev: return bpf_map__fd(maps.WEIR_MAGLEV_MAP);
    case DatapathMap::kAffinity: return bpf_map__fd(maps.WEIR_AFFINITY_MAP);
    case DatapathMap::kSockRevNat: return bpf_map__fd(maps.WEIR_SOCK_REVNAT_MAP);
    case DatapathMap::kConntrack: return bpf_map__fd(maps.WEIR_CONNTRACK_MAP);
    case DatapathMap::kEvents: return bpf_map__fd(maps.WEIR_EVENTS_MAP);
    case DatapathMap::kNonMasquerade: return bpf_map__fd(maps.WEIR_NONMASQ_MAP);
    case DatapathMap::kUplinks: return bpf_map__fd(maps.WEIR_UPLINKS_MAP);
    case DatapathMap::kPolicyPeers: return bpf_map__fd(maps.WEIR_POLICY_PEERS_MAP);
    case DatapathMap::kPolicyHosts: return bpf_map__fd(maps.WEIR_POLICY_HOSTS_MAP);
    case DatapathMap::kPolicyRules: return bpf_map__fd(maps.WEIR_POLICY_RULES_MAP);
    case DatapathMap::kPolicyCidrs: return bpf_map__fd(maps.WEIR_POLICY_CIDRS_MAP);
    case DatapathMap::kPolicyConntrack: return bpf_map__fd(maps.WEIR_POLICY_CT_MAP);
    case DatapathMap::kPolicyCounters: return bpf_map__fd(maps.WEIR_POLICY_COUNTERS_MAP);
  }
  return -1;
}

}  // namespace weir
