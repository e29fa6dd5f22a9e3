#include "proxy/agent/agent_facts.h"

#include <unistd.h>

#include "spdlog/spdlog.h"

namespace weir::agent {

const char* WeirVersion() { return WEIR_VERSION; }

AgentInfo AgentInfoFrom(const AgentConfig& config, SyncSource source) {
  return AgentInfo{.version = WeirVersion(),
                   .node_name = config.node_name,
                   .source = source,
                   .lb_mode = lb::LbModeName(config.lb_mode),
                   .dsr_dispatch = config.dsr_ip_option ? "option" : "ipip",
                   .node_port_acceleration = config.node_port_acceleration,
                   .cgroup_path = config.cgroup_path,
                   .socket_lb_host_only = config.socket_lb_host_only,
                   .maglev = config.maglev,
                   .masquerade = config.masquerade,
                   .maglev_table_size = config.maglev_table_size,
                   .pid = static_cast<uint32_t>(getpid()),
                   .started_unix_ns = UnixNowNs()};
}

AgentFactsPublisher::AgentFactsPublisher(const PinLayout& layout, AgentInfo info) : info_(std::move(info)) {
  auto map = AgentInfoMap::OpenOrCreate(layout.agent_info_map());
  if (map.ok()) {
    map_ = *std::move(map);
  } else {
    spdlog::warn("weirctl status will not show this agent's facts: {}", map.status().ToString());
    warned_ = true;
  }
  Publish();
}

void AgentFactsPublisher::Synced(const SyncResult& result, bool complete) {
  const uint64_t now = UnixNowNs();
  info_.last_sync_unix_ns = now;
  if (complete) {
    info_.last_complete_sync_unix_ns = now;
    info_.services = static_cast<uint32_t>(result.services);
  }
  info_.frontends = static_cast<uint32_t>(result.frontends);
  info_.backends = static_cast<uint32_t>(result.backends);
  ++info_.syncs;
  Publish();
}

void AgentFactsPublisher::SyncFailed() {
  info_.last_sync_error_unix_ns = UnixNowNs();
  ++info_.sync_errors;
  Publish();
}

void AgentFactsPublisher::Publish() {
  if (!map_) return;
  if (absl::Status s = map_->Write(info_); !s.ok() && !warned_) {
    spdlog::warn("publishing the agent's facts for weirctl: {}", s.ToString());
    warned_ = true;
  }
}

}  // namespace weir::agent
