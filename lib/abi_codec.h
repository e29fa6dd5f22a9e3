// The one place that knows how the datapath's keys and values (bpf/abi) are laid out: byte orders,
// family codes, address packing, and the text every tool shows for them. The reconciler, the CNI
// plugin, weirctl, the fake map writer and the tests encode and render through it; nothing else
// packs a key.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bpf/abi/conntrack.h"
#include "bpf/abi/endpoint.h"
#include "bpf/abi/masquerade.h"
#include "bpf/abi/policy.h"
#include "bpf/abi/service.h"
#include "lib/ip.h"
#include "lib/netlink.h"

namespace weir::abi {

// --- Addresses, ports, names ---

uint8_t FamilyCode(const IpAddress& address);  // WEIR_FAMILY_IPV4 / _IPV6
weir_addr EncodeAddress(const IpAddress& address);
// nullopt when the family is neither IPv4 nor IPv6.
std::optional<IpAddress> DecodeAddress(const weir_addr& addr, uint8_t family);
// "10.0.0.1", "fd00::1", "<family 9>".
std::string RenderAddress(const weir_addr& addr, uint8_t family);
// "10.0.0.1:80", "[fd00::1]:80".
std::string RenderAddressPort(const IpAddress& address, uint16_t port);
// The same from ABI fields; `port_be` in network byte order. "<family 9>:80" for an unknown family.
std::string RenderAddressPort(const weir_addr& addr, uint8_t family, uint16_t port_be);
// "ipv4", "ipv6", "family-N".
std::string FamilyName(uint8_t family);
// "TCP", "UDP", "SCTP", "proto-N".
std::string ProtoName(uint8_t proto);
// "external", "internal", "scope-N".
std::string ScopeName(uint8_t scope);

// --- Services (bpf/abi/service.h) ---

struct ServiceKeyFields {
  IpAddress address;
  uint16_t port = 0;  // host byte order
  uint8_t proto = WEIR_PROTO_TCP;
  uint8_t scope = WEIR_SCOPE_EXTERNAL;
};
weir_service_key EncodeServiceKey(const ServiceKeyFields& fields);
std::optional<ServiceKeyFields> DecodeServiceKey(const weir_service_key& key);

struct BackendFields {
  IpAddress address;
  uint16_t port = 0;  // host byte order
  uint8_t proto = WEIR_PROTO_TCP;
  uint16_t flags = 0;  // enum weir_backend_flags
};
weir_backend EncodeBackend(const BackendFields& fields);

// Fills a frontend entry's inline_count and backends (bpf/abi/service.h): the backends of its first
// slots, `slot_ids` in slot order, as the datapath expects them. `backend_of` gives an id's entry
// in the backends map, nullptr when it has none; carrying stops at such an id.
void CarryBackends(weir_service_value& value, const std::vector<uint32_t>& slot_ids,
                   const std::function<const weir_backend*(uint32_t)>& backend_of);
std::optional<BackendFields> DecodeBackend(const weir_backend& backend);

weir_affinity_key EncodeAffinityKey(const IpAddress& client, uint32_t service_id);

// Frontend flags ("cluster-ip", "node-port", ...), backend flags ("local", "terminating"), conntrack
// flags ("snat", "dsr", ...), in bit order; unknown bits in hex.
std::vector<std::string> ServiceFlagList(uint16_t flags);
std::vector<std::string> BackendFlagList(uint16_t flags);
std::vector<std::string> ConntrackFlagList(uint8_t flags);
// "forward", "reply", "kind-N".
std::string ConntrackKindName(uint8_t kind);

// --- Endpoints (bpf/abi/endpoint.h) ---

struct Endpoint {
  IpAddress address;
  int host_ifindex = 0;
  MacAddress pod_mac{};
  uint16_t flags = WEIR_ENDPOINT_LOCAL_POD;
  uint32_t policy_id = 0;  // NetworkPolicy: the agent's number for the endpoint
  uint64_t pod_id = 0;
};
weir_endpoint_key EncodeEndpointKey(const IpAddress& address);
weir_endpoint_value EncodeEndpointValue(const Endpoint& endpoint);
// nullopt when the key's family is neither IPv4 nor IPv6.
std::optional<Endpoint> DecodeEndpoint(const weir_endpoint_key& key, const weir_endpoint_value& value);

// "local-pod", "host", "ingress-isolated", "egress-isolated", "policy-pending", "ingress-audit",
// "egress-audit", in bit order; unknown bits in hex.
std::vector<std::string> EndpointFlagList(uint16_t flags);

// --- Conntrack (bpf/abi/conntrack.h) ---

struct ConntrackKeyFields {
  IpAddress source;
  uint16_t source_port = 0;  // host byte order
  IpAddress destination;
  uint16_t destination_port = 0;
  uint8_t proto = WEIR_PROTO_TCP;
};
// Both addresses must be of one family.
weir_ct_key EncodeConntrackKey(const ConntrackKeyFields& fields);

// --- Masquerade (bpf/abi/masquerade.h) ---

weir_nonmasq_key EncodeNonMasqueradeKey(const IpPrefix& cidr);  // the CIDR's network
// nullopt for a key this build cannot read.
std::optional<IpPrefix> DecodeNonMasqueradeKey(const weir_nonmasq_key& key);

// --- NetworkPolicy (bpf/abi/policy.h) ---

weir_policy_peer_key EncodePolicyPeerKey(const IpPrefix& prefix);  // the prefix's network
// nullopt for a key this build cannot read.
std::optional<IpPrefix> DecodePolicyPeerKey(const weir_policy_peer_key& key);

struct PolicyRuleFields {
  uint32_t policy_id = 0;
  uint8_t direction = WEIR_POLICY_INGRESS;
  uint32_t peer = WEIR_POLICY_PEER_ANY;  // identity, WEIR_POLICY_PEER_ANY or CIDR_CLASS | class
  std::optional<uint8_t> proto;          // nullopt: every protocol and port
  uint16_t port = 0;                     // host byte order; the first port of the prefix
  uint8_t port_prefix_length = 16;       // 16: one port, 0: every port of `proto`
  bool operator==(const PolicyRuleFields&) const = default;
};
weir_policy_rule_key EncodePolicyRuleKey(const PolicyRuleFields& fields);
// nullopt for a prefix length that is not one the writer uses.
std::optional<PolicyRuleFields> DecodePolicyRuleKey(const weir_policy_rule_key& key);

struct PolicyCidrFields {
  uint32_t policy_id = 0;
  uint8_t direction = WEIR_POLICY_INGRESS;
  IpPrefix cidr;
};
weir_policy_cidr_key EncodePolicyCidrKey(const PolicyCidrFields& fields);  // the CIDR's network
std::optional<PolicyCidrFields> DecodePolicyCidrKey(const weir_policy_cidr_key& key);

// "ingress", "egress", "direction-N".
std::string PolicyDirectionName(uint8_t direction);
// "any", "identity 257", "cidr-class 3".
std::string PolicyPeerName(uint32_t peer);
// "allowed", "denied", "audited", "verdict-N".
std::string PolicyVerdictName(uint8_t verdict);

// --- Text of whole keys and values, for logs, errors and the fake writer ---

std::string Render(uint32_t id);
std::string Render(const weir_service_key& key);      // "10.96.0.1:80/TCP/external"
std::string Render(const weir_service_value& value);  // "id=5 count=2"
std::string Render(const weir_slot_key& key);         // "5/1": service id 5, slot 1
std::string Render(const weir_backend& backend);      // "10.0.0.1:8080/TCP local"
std::string Render(const weir_endpoint_key& key);     // "10.0.0.1"
std::string Render(const weir_affinity_key& key);     // "10.0.0.1 service 5"
std::string Render(const weir_ct_key& key);           // "TCP 10.0.0.1:5000 -> 10.96.0.1:80"
std::string Render(const weir_nonmasq_key& key);      // "10.0.0.0/8"
std::string Render(const weir_sock_revnat_key& key);  // "cookie 7 10.0.0.1:8080"
std::string Render(const weir_policy_peer_key& key);  // "10.244.1.0/24"
std::string Render(const weir_policy_host_key& key);  // "10.244.1.5"
// "policy 5 ingress identity 257 TCP 80", "... TCP 1024-2047", "policy 5 egress any all protocols"
std::string Render(const weir_policy_rule_key& key);
std::string Render(const weir_policy_cidr_key& key);  // "policy 5 ingress 10.0.0.0/8"

}  // namespace weir::abi
