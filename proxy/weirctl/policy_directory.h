// Names for `weirctl events`' policy records: the datapath reports a policy_id, a direction and the
// peer's identity number; the agent (its "directory" request, lib/agent_socket.h) knows which pod a
// policy_id is, which policies isolate it in each direction and what each identity stands for. A
// denial is always "no rule admitted it" under the policies that isolate the direction: those are
// the policies that decided (default deny), and the record names them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proxy/weirctl/event_view.h"

namespace weir::weirctl {

class PolicyDirectory {
 public:
  struct Direction {
    bool isolated = false;
    bool audit = false;
    std::vector<std::string> policies;  // "namespace/name" of those that isolate it
  };
  struct Endpoint {
    uint32_t policy_id = 0;
    std::string pod;  // "namespace/name"
    std::vector<std::string> addresses;
    Direction ingress;
    Direction egress;
  };

  PolicyDirectory() = default;
  // The agent's answer to "directory".
  static absl::StatusOr<PolicyDirectory> Parse(const std::string& json);
  // Asks the agent on `agent_socket`.
  static absl::StatusOr<PolicyDirectory> Ask(const std::string& agent_socket);

  const Endpoint* Find(uint32_t policy_id) const;
  const Endpoint* FindByAddress(const std::string& address) const;
  // "x{pod=a}" (namespace and pod labels), a reserved name ("world", "host"), or the number.
  std::string IdentityName(uint32_t identity) const;

  // Whether `view` (a policy record) names something this directory does not know: it may be newer
  // than the directory, which is then worth asking for again.
  bool Knows(const EventView& view) const;
  // Appends to a policy record what decided it: endpoint=namespace/pod, policy=default-deny (or
  // pending, when the endpoint's policy was not computed yet) with isolated_by=<policies>, and
  // peer=<identity's name>; then the raw policy_id and peer_identity.
  void Name(EventView& view) const;

 private:
  const Endpoint* EndpointOf(const EventView& view) const;
  std::map<uint32_t, Endpoint> by_id_;
  std::map<std::string, Endpoint> pending_;  // by address: endpoints without a policy_id yet
  std::map<std::string, uint32_t> id_by_address_;
  std::map<uint32_t, std::string> identities_;
};

}  // namespace weir::weirctl
