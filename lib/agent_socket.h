// The agent's local socket: CNI ADD asks it for a new pod's policy, weirctl for the policy state it
// computed. By default an abstract unix socket ("@weir-policy"): it lives in the network namespace,
// which is the node's for the agent (host network), the CNI plugin and weirctl alike, so every node
// of a namespace lab has its own with no path to configure, and no hostPath is needed. The agent
// answers root only (SO_PEERCRED), since an abstract socket has no file mode. One exchange per connection: the client writes
// one request line, the agent writes its answer and closes. Lines rather than HTTP because the CNI
// plugin is exec'd per pod and links statically: a few syscalls, no library.
//
// Requests:
//   endpoint <namespace> <name> <ADD start, unix microseconds> <address>[,<address>...]
//       -> "ok <policy_id>" or "error <message>"
//   policy [<namespace>/<name> | <name>]
//       -> a JSON document (proxy/agent/policy_step.h, DescribeJson)
//   directory
//       -> a JSON document naming policy_ids, endpoints and identities (PolicyStep::DirectoryJson),
//          for `weirctl events`
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/ip.h"

namespace weir {

inline constexpr char kDefaultAgentSocket[] = "@weir-policy";

// "@name": the abstract socket `name`; otherwise a filesystem path.
struct UnixAddress {
  sockaddr_un address{};
  socklen_t length = 0;
};
absl::StatusOr<UnixAddress> AgentSocketAddress(const std::string& socket);

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
