// The agent's local socket (a unix stream socket under /run/weir): CNI ADD asks it for a new pod's
// policy, weirctl for the policy state it computed. One exchange per connection: the client writes
// one request line, the agent writes its answer and closes. Lines rather than HTTP because the CNI
// plugin is exec'd per pod and links statically: a few syscalls, no library.
//
// Requests:
//   endpoint <namespace> <name> <ADD start, unix microseconds> <address>[,<address>...]
//       -> "ok <policy_id>" or "error <message>"
//   policy [<namespace>/<name> | <name>]
//       -> a JSON document (proxy/agent/policy_step.h, DescribeJson)
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/ip.h"

namespace weir {

struct EndpointAddedRequest {
  std::string namespace_;
  std::string name;
  int64_t add_started_us = 0;  // CLOCK_REALTIME, when ADD began: the agent measures from it
  std::vector<IpAddress> addresses;
};

std::string FormatEndpointAdded(const EndpointAddedRequest& request);
// The request without its leading "endpoint " word.
absl::StatusOr<EndpointAddedRequest> ParseEndpointAdded(const std::string& arguments);

// Connects to `socket_path`, sends `request` (a newline is added) and reads the answer to EOF, all
// within `timeout`. Unavailable when nothing listens, DeadlineExceeded when the answer is late.
absl::StatusOr<std::string> AskAgent(const std::string& socket_path, const std::string& request,
                                     std::chrono::milliseconds timeout);

}  // namespace weir
