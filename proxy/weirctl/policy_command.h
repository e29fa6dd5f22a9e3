// `weirctl policy [pod]`: what network policy the agent computed for this node's pods: each
// endpoint's identity, labels, isolation and mode per direction, the policies in force and the
// traffic they allow. Only the agent has it (it is computed, not read back from maps), so weirctl
// asks the agent on its policy socket (lib/agent_socket.h).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proxy/weirctl/command.h"

namespace weir::weirctl {

// The agent's answer (JSON) as weirctl prints it; errors when it is not the JSON expected.
absl::StatusOr<std::string> RenderPolicy(const std::string& agent_json, OutputFormat format);

absl::Status RunPolicy(const CommandOptions& options);

}  // namespace weir::weirctl
