#include "proxy/weirctl/status_command.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bpf/abi/conntrack.h"
#include "bpf/abi/endpoint.h"
#include "bpf/abi/service.h"
#include "lib/bpf_map.h"
#include "lib/errno_status.h"
#include "lib/unique_fd.h"
#include "proxy/weirctl/format.h"
#include "proxy/weirctl/service_directory.h"

namespace weir::weirctl {
namespace {

// Newer than Debian 12's UAPI headers; the kernel's values are stable ABI.
constexpr uint32_t kLinkTypeTcx = 11;
constexpr uint32_t kAttachTcxIngress = 46;
constexpr uint32_t kAttachTcxEgress = 47;

uint64_t ClockNs(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(now.tv_nsec);
}

std::string ProgramTypeName(uint32_t type) {
  const char* name = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(type));
  return name ? name : absl::StrCat("type-", type);
}

std::string MapTypeName(uint32_t type) {
  const char* name = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type));
  return name ? name : absl::StrCat("type-", type);
}

std::string LinkTypeName(uint32_t type) {
  if (type == kLinkTypeTcx) return "tcx";
  const char* name = libbpf_bpf_link_type_str(static_cast<bpf_link_type>(type));
  return name ? name : absl::StrCat("type-", type);
}

std::string AttachTypeName(uint32_t type) {
  if (type == kAttachTcxIngress) return "tcx_ingress";
  if (type == kAttachTcxEgress) return "tcx_egress";
  const char* name = libbpf_bpf_attach_type_str(static_cast<bpf_attach_type>(type));
  return name ? name : absl::StrCat("attach-", type);
}

// Pinned objects directly in `dir`, by name, sorted.
std::vector<std::string> PinsIn(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_directory(ec)) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A ring's producer minus consumer position, read from the pages the kernel maps for readers.
std::optional<uint64_t> RingPendingBytes(int fd) {
  const long page = sysconf(_SC_PAGESIZE);
  void* consumer = mmap(nullptr, page, PROT_READ, MAP_SHARED, fd, 0);
  if (consumer == MAP_FAILED) return std::nullopt;
  void* producer = mmap(nullptr, page, PROT_READ, MAP_SHARED, fd, page);
  if (producer == MAP_FAILED) {
    munmap(consumer, page);
    return std::nullopt;
  }
  const uint64_t produced = __atomic_load_n(static_cast<const uint64_t*>(producer), __ATOMIC_ACQUIRE);
  const uint64_t consumed = __atomic_load_n(static_cast<const uint64_t*>(consumer), __ATOMIC_ACQUIRE);
  munmap(producer, page);
  munmap(consumer, page);
  return produced > consumed ? produced - consumed : 0;
}

void CollectMaps(const PinLayout& layout, StatusReport& report) {
  for (const std::string& name : PinsIn(layout.root)) {
    const std::string path = layout.map(name.c_str());
    UniqueFd fd(bpf_obj_get(path.c_str()));
    if (!fd.valid()) {
      report.errors.push_back(absl::StrCat("open ", path, ": ", strerror(errno)));
      continue;
    }
    bpf_map_info info{};
    uint32_t length = sizeof(info);
    // Only maps are pinned directly in the root (programs and links live in subdirectories).
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0) {
      report.errors.push_back(absl::StrCat("inspect ", path, ": ", strerror(errno)));
      continue;
    }
    MapStatus map{.name = name,
                  .id = info.id,
                  .type = MapTypeName(info.type),
                  .capacity = info.max_entries,
                  .key_size = info.key_size,
                  .value_size = info.value_size};
    switch (info.type) {
      case BPF_MAP_TYPE_ARRAY:
      case BPF_MAP_TYPE_PERCPU_ARRAY: break;
      case BPF_MAP_TYPE_RINGBUF: map.pending_bytes = RingPendingBytes(fd.get()); break;
      default: {
        // In batches where the map allows: a walk key by key restarts when conntrack churns.
        auto typeless = UntypedBpfMap::FromFd(std::move(fd), name, std::nullopt, std::nullopt);
        absl::StatusOr<uint64_t> count = typeless.ok() ? typeless->Count() : typeless.status();
        if (count.ok()) {
          map.entries = *count;
        } else {
          report.errors.push_back(absl::StrCat(name, ": ", count.status().message()));
        }
      }
    }
    report.maps.push_back(map);
  }
}

