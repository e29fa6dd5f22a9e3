// What the agent publishes for weirctl beside the datapath's own maps: the Service behind each
// service id, and facts about the agent itself (version, settings, last sync). Both are pinned BPF
// maps that no BPF program uses.
//
// Why pinned maps and not a file or an HTTP endpoint: weirctl already reads everything else from
// the bpf root, which every place weirctl runs can see (the agent's pod mounts it; the lab gives
// each node one). The names live beside the ids they explain and go when they go (uninstall, a
// fresh bpffs). An entry update is atomic, so a reader never sees a torn record, and the agent
// updates only the names a sync changed: an EndpointSlice change costs no rewrite of a file as
// large as the cluster. The health port can be off (0), so it cannot be what weirctl depends on.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace weir {

// The records' layouts are private to agent_state_maps.cc: only this build reads what it wrote.
struct ServiceNameRecord;
struct AgentInfoRecord;
template <typename Key, typename Value>
class BpfMap;

#define WEIR_SERVICE_NAMES_MAP_NAME "weir_svc_names"
#define WEIR_AGENT_INFO_MAP_NAME "weir_agent_info"

// The Service and port a frontend (service id) was made from.
struct ServiceName {
  std::string namespace_name;  // "default"
  std::string name;            // "web"
  std::string port_name;       // "http"; empty for an unnamed port
  auto operator<=>(const ServiceName&) const = default;

  // "default/web:http", "default/web" when the port has no name.
  std::string ToString() const;
  // Parses ToString()'s form (the translator's FrontendSpec::service); nullopt when it is not one.
  static std::optional<ServiceName> Parse(std::string_view text);
};

// The pinned map of service id -> ServiceName.
class ServiceNamesMap {
 public:
  // Opens the map pinned at `path`, or creates and pins it. A map pinned by another build (other
  // record size or capacity) is replaced: its content is derived and rewritten by the next sync.
  static absl::StatusOr<ServiceNamesMap> OpenOrCreate(const std::string& path, uint32_t capacity);
  // For readers; NotFound when no agent of this build published names there.
  static absl::StatusOr<ServiceNamesMap> OpenPinned(const std::string& path);

  absl::Status Put(uint32_t service_id, const ServiceName& name) const;
  absl::Status Delete(uint32_t service_id) const;  // succeeds when absent
  absl::StatusOr<std::map<uint32_t, ServiceName>> List() const;

  ServiceNamesMap(ServiceNamesMap&&) noexcept;
  ServiceNamesMap& operator=(ServiceNamesMap&&) noexcept;
  ~ServiceNamesMap();

 private:
  using Map = BpfMap<uint32_t, ServiceNameRecord>;
  explicit ServiceNamesMap(std::unique_ptr<Map> map);
  std::unique_ptr<Map> map_;
};

enum class SyncSource : uint8_t { kNone = 0, kManifests = 1, kKubernetes = 2 };

// Facts about the agent that weirctl status shows. Times are Unix times in nanoseconds (0: never).
struct AgentInfo {
  std::string version;
  std::string node_name;
  SyncSource source = SyncSource::kNone;
  std::string lb_mode;                 // "snat", "dsr", "hybrid"
  std::string dsr_dispatch;            // "ipip", "option"
  std::string node_port_acceleration;  // XDP on the uplinks: "disabled", "native", "generic"
  std::string cgroup_path;             // socket LB; empty: off
  bool socket_lb_host_only = false;
  bool maglev = false;
  bool masquerade = false;
  uint32_t maglev_table_size = 0;
  uint32_t pid = 0;
  uint64_t started_unix_ns = 0;
  uint64_t last_sync_unix_ns = 0;  // the last successful sync, complete or partial
  uint64_t last_complete_sync_unix_ns = 0;
  uint64_t last_sync_error_unix_ns = 0;
  uint64_t syncs = 0;
  uint64_t sync_errors = 0;
  uint32_t services = 0;   // Services translated by the last complete sync
  uint32_t frontends = 0;  // after the last sync
  uint32_t backends = 0;
};

const char* SyncSourceName(SyncSource source);

// The pinned one-entry map holding AgentInfo.
class AgentInfoMap {
 public:
  static absl::StatusOr<AgentInfoMap> OpenOrCreate(const std::string& path);
  static absl::StatusOr<AgentInfoMap> OpenPinned(const std::string& path);

  absl::Status Write(const AgentInfo& info) const;
  absl::StatusOr<AgentInfo> Read() const;

  AgentInfoMap(AgentInfoMap&&) noexcept;
  AgentInfoMap& operator=(AgentInfoMap&&) noexcept;
  ~AgentInfoMap();

 private:
  using Map = BpfMap<uint32_t, AgentInfoRecord>;
  explicit AgentInfoMap(std::unique_ptr<Map> map);
  std::unique_ptr<Map> map_;
};

// Unix time now, in nanoseconds.
uint64_t UnixNowNs();

}  // namespace weir
