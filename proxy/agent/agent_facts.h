// What this agent tells `weirctl status` about itself (lib/agent_state_maps.h): version, the
// settings an operator checks first, and when it last synced. Publishing never stops the agent: a
// failure is logged once and the status command then says it has no facts.
#pragma once

#include <optional>

#include "lib/agent_state_maps.h"
#include "lib/pin_layout.h"
#include "proxy/agent/agent_config.h"
#include "proxy/agent/service_sync.h"

namespace weir::agent {

// The version this build carries (the VERSION file).
const char* WeirVersion();

AgentInfo AgentInfoFrom(const AgentConfig& config, SyncSource source);

class AgentFactsPublisher {
 public:
  AgentFactsPublisher(const PinLayout& layout, AgentInfo info);

  void Synced(const SyncResult& result, bool complete);
  void SyncFailed();

 private:
  void Publish();

  std::optional<AgentInfoMap> map_;
  AgentInfo info_;
  bool warned_ = false;
};

}  // namespace weir::agent