void CollectPrograms(const PinLayout& layout, StatusReport& report) {
  // Program load times count from boot.
  const int64_t boot_to_unix =
      static_cast<int64_t>(ClockNs(CLOCK_REALTIME)) - static_cast<int64_t>(ClockNs(CLOCK_BOOTTIME));
  for (const std::string& name : PinsIn(layout.programs_dir())) {
    const std::string path = layout.program(name);
    UniqueFd fd(bpf_obj_get(path.c_str()));
    bpf_prog_info info{};
    uint32_t length = sizeof(info);
    if (!fd.valid() || bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0) {
      report.errors.push_back(absl::StrCat("open ", path, ": ", strerror(errno)));
      continue;
    }
    std::string tag;
    for (uint8_t byte : info.tag) absl::StrAppend(&tag, absl::Hex(byte, absl::kZeroPad2));
    report.programs.push_back(
        {.name = name,
         .id = info.id,
         .type = ProgramTypeName(info.type),
         .tag = tag,
         .loaded_unix_ns = static_cast<uint64_t>(static_cast<int64_t>(info.load_time) + boot_to_unix)});
  }
}

void CollectLinks(const PinLayout& layout, StatusReport& report) {
  std::map<uint32_t, std::string> program_names;
  for (const ProgramStatus& program : report.programs) program_names[program.id] = program.name;
  uint64_t socket_cgroup_id = 0;
  if (report.agent && !report.agent->cgroup_path.empty()) {
    struct stat st {};
    if (stat(report.agent->cgroup_path.c_str(), &st) == 0)
      socket_cgroup_id = st.st_ino;  // a cgroup's id is its inode
  }
  for (const char* group : {"uplinks", "uplinks-egress", "cgroup", "pods"}) {
    const std::string dir = absl::StrCat(layout.links_dir(), "/", group);
    for (const std::string& name : PinsIn(dir)) {
      const std::string path = absl::StrCat(dir, "/", name);
      UniqueFd fd(bpf_obj_get(path.c_str()));
      bpf_link_info info{};
      uint32_t length = sizeof(info);
      if (!fd.valid() || bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0) {
        report.errors.push_back(absl::StrCat("open ", path, ": ", strerror(errno)));
        continue;
      }
      LinkStatus link{.pin = absl::StrCat(group, "/", name),
                      .group = group,
                      .id = info.id,
                      .type = LinkTypeName(info.type),
                      .program_id = info.prog_id,
                      .attached = true};
      if (auto it = program_names.find(info.prog_id); it != program_names.end()) link.program = it->second;
      if (info.type == kLinkTypeTcx) {
        // tcx's {ifindex, attach_type} has the layout of netns's {netns_ino, attach_type}.
        uint32_t fields[2];
        std::memcpy(fields, &info.netns, sizeof(fields));
        link.ifindex = fields[0];
        link.attach_type = AttachTypeName(fields[1]);
        link.attached = link.ifindex != 0;  // the kernel reports 0 once the device is gone
        char ifname[IF_NAMESIZE] = {};
        if (link.ifindex != 0 && if_indextoname(link.ifindex, ifname)) link.interface = ifname;
      } else if (info.type == BPF_LINK_TYPE_CGROUP) {
        link.cgroup_id = info.cgroup.cgroup_id;
        link.attach_type = AttachTypeName(info.cgroup.attach_type);
        link.attached = link.cgroup_id != 0;
        if (link.cgroup_id != 0 && link.cgroup_id == socket_cgroup_id)
          link.cgroup = report.agent->cgroup_path;
      }
      report.links.push_back(link);
    }
  }
}

const MapStatus* FindMap(const StatusReport& report, const char* name) {
  for (const MapStatus& map : report.maps) {
    if (map.name == name) return &map;
  }
  return nullptr;
}

std::optional<uint64_t> EntriesOf(const StatusReport& report, const char* name) {
  const MapStatus* map = FindMap(report, name);
  return map ? map->entries : std::nullopt;
}

std::string TimeAndAge(uint64_t unix_ns, uint64_t now_unix_ns) {
  if (unix_ns == 0) return "never";
  return absl::StrCat(FormatUnixTime(unix_ns).substr(0, 19), "Z (", SecondsSince(unix_ns, now_unix_ns),
                      "s ago)");
}

