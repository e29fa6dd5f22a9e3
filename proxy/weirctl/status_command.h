// `weirctl status`: the one screen an operator reads first. The agent's facts (version, settings,
// last sync), what the datapath holds (counts), the pinned programs and the links attaching them
// (and whether each is still attached), and every pinned map's fill level.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lib/agent_state_maps.h"
#include "proxy/weirctl/command.h"

namespace weir::weirctl {

struct ProgramStatus {
  std::string name;  // pin name under progs/
  uint32_t id = 0;
  std::string type;  // "sched_cls", "cgroup_sock_addr"
  std::string tag;   // hex
  uint64_t loaded_unix_ns = 0;
};

struct LinkStatus {
  std::string pin;    // under links/: "uplinks/uplink0", "cgroup/connect4", "pods/weirXXXX"
  std::string group;  // "uplinks", "uplinks-egress", "cgroup", "pods"
  uint32_t id = 0;
  std::string type;  // "tcx", "cgroup"
  uint32_t program_id = 0;
  std::string program;      // the pinned program it runs; empty when it runs an unpinned (older) one
  std::string attach_type;  // "tcx_ingress", "cgroup_inet4_connect"
  bool attached = false;    // false: its interface or cgroup is gone
  uint32_t ifindex = 0;     // tcx
  std::string interface;    // tcx, when in weirctl's namespace
  uint64_t cgroup_id = 0;   // cgroup
  std::string cgroup;       // cgroup, when it is the agent's socket-LB cgroup
};

struct MapStatus {
  std::string name;  // pin name
  uint32_t id = 0;
  std::string type;                 // "hash", "lru_hash", "ringbuf", ...
  std::optional<uint64_t> entries;  // nullopt for arrays and rings, whose fill is not a count
  uint32_t capacity = 0;            // max_entries (bytes for a ring)
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  std::optional<uint64_t> pending_bytes;  // rings: written and not yet read
};

struct StatusReport {
  uint64_t now_unix_ns = 0;
  std::optional<AgentInfo> agent;
  std::string agent_missing;         // why there is no agent info
  std::optional<uint64_t> services;  // distinct namespace/name the agent named
  std::vector<ProgramStatus> programs;
  std::vector<LinkStatus> links;
  std::vector<MapStatus> maps;
  std::vector<std::string> errors;  // what could not be read
};

StatusReport CollectStatus(const PinLayout& layout);
std::string RenderStatus(const StatusReport& report, OutputFormat format);

absl::Status RunStatus(const CommandOptions& options);

}  // namespace weir::weirctl
