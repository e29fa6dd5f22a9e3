#include "lib/agent_state_maps.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/bpf_map.h"
#include "lib/errno_status.h"

namespace weir {

// Kubernetes limits: namespace and Service names are DNS labels (63), port names 15; one byte more
// for the terminating NUL.
struct ServiceNameRecord {
  char namespace_name[64];
  char name[64];
  char port_name[16];
};
static_assert(sizeof(ServiceNameRecord) == 144);

struct AgentInfoRecord {
  char version[32];
  char node_name[256];  // node names are DNS subdomains: up to 253
  char lb_mode[8];
  char dsr_dispatch[8];
  char node_port_acceleration[16];  // "disabled" needs 9
  char cgroup_path[256];
  uint8_t source;
  uint8_t socket_lb_host_only;
  uint8_t maglev;
  uint8_t masquerade;
  uint32_t maglev_table_size;
  uint32_t pid;
  uint32_t services;
  uint32_t frontends;
  uint32_t backends;
  uint64_t started_unix_ns;
  uint64_t last_sync_unix_ns;
  uint64_t last_complete_sync_unix_ns;
  uint64_t last_sync_error_unix_ns;
  uint64_t syncs;
  uint64_t sync_errors;
};
// Another size than an older build's: the agent of this build pins a new map over that one
// (OpenOrCreateMap), and each build's weirctl says which build wrote the one it finds.
static_assert(sizeof(AgentInfoRecord) == 648);

namespace {

template <size_t N>
void CopyOut(char (&field)[N], const std::string& text) {
  std::memset(field, 0, N);
  std::memcpy(field, text.data(), std::min(text.size(), N - 1));
}

template <size_t N>
std::string CopyIn(const char (&field)[N]) {
  return std::string(field, strnlen(field, N));
}

struct MapShape {
  bpf_map_type type;
  uint32_t max_entries;
  uint32_t flags;
};

template <typename Record>
using RecordMap = BpfMap<uint32_t, Record>;

absl::Status CheckShape(const UntypedBpfMap& map, const std::string& path, const MapShape& shape) {
  if (map.type() != shape.type || map.max_entries() != shape.max_entries || map.flags() != shape.flags) {
    return absl::FailedPreconditionError(absl::StrCat(path, " was made by another build of weir"));
  }
  return absl::OkStatus();
}

template <typename Record>
absl::StatusOr<RecordMap<Record>> OpenPinnedMap(const std::string& path, bpf_map_type type) {
  absl::StatusOr<RecordMap<Record>> map = RecordMap<Record>::OpenPinned(path);
  if (absl::IsNotFound(map.status())) {
    return absl::NotFoundError(absl::StrCat(path, " not found: no agent published it"));
  }
  if (absl::IsFailedPrecondition(map.status()) || (map.ok() && map->untyped().type() != type)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " was made by another build of weir"));
  }
  return map;
}

// The map pinned at `path` when it has `shape`; otherwise a new one, pinned over it atomically.
template <typename Record>
absl::StatusOr<RecordMap<Record>> OpenOrCreateMap(const std::string& path, const char* name,
                                                  const MapShape& shape) {
  if (absl::StatusOr<RecordMap<Record>> existing = RecordMap<Record>::OpenPinned(path); existing.ok()) {
    if (CheckShape(existing->untyped(), path, shape).ok()) return existing;
  }
  LIBBPF_OPTS(bpf_map_create_opts, options, .map_flags = shape.flags);
  UniqueFd fd(
      bpf_map_create(shape.type, name, sizeof(uint32_t), sizeof(Record), shape.max_entries, &options));
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("create map ", name));
  const std::string staging = path + "_staging";  // bpffs refuses names with a dot
  unlink(staging.c_str());
  if (bpf_obj_pin(fd.get(), staging.c_str()) != 0)
    return ErrnoStatus(errno, absl::StrCat("pin at ", staging));
  if (rename(staging.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(staging.c_str());
    return ErrnoStatus(err, absl::StrCat("rename ", staging, " to ", path));
  }
  return RecordMap<Record>::FromFd(std::move(fd), name);
}