std::string OnOff(bool on) { return on ? "on" : "off"; }

std::string CountText(std::optional<uint64_t> count) { return count ? absl::StrCat(*count) : "?"; }

std::string LinkTarget(const LinkStatus& link) {
  if (!link.attached) return absl::StrCat(link.attach_type, " (detached)");
  if (link.type == "tcx") {
    return absl::StrCat(link.attach_type, " ", link.interface.empty() ? "ifindex" : link.interface, " (",
                        link.ifindex, ")");
  }
  if (link.type == "cgroup") {
    return absl::StrCat(link.attach_type, " ",
                        link.cgroup.empty() ? absl::StrCat("cgroup ", link.cgroup_id) : link.cgroup);
  }
  return link.attach_type;
}

std::string RenderTable(const StatusReport& report) {
  std::string text;
  if (report.agent) {
    const AgentInfo& agent = *report.agent;
    Table facts({"AGENT", ""});
    facts.Add(
        {"version", absl::StrCat(agent.version, " on node ", agent.node_name.empty() ? "-" : agent.node_name,
                                 ", pid ", agent.pid, ", source ", SyncSourceName(agent.source))});
    facts.Add({"started", TimeAndAge(agent.started_unix_ns, report.now_unix_ns)});
    facts.Add({"last sync", TimeAndAge(agent.last_sync_unix_ns, report.now_unix_ns)});
    facts.Add({"last complete sync", TimeAndAge(agent.last_complete_sync_unix_ns, report.now_unix_ns)});
    facts.Add({"syncs", absl::StrCat(agent.syncs, " (", agent.sync_errors, " failed, last failure ",
                                     TimeAndAge(agent.last_sync_error_unix_ns, report.now_unix_ns), ")")});
    facts.Add(
        {"load balancing",
         absl::StrCat("lb-mode ", agent.lb_mode, ", dsr-dispatch ", agent.dsr_dispatch, ", maglev ",
                      agent.maglev ? absl::StrCat("on (table ", agent.maglev_table_size, ")") : "off")});
    facts.Add({"socket LB", agent.cgroup_path.empty()
                                ? "off"
                                : absl::StrCat(agent.cgroup_path,
                                               agent.socket_lb_host_only ? " (host sockets only)" : "")});
    facts.Add({"masquerade", OnOff(agent.masquerade)});
    facts.Add({"NodePort acceleration", agent.node_port_acceleration == "disabled"
                                            ? "off"
                                            : absl::StrCat("XDP ", agent.node_port_acceleration)});
    absl::StrAppend(&text, facts.Render());
  } else {
    absl::StrAppend(&text, "AGENT\nno agent facts: ", report.agent_missing, "\n");
  }
  absl::StrAppend(&text, "\n");

  Table counts({"DATAPATH", ""});
  counts.Add({"Services", report.services ? absl::StrCat(*report.services) : "? (no names published)"});
  counts.Add({"frontends", CountText(EntriesOf(report, WEIR_SERVICES_MAP_NAME))});
  counts.Add({"backends", CountText(EntriesOf(report, WEIR_BACKENDS_MAP_NAME))});
  counts.Add({"endpoints", CountText(EntriesOf(report, WEIR_ENDPOINTS_MAP_NAME))});
  counts.Add({"conntrack entries", CountText(EntriesOf(report, WEIR_CONNTRACK_MAP_NAME))});
  absl::StrAppend(&text, counts.Render(), "\n");

  Table programs({"PROGRAM", "ID", "TYPE", "TAG", "LOADED"});
  programs.AlignRight({1});
  for (const ProgramStatus& program : report.programs) {
    programs.Add({program.name, absl::StrCat(program.id), program.type, program.tag,
                  TimeAndAge(program.loaded_unix_ns, report.now_unix_ns)});
  }
  absl::StrAppend(&text, programs.Render(), "\n");

  // Uplink and cgroup links one by one; pods' links (one per pod) summed up.
  Table links({"LINK", "PROGRAM", "ATTACHED TO"});
  size_t pod_links = 0, pod_attached = 0;
  std::set<std::string> pod_programs;
  for (const LinkStatus& link : report.links) {
    const std::string program =
        link.program.empty() ? absl::StrCat("id ", link.program_id, " (not pinned)") : link.program;
    if (link.group == "pods") {
      ++pod_links;
      pod_attached += link.attached ? 1 : 0;
      pod_programs.insert(program);
      continue;
    }
    links.Add({link.pin, program, LinkTarget(link)});
  }
  links.Add({"pods/*", pod_programs.empty() ? "-" : absl::StrJoin(pod_programs, ","),
             absl::StrCat(pod_links, " pod interfaces, ", pod_links - pod_attached, " detached")});
  absl::StrAppend(&text, links.Render(), "\n");

  Table maps({"MAP", "TYPE", "ENTRIES", "CAPACITY", "FILL"});
  maps.AlignRight({2, 3, 4});
  for (const MapStatus& map : report.maps) {
    std::string entries = map.entries ? absl::StrCat(*map.entries) : "-";
    std::string fill = "-";
    if (map.entries && map.capacity > 0)
      fill = absl::StrFormat("%.1f%%", 100.0 * static_cast<double>(*map.entries) / map.capacity);
    if (map.pending_bytes) {
      entries = absl::StrCat(*map.pending_bytes, " B unread");
      if (map.capacity > 0)
        fill = absl::StrFormat("%.1f%%", 100.0 * static_cast<double>(*map.pending_bytes) / map.capacity);
    }
    maps.Add({map.name, map.type, entries, absl::StrCat(map.capacity), fill});
  }
  absl::StrAppend(&text, maps.Render());
  for (const std::string& error : report.errors) absl::StrAppend(&text, "error: ", error, "\n");
  return text;
}

