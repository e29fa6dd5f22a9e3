// The seam between the policy computation (this layer, pure) and whatever enforces it: the agent
// drives a PolicyWriter; the BPF implementation lives in proxy/policy_sync/ and unit tests use a
// recording fake. Everything here is in the API's terms (addresses, identities, EndpointPolicy);
// map layouts stay behind the implementation.
//
// The life of an endpoint's enforcement:
//   1. CNI ADD (with policy on in the CNI config) writes the endpoint entry marked pending: the
//      datapath denies its traffic in both directions, except to and from its own node.
//   2. The agent computes the pod's EndpointPolicy and calls WriteEndpoint: rules first, then the
//      endpoint entries of `addresses` switch from pending to enforcing `policy_id`. If an address has
//      no endpoint entry yet (the agent saw the pod before ADD), only the rules are written; the
//      CNI's request to the agent for that pod then calls WriteEndpoint again.
//   3. Label, policy and peer changes call WriteEndpoint again with the same policy_id: the rules are
//      replaced by difference, so a packet never sees an empty or partial rule set in between.
//   4. The pod goes: RemoveEndpoint (its endpoint entries are the CNI's to remove).
#pragma once

#include <cstdint>
#include <map>

#include "absl/status/status.h"
#include "lib/ip.h"
#include "proxy/policy/endpoint_policy.h"
#include "proxy/policy/identity.h"

namespace weir::policy {

// Per direction: enforce (drop what no rule allows) or audit (count and report it, drop nothing).
enum class EnforcementMode : uint8_t { kEnforce, kAudit };

struct EndpointEnforcement {
  uint32_t policy_id = 0;  // allocated by the agent, never 0, unique among this node's endpoints
  EndpointPolicy policy;   // identity, addresses, and per direction isolated + allowed
  EnforcementMode ingress_mode = EnforcementMode::kEnforce;
  EnforcementMode egress_mode = EnforcementMode::kEnforce;
  bool operator==(const EndpointEnforcement&) const = default;
};

class PolicyWriter {
 public:
  virtual ~PolicyWriter() = default;

  // Every address or CIDR the node can name an identity for: pod addresses (their identity), this
  // node's addresses and its hostNetwork pods (kIdentityHost), other nodes' addresses
  // (kIdentityRemoteNode). Anything else is kIdentityWorld. Replaces the whole set, writing only
  // the difference.
  virtual absl::Status SetPeers(const std::map<IpPrefix, Identity>& peers) = 0;

  // Installs or replaces one endpoint's enforcement (see the life above).
  virtual absl::Status WriteEndpoint(const EndpointEnforcement& endpoint) = 0;

  // Removes an endpoint's rules; unknown ids are ignored.
  virtual absl::Status RemoveEndpoint(uint32_t policy_id) = 0;
};

}  // namespace weir::policy