MapShape NamesShape(uint32_t capacity) {
  // Allocated as names are added: most clusters use a small part of the services map's capacity.
  return {BPF_MAP_TYPE_HASH, capacity, BPF_F_NO_PREALLOC};
}

constexpr MapShape kAgentInfoShape = {BPF_MAP_TYPE_ARRAY, 1, 0};

}  // namespace

std::string ServiceName::ToString() const {
  return port_name.empty() ? absl::StrCat(namespace_name, "/", name)
                           : absl::StrCat(namespace_name, "/", name, ":", port_name);
}

std::optional<ServiceName> ServiceName::Parse(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  const size_t colon = text.find(':', slash);
  ServiceName parsed{.namespace_name = std::string(text.substr(0, slash)),
                     .name = std::string(
                         text.substr(slash + 1, colon == std::string_view::npos ? colon : colon - slash - 1)),
                     .port_name = colon == std::string_view::npos ? "" : std::string(text.substr(colon + 1))};
  if (parsed.name.empty() || parsed.name.find('/') != std::string::npos) return std::nullopt;
  return parsed;
}

ServiceNamesMap::ServiceNamesMap(std::unique_ptr<Map> map) : map_(std::move(map)) {}
ServiceNamesMap::ServiceNamesMap(ServiceNamesMap&&) noexcept = default;
ServiceNamesMap& ServiceNamesMap::operator=(ServiceNamesMap&&) noexcept = default;
ServiceNamesMap::~ServiceNamesMap() = default;

absl::StatusOr<ServiceNamesMap> ServiceNamesMap::OpenOrCreate(const std::string& path, uint32_t capacity) {
  auto map = OpenOrCreateMap<ServiceNameRecord>(path, WEIR_SERVICE_NAMES_MAP_NAME, NamesShape(capacity));
  if (!map.ok()) return map.status();
  return ServiceNamesMap(std::make_unique<Map>(*std::move(map)));
}

absl::StatusOr<ServiceNamesMap> ServiceNamesMap::OpenPinned(const std::string& path) {
  auto map = OpenPinnedMap<ServiceNameRecord>(path, BPF_MAP_TYPE_HASH);
  if (!map.ok()) return map.status();
  return ServiceNamesMap(std::make_unique<Map>(*std::move(map)));
}

absl::Status ServiceNamesMap::Put(uint32_t service_id, const ServiceName& name) const {
  ServiceNameRecord record{};
  CopyOut(record.namespace_name, name.namespace_name);
  CopyOut(record.name, name.name);
  CopyOut(record.port_name, name.port_name);
  return map_->Update(service_id, record);
}

absl::Status ServiceNamesMap::Delete(uint32_t service_id) const { return map_->Delete(service_id); }

absl::StatusOr<std::map<uint32_t, ServiceName>> ServiceNamesMap::List() const {
  absl::StatusOr<std::vector<Map::Entry>> entries = map_->List();
  if (!entries.ok()) return entries.status();
  std::map<uint32_t, ServiceName> names;
  for (const Map::Entry& entry : *entries) {
    names[entry.key] = {CopyIn(entry.value.namespace_name), CopyIn(entry.value.name),
                        CopyIn(entry.value.port_name)};
  }
  return names;
}

const char* SyncSourceName(SyncSource source) {
  switch (source) {
    case SyncSource::kManifests: return "manifests";
    case SyncSource::kKubernetes: return "kubernetes";
    case SyncSource::kNone: break;
  }
  return "none";
}

AgentInfoMap::AgentInfoMap(std::unique_ptr<Map> map) : map_(std::move(map)) {}
AgentInfoMap::AgentInfoMap(AgentInfoMap&&) noexcept = default;
AgentInfoMap& AgentInfoMap::operator=(AgentInfoMap&&) noexcept = default;
AgentInfoMap::~AgentInfoMap() = default;