void WriteTime(Json& json, const char* key, uint64_t unix_ns) {
  json.Key(key);
  json.OptionalString(unix_ns == 0 ? std::nullopt : std::optional(FormatUnixTime(unix_ns)));
}

std::string RenderJson(const StatusReport& report) {
  Json json;
  json.StartObject();
  json.Key("agent");
  if (report.agent) {
    const AgentInfo& agent = *report.agent;
    json.StartObject();
    json.Key("version");
    json.String(agent.version);
    json.Key("node");
    json.String(agent.node_name);
    json.Key("pid");
    json.Uint(agent.pid);
    json.Key("source");
    json.String(SyncSourceName(agent.source));
    WriteTime(json, "started", agent.started_unix_ns);
    WriteTime(json, "last_sync", agent.last_sync_unix_ns);
    json.Key("last_sync_age_seconds");
    json.OptionalUint(agent.last_sync_unix_ns == 0
                          ? std::nullopt
                          : std::optional(SecondsSince(agent.last_sync_unix_ns, report.now_unix_ns)));
    WriteTime(json, "last_complete_sync", agent.last_complete_sync_unix_ns);
    WriteTime(json, "last_sync_error", agent.last_sync_error_unix_ns);
    json.Key("syncs");
    json.Uint(agent.syncs);
    json.Key("sync_errors");
    json.Uint(agent.sync_errors);
    json.Key("lb_mode");
    json.String(agent.lb_mode);
    json.Key("dsr_dispatch");
    json.String(agent.dsr_dispatch);
    json.Key("maglev");
    json.Bool(agent.maglev);
    json.Key("maglev_table_size");
    json.Uint(agent.maglev_table_size);
    json.Key("masquerade");
    json.Bool(agent.masquerade);
    json.Key("node_port_acceleration");
    json.String(agent.node_port_acceleration);
    json.Key("socket_lb_cgroup");
    json.OptionalString(agent.cgroup_path.empty() ? std::nullopt : std::optional(agent.cgroup_path));
    json.Key("socket_lb_host_only");
    json.Bool(agent.socket_lb_host_only);
    json.EndObject();
  } else {
    json.Null();
  }
  json.Key("counts");
  json.StartObject();
  json.Key("services");
  json.OptionalUint(report.services);
  json.Key("frontends");
  json.OptionalUint(EntriesOf(report, WEIR_SERVICES_MAP_NAME));
  json.Key("backends");
  json.OptionalUint(EntriesOf(report, WEIR_BACKENDS_MAP_NAME));
  json.Key("endpoints");
  json.OptionalUint(EntriesOf(report, WEIR_ENDPOINTS_MAP_NAME));
  json.Key("conntrack");
  json.OptionalUint(EntriesOf(report, WEIR_CONNTRACK_MAP_NAME));
  json.EndObject();
  json.Key("programs");
  json.StartArray();
  for (const ProgramStatus& program : report.programs) {
    json.StartObject();
    json.Key("name");
    json.String(program.name);
    json.Key("id");
    json.Uint(program.id);
    json.Key("type");
    json.String(program.type);
    json.Key("tag");
    json.String(program.tag);
    WriteTime(json, "loaded", program.loaded_unix_ns);
    json.EndObject();
  }
  json.EndArray();
  json.Key("links");
  json.StartArray();
  for (const LinkStatus& link : report.links) {
    json.StartObject();
    json.Key("pin");
    json.String(link.pin);
    json.Key("group");
    json.String(link.group);
    json.Key("id");
    json.Uint(link.id);
    json.Key("type");
    json.String(link.type);
    json.Key("program_id");
    json.Uint(link.program_id);
    json.Key("program");
    json.OptionalString(link.program.empty() ? std::nullopt : std::optional(link.program));
    json.Key("attach_type");
    json.String(link.attach_type);
    json.Key("attached");
    json.Bool(link.attached);
    json.Key("ifindex");
    json.OptionalUint(link.type == "tcx" ? std::optional<uint64_t>(link.ifindex) : std::nullopt);
    json.Key("interface");
    json.OptionalString(link.interface.empty() ? std::nullopt : std::optional(link.interface));
    json.Key("cgroup_id");
    json.OptionalUint(link.type == "cgroup" ? std::optional<uint64_t>(link.cgroup_id) : std::nullopt);
    json.Key("cgroup");
    json.OptionalString(link.cgroup.empty() ? std::nullopt : std::optional(link.cgroup));
    json.EndObject();
  }
  json.EndArray();
  json.Key("maps");
  json.StartArray();
  for (const MapStatus& map : report.maps) {
    json.StartObject();
    json.Key("name");
    json.String(map.name);
    json.Key("id");
    json.Uint(map.id);
    json.Key("type");
    json.String(map.type);
    json.Key("entries");
    json.OptionalUint(map.entries);
    json.Key("capacity");
    json.Uint(map.capacity);
    json.Key("fill_percent");
    if (map.entries && map.capacity > 0) {
      json.Double(100.0 * static_cast<double>(*map.entries) / map.capacity);
    } else {
      json.Null();
    }
    json.Key("key_size");
    json.Uint(map.key_size);
    json.Key("value_size");
    json.Uint(map.value_size);
    json.Key("pending_bytes");
    json.OptionalUint(map.pending_bytes);
    json.EndObject();
  }
  json.EndArray();
  json.Key("errors");
  json.StringArray(report.errors);
  json.EndObject();
  return json.Take();
}

}  // namespace

