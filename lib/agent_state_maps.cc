#include "lib/agent_state_maps.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/errno_status.h"

namespace weir {
namespace {

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
static_assert(sizeof(AgentInfoRecord) == 632);

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
  uint32_t value_size;
  uint32_t max_entries;
  uint32_t flags;
};

absl::Status CheckShape(int fd, const std::string& path, const MapShape& shape) {
  bpf_map_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &length) != 0) return ErrnoStatus(errno, absl::StrCat("inspect ", path));
  if (info.type != shape.type || info.key_size != sizeof(uint32_t) || info.value_size != shape.value_size ||
      info.max_entries != shape.max_entries || info.map_flags != shape.flags) {
    return absl::FailedPreconditionError(absl::StrCat(path, " was made by another build of weir"));
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> OpenPinnedMap(const std::string& path, bpf_map_type type, uint32_t value_size) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd.valid()) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, " not found: no agent published it"));
    return ErrnoStatus(errno, absl::StrCat("open ", path));
  }
  bpf_map_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0) return ErrnoStatus(errno, absl::StrCat("inspect ", path));
  if (info.type != type || info.key_size != sizeof(uint32_t) || info.value_size != value_size) {
    return absl::FailedPreconditionError(absl::StrCat(path, " was made by another build of weir"));
  }
  return fd;
}

// The map pinned at `path` when it has `shape`; otherwise a new one, pinned over it atomically.
absl::StatusOr<UniqueFd> OpenOrCreateMap(const std::string& path, const char* name, const MapShape& shape) {
  if (UniqueFd existing(bpf_obj_get(path.c_str())); existing.valid()) {
    if (CheckShape(existing.get(), path, shape).ok()) return existing;
  }
  LIBBPF_OPTS(bpf_map_create_opts, options, .map_flags = shape.flags);
  UniqueFd fd(bpf_map_create(shape.type, name, sizeof(uint32_t), shape.value_size, shape.max_entries, &options));
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("create map ", name));
  const std::string staging = path + "_staging";  // bpffs refuses names with a dot
  unlink(staging.c_str());
  if (bpf_obj_pin(fd.get(), staging.c_str()) != 0) return ErrnoStatus(errno, absl::StrCat("pin at ", staging));
  if (rename(staging.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(staging.c_str());
    return ErrnoStatus(err, absl::StrCat("rename ", staging, " to ", path));
  }
  return fd;
}

MapShape NamesShape(uint32_t capacity) {
  // Allocated as names are added: most clusters use a small part of the services map's capacity.
  return {BPF_MAP_TYPE_HASH, sizeof(ServiceNameRecord), capacity, BPF_F_NO_PREALLOC};
}

constexpr MapShape kAgentInfoShape = {BPF_MAP_TYPE_ARRAY, sizeof(AgentInfoRecord), 1, 0};

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
                     .name = std::string(text.substr(slash + 1, colon == std::string_view::npos ? colon : colon - slash - 1)),
                     .port_name = colon == std::string_view::npos ? "" : std::string(text.substr(colon + 1))};
  if (parsed.name.empty() || parsed.name.find('/') != std::string::npos) return std::nullopt;
  return parsed;
}

absl::StatusOr<ServiceNamesMap> ServiceNamesMap::OpenOrCreate(const std::string& path, uint32_t capacity) {
  auto fd = OpenOrCreateMap(path, WEIR_SERVICE_NAMES_MAP_NAME, NamesShape(capacity));
  if (!fd.ok()) return fd.status();
  return ServiceNamesMap(*std::move(fd));
}

absl::StatusOr<ServiceNamesMap> ServiceNamesMap::OpenPinned(const std::string& path) {
  auto fd = OpenPinnedMap(path, BPF_MAP_TYPE_HASH, sizeof(ServiceNameRecord));
  if (!fd.ok()) return fd.status();
  return ServiceNamesMap(*std::move(fd));
}

absl::Status ServiceNamesMap::Put(uint32_t service_id, const ServiceName& name) const {
  ServiceNameRecord record{};
  CopyOut(record.namespace_name, name.namespace_name);
  CopyOut(record.name, name.name);
  CopyOut(record.port_name, name.port_name);
  if (bpf_map_update_elem(fd_.get(), &service_id, &record, BPF_ANY) != 0) {
    return ErrnoStatus(errno, absl::StrCat("write the name of service ", service_id));
  }
  return absl::OkStatus();
}

absl::Status ServiceNamesMap::Delete(uint32_t service_id) const {
  if (bpf_map_delete_elem(fd_.get(), &service_id) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("delete the name of service ", service_id));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<uint32_t, ServiceName>> ServiceNamesMap::List() const {
  std::map<uint32_t, ServiceName> names;
  uint32_t key = 0, next = 0;
  const uint32_t* previous = nullptr;
  while (bpf_map_get_next_key(fd_.get(), previous, &next) == 0) {
    ServiceNameRecord record{};
    if (bpf_map_lookup_elem(fd_.get(), &next, &record) == 0) {
      names[next] = {CopyIn(record.namespace_name), CopyIn(record.name), CopyIn(record.port_name)};
    }
    key = next;
    previous = &key;
  }
  if (errno != ENOENT) return ErrnoStatus(errno, "list service names");
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

absl::StatusOr<AgentInfoMap> AgentInfoMap::OpenOrCreate(const std::string& path) {
  auto fd = OpenOrCreateMap(path, WEIR_AGENT_INFO_MAP_NAME, kAgentInfoShape);
  if (!fd.ok()) return fd.status();
  return AgentInfoMap(*std::move(fd));
}

absl::StatusOr<AgentInfoMap> AgentInfoMap::OpenPinned(const std::string& path) {
  auto fd = OpenPinnedMap(path, BPF_MAP_TYPE_ARRAY, sizeof(AgentInfoRecord));
  if (!fd.ok()) return fd.status();
  return AgentInfoMap(*std::move(fd));
}

absl::Status AgentInfoMap::Write(const AgentInfo& info) const {
  AgentInfoRecord record{};
  CopyOut(record.version, info.version);
  CopyOut(record.node_name, info.node_name);
  CopyOut(record.lb_mode, info.lb_mode);
  CopyOut(record.dsr_dispatch, info.dsr_dispatch);
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
  const uint32_t key = 0;
  if (bpf_map_update_elem(fd_.get(), &key, &record, BPF_ANY) != 0) return ErrnoStatus(errno, "write agent info");
  return absl::OkStatus();
}

absl::StatusOr<AgentInfo> AgentInfoMap::Read() const {
  AgentInfoRecord record{};
  const uint32_t key = 0;
  if (bpf_map_lookup_elem(fd_.get(), &key, &record) != 0) return ErrnoStatus(errno, "read agent info");
  if (record.started_unix_ns == 0) return absl::NotFoundError("no agent has written its facts yet");
  return AgentInfo{.version = CopyIn(record.version),
                   .node_name = CopyIn(record.node_name),
                   .source = static_cast<SyncSource>(record.source),
                   .lb_mode = CopyIn(record.lb_mode),
                   .dsr_dispatch = CopyIn(record.dsr_dispatch),
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