absl::StatusOr<AgentInfoMap> AgentInfoMap::OpenOrCreate(const std::string& path) {
  auto map = OpenOrCreateMap<AgentInfoRecord>(path, WEIR_AGENT_INFO_MAP_NAME, kAgentInfoShape);
  if (!map.ok()) return map.status();
  return AgentInfoMap(std::make_unique<Map>(*std::move(map)));
}

absl::StatusOr<AgentInfoMap> AgentInfoMap::OpenPinned(const std::string& path) {
  auto map = OpenPinnedMap<AgentInfoRecord>(path, BPF_MAP_TYPE_ARRAY);
  if (!map.ok()) return map.status();
  return AgentInfoMap(std::make_unique<Map>(*std::move(map)));
}

absl::Status AgentInfoMap::Write(const AgentInfo& info) const {
  AgentInfoRecord record{};
  CopyOut(record.version, info.version);
  CopyOut(record.node_name, info.node_name);
  CopyOut(record.lb_mode, info.lb_mode);
  CopyOut(record.dsr_dispatch, info.dsr_dispatch);
  CopyOut(record.node_port_acceleration, info.node_port_acceleration);
  CopyOut(record.cgroup_path, info.cgroup_path);
  record.source = static_cast<uint8_t>(info.source);
  record.socket_lb_host_only = info.socket_lb_host_only;
  record.maglev = info.maglev;
  record.masquerade = info.masquerade;
  record.maglev_table_size = info.maglev_table_size;
  record.pid = info.pid;
  record.services = info.services;
  record.frontends = info.frontends;
  record.backends = info.backends;
  record.started_unix_ns = info.started_unix_ns;
  record.last_sync_unix_ns = info.last_sync_unix_ns;
  record.last_complete_sync_unix_ns = info.last_complete_sync_unix_ns;
  record.last_sync_error_unix_ns = info.last_sync_error_unix_ns;
  record.syncs = info.syncs;
  record.sync_errors = info.sync_errors;
  return map_->Update(0, record);
}

absl::StatusOr<AgentInfo> AgentInfoMap::Read() const {
  absl::StatusOr<std::optional<AgentInfoRecord>> read = map_->Lookup(0);
  if (!read.ok()) return read.status();
  if (!read->has_value()) return absl::NotFoundError("the agent info map has no entry");
  const AgentInfoRecord& record = **read;
  if (record.started_unix_ns == 0) return absl::NotFoundError("no agent has written its facts yet");
  return AgentInfo{.version = CopyIn(record.version),
                   .node_name = CopyIn(record.node_name),
                   .source = static_cast<SyncSource>(record.source),
                   .lb_mode = CopyIn(record.lb_mode),
                   .dsr_dispatch = CopyIn(record.dsr_dispatch),
                   .node_port_acceleration = CopyIn(record.node_port_acceleration),
                   .cgroup_path = CopyIn(record.cgroup_path),
                   .socket_lb_host_only = record.socket_lb_host_only != 0,
                   .maglev = record.maglev != 0,
                   .masquerade = record.masquerade != 0,
                   .maglev_table_size = record.maglev_table_size,
                   .pid = record.pid,
                   .started_unix_ns = record.started_unix_ns,
                   .last_sync_unix_ns = record.last_sync_unix_ns,
                   .last_complete_sync_unix_ns = record.last_complete_sync_unix_ns,
                   .last_sync_error_unix_ns = record.last_sync_error_unix_ns,
                   .syncs = record.syncs,
                   .sync_errors = record.sync_errors,
                   .services = record.services,
                   .frontends = record.frontends,
                   .backends = record.backends};
}

uint64_t UnixNowNs() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(now.tv_nsec);
}

}  // namespace weir