StatusReport CollectStatus(const PinLayout& layout) {
  StatusReport report{.now_unix_ns = UnixNowNs()};
  if (auto map = AgentInfoMap::OpenPinned(layout.agent_info_map()); !map.ok()) {
    report.agent_missing = std::string(map.status().message());
  } else if (auto info = map->Read(); !info.ok()) {
    report.agent_missing = std::string(info.status().message());
  } else {
    report.agent = *std::move(info);
  }
  if (ServiceNamesMap::OpenPinned(layout.service_names_map()).ok()) {
    report.services = ServiceDirectory::Load(layout).service_count();
  }
  CollectMaps(layout, report);
  CollectPrograms(layout, report);
  CollectLinks(layout, report);
  return report;
}

std::string RenderStatus(const StatusReport& report, OutputFormat format) {
  return format == OutputFormat::kJson ? RenderJson(report) : RenderTable(report);
}

absl::Status RunStatus(const CommandOptions& options) {
  if (access(options.layout.root.c_str(), F_OK) != 0) {
    return ErrnoStatus(errno, absl::StrCat(options.layout.root, ": no weir datapath pinned there"));
  }
  absl::PrintF("%s", RenderStatus(CollectStatus(options.layout), options.format));
  return absl::OkStatus();
}

}  // namespace weir::weirctl
