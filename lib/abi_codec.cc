#include "lib/abi_codec.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace weir::abi {
namespace {

struct FlagName {
  uint32_t bit;
  const char* name;
};

std::vector<std::string> FlagList(uint32_t flags, std::initializer_list<FlagName> names) {
  std::vector<std::string> list;
  uint32_t known = 0;
  for (const FlagName& flag : names) {
    known |= flag.bit;
    if (flags & flag.bit) list.push_back(flag.name);
  }
  if (const uint32_t unknown = flags & ~known; unknown != 0) list.push_back(absl::StrFormat("0x%x", unknown));
  return list;
}

}  // namespace

uint8_t FamilyCode(const IpAddress& address) { return address.is_v4() ? WEIR_FAMILY_IPV4 : WEIR_FAMILY_IPV6; }

weir_addr EncodeAddress(const IpAddress& address) {
  weir_addr addr{};
  std::memcpy(addr.bytes, address.bytes().data(), address.byte_length());
  return addr;
}

std::optional<IpAddress> DecodeAddress(const weir_addr& addr, uint8_t family) {
  if (family == WEIR_FAMILY_IPV4) return IpAddress::FromBytes(IpFamily::kV4, addr.bytes);
  if (family == WEIR_FAMILY_IPV6) return IpAddress::FromBytes(IpFamily::kV6, addr.bytes);
  return std::nullopt;
}

namespace {

// Service keys and backends share the (address, port, protocol, family) fields.
template <typename Abi, typename Fields>
Abi EncodeAddressPortProto(const Fields& fields) {
  Abi abi{};
  abi.addr = EncodeAddress(fields.address);
  abi.port = htons(fields.port);
  abi.proto = fields.proto;
  abi.family = FamilyCode(fields.address);
  return abi;
}

template <typename Fields, typename Abi>
std::optional<Fields> DecodeAddressPortProto(const Abi& abi) {
  std::optional<IpAddress> address = DecodeAddress(abi.addr, abi.family);
  if (!address.has_value()) return std::nullopt;
  Fields fields{};
  fields.address = *address;
  fields.port = ntohs(abi.port);
  fields.proto = abi.proto;
  return fields;
}

}  // namespace

std::string RenderAddress(const weir_addr& addr, uint8_t family) {
  std::optional<IpAddress> address = DecodeAddress(addr, family);
  return address.has_value() ? address->ToString() : absl::StrCat("<family ", family, ">");
}

std::string RenderAddressPort(const IpAddress& address, uint16_t port) {
  return address.is_v4() ? absl::StrCat(address.ToString(), ":", port)
                         : absl::StrCat("[", address.ToString(), "]:", port);
}

std::string RenderAddressPort(const weir_addr& addr, uint8_t family, uint16_t port_be) {
  std::optional<IpAddress> address = DecodeAddress(addr, family);
  if (!address.has_value()) return absl::StrCat("<family ", family, ">:", ntohs(port_be));
  return RenderAddressPort(*address, ntohs(port_be));
}

std::string FamilyName(uint8_t family) {
  switch (family) {
    case WEIR_FAMILY_IPV4: return "ipv4";
    case WEIR_FAMILY_IPV6: return "ipv6";
    default: return absl::StrCat("family-", family);
  }
}

std::string ProtoName(uint8_t proto) {
  switch (proto) {
    case WEIR_PROTO_TCP: return "TCP";
    case WEIR_PROTO_UDP: return "UDP";
    case WEIR_PROTO_SCTP: return "SCTP";
    default: return absl::StrCat("proto-", proto);
  }
}

std::string ScopeName(uint8_t scope) {
  switch (scope) {
    case WEIR_SCOPE_EXTERNAL: return "external";
    case WEIR_SCOPE_INTERNAL: return "internal";
    default: return absl::StrCat("scope-", scope);
  }
}

weir_service_key EncodeServiceKey(const ServiceKeyFields& fields) {
  weir_service_key key = EncodeAddressPortProto<weir_service_key>(fields);
  key.scope = fields.scope;
  return key;
}

std::optional<ServiceKeyFields> DecodeServiceKey(const weir_service_key& key) {
  std::optional<ServiceKeyFields> fields = DecodeAddressPortProto<ServiceKeyFields>(key);
  if (fields.has_value()) fields->scope = key.scope;
  return fields;
}

weir_backend EncodeBackend(const BackendFields& fields) {
  weir_backend backend = EncodeAddressPortProto<weir_backend>(fields);
  backend.flags = fields.flags;
  return backend;
}

void CarryBackends(weir_service_value& value, const std::vector<uint32_t>& slot_ids,
                   const std::function<const weir_backend*(uint32_t)>& backend_of) {
  value.inline_count = 0;
  std::memset(value.backends, 0, sizeof(value.backends));
  for (size_t i = 0; i < slot_ids.size() && i < WEIR_SERVICE_INLINE_BACKENDS; ++i) {
    const weir_backend* backend = backend_of(slot_ids[i]);
    if (backend == nullptr) break;
    weir_inline_backend& copy = value.backends[i];
    copy.addr = backend->addr;
    copy.port = backend->port;
    copy.family = backend->family;
    copy.id = slot_ids[i];
    value.inline_count = static_cast<uint8_t>(i + 1);
  }
}

std::optional<BackendFields> DecodeBackend(const weir_backend& backend) {
  std::optional<BackendFields> fields = DecodeAddressPortProto<BackendFields>(backend);
  if (fields.has_value()) fields->flags = backend.flags;
  return fields;
}

weir_affinity_key EncodeAffinityKey(const IpAddress& client, uint32_t service_id) {
  weir_affinity_key key{};
  key.client = EncodeAddress(client);
  key.service_id = service_id;
  key.family = FamilyCode(client);
  return key;
}

std::vector<std::string> ServiceFlagList(uint16_t flags) {
  return FlagList(flags, {{WEIR_SVC_CLUSTER_IP, "cluster-ip"},
                          {WEIR_SVC_NODE_PORT, "node-port"},
                          {WEIR_SVC_EXTERNAL_IP, "external-ip"},
                          {WEIR_SVC_LOAD_BALANCER, "load-balancer"},
                          {WEIR_SVC_AFFINITY, "affinity"},
                          {WEIR_SVC_LOCAL_ONLY, "local-only"},
                          {WEIR_SVC_TWO_SCOPES, "two-scopes"},
                          {WEIR_SVC_MAGLEV, "maglev"},
                          {WEIR_SVC_DSR, "dsr"}});
}

std::vector<std::string> BackendFlagList(uint16_t flags) {
  return FlagList(flags, {{WEIR_BACKEND_LOCAL, "local"}, {WEIR_BACKEND_TERMINATING, "terminating"}});
}

std::vector<std::string> ConntrackFlagList(uint8_t flags) {
  return FlagList(flags, {{WEIR_CT_SNAT, "snat"},
                          {WEIR_CT_DSR, "dsr"},
                          {WEIR_CT_SEEN_REPLY, "seen-reply"},
                          {WEIR_CT_CLOSING, "closing"},
                          {WEIR_CT_MASQ, "masq"},
                          {WEIR_CT_INBOUND, "inbound"}});
}

std::string ConntrackKindName(uint8_t kind) {
  switch (kind) {
    case WEIR_CT_FORWARD: return "forward";
    case WEIR_CT_REPLY: return "reply";
    default: return absl::StrCat("kind-", kind);
  }
}

weir_endpoint_key EncodeEndpointKey(const IpAddress& address) {
  weir_endpoint_key key{};
  key.addr = EncodeAddress(address);
  key.family = FamilyCode(address);
  return key;
}

weir_endpoint_value EncodeEndpointValue(const Endpoint& endpoint) {
  weir_endpoint_value value{};
  value.host_ifindex = static_cast<uint32_t>(endpoint.host_ifindex);
  std::memcpy(value.pod_mac, endpoint.pod_mac.data(), sizeof(value.pod_mac));
  value.flags = endpoint.flags;
  value.policy_id = endpoint.policy_id;
  value.pod_id = endpoint.pod_id;
  return value;
}

std::optional<Endpoint> DecodeEndpoint(const weir_endpoint_key& key, const weir_endpoint_value& value) {
  std::optional<IpAddress> address = DecodeAddress(key.addr, key.family);
  if (!address.has_value()) return std::nullopt;
  Endpoint endpoint;
  endpoint.address = *address;
  endpoint.host_ifindex = static_cast<int>(value.host_ifindex);
  std::memcpy(endpoint.pod_mac.data(), value.pod_mac, sizeof(value.pod_mac));
  endpoint.flags = value.flags;
  endpoint.policy_id = value.policy_id;
  endpoint.pod_id = value.pod_id;
  return endpoint;
}

std::vector<std::string> EndpointFlagList(uint16_t flags) {
  return FlagList(flags, {{WEIR_ENDPOINT_LOCAL_POD, "local-pod"},
                          {WEIR_ENDPOINT_HOST, "host"},
                          {WEIR_ENDPOINT_INGRESS_ISOLATED, "ingress-isolated"},
                          {WEIR_ENDPOINT_EGRESS_ISOLATED, "egress-isolated"},
                          {WEIR_ENDPOINT_POLICY_PENDING, "policy-pending"},
                          {WEIR_ENDPOINT_INGRESS_AUDIT, "ingress-audit"},
                          {WEIR_ENDPOINT_EGRESS_AUDIT, "egress-audit"},
                          {WEIR_ENDPOINT_BANDWIDTH, "bandwidth"}});
}

weir_ct_key EncodeConntrackKey(const ConntrackKeyFields& fields) {
  weir_ct_key key{};
  key.saddr = EncodeAddress(fields.source);
  key.daddr = EncodeAddress(fields.destination);
  key.sport = htons(fields.source_port);
  key.dport = htons(fields.destination_port);
  key.proto = fields.proto;
  key.family = FamilyCode(fields.source);
  return key;
}

weir_nonmasq_key EncodeNonMasqueradeKey(const IpPrefix& cidr) {
  const IpPrefix network = cidr.Network();
  weir_nonmasq_key key{};
  key.prefixlen = WEIR_NONMASQ_FAMILY_BITS + static_cast<uint32_t>(network.length());
  key.family = FamilyCode(network.address());
  key.addr = EncodeAddress(network.address());
  return key;
}

std::optional<IpPrefix> DecodeNonMasqueradeKey(const weir_nonmasq_key& key) {
  std::optional<IpAddress> address = DecodeAddress(key.addr, key.family);
  if (!address.has_value() || key.prefixlen < WEIR_NONMASQ_FAMILY_BITS ||
      key.prefixlen - WEIR_NONMASQ_FAMILY_BITS > static_cast<uint32_t>(address->bit_length())) {
    return std::nullopt;
  }
  return IpPrefix(*address, static_cast<int>(key.prefixlen - WEIR_NONMASQ_FAMILY_BITS));
}

namespace {

// Bits of `length` kept from the front of `bytes` (the rest cleared).
void KeepPrefix(uint8_t* bytes, size_t size, int length) {
  for (size_t i = 0; i < size; ++i) {
    const int keep = std::clamp(length - static_cast<int>(i * 8), 0, 8);
    bytes[i] &= keep == 8 ? 0xff : static_cast<uint8_t>(0xff00 >> keep);
  }
}

std::optional<IpPrefix> DecodeFamilyPrefix(const weir_addr& addr, uint8_t family, uint32_t prefixlen,
                                           uint32_t fixed_bits) {
  std::optional<IpAddress> address = DecodeAddress(addr, family);
  if (!address.has_value() || prefixlen < fixed_bits ||
      prefixlen - fixed_bits > static_cast<uint32_t>(address->bit_length())) {
    return std::nullopt;
  }
  return IpPrefix(*address, static_cast<int>(prefixlen - fixed_bits));
}

}  // namespace

weir_policy_peer_key EncodePolicyPeerKey(const IpPrefix& prefix) {
  const IpPrefix network = prefix.Network();
  weir_policy_peer_key key{};
  key.prefixlen = WEIR_POLICY_PEER_FAMILY_BITS + static_cast<uint32_t>(network.length());
  key.family = FamilyCode(network.address());
  key.addr = EncodeAddress(network.address());
  return key;
}

std::optional<IpPrefix> DecodePolicyPeerKey(const weir_policy_peer_key& key) {
  return DecodeFamilyPrefix(key.addr, key.family, key.prefixlen, WEIR_POLICY_PEER_FAMILY_BITS);
}

weir_policy_rule_key EncodePolicyRuleKey(const PolicyRuleFields& fields) {
  weir_policy_rule_key key{};
  key.policy_id = fields.policy_id;
  key.peer = fields.peer;
  key.direction = fields.direction;
  if (!fields.proto.has_value()) {
    key.prefixlen = WEIR_POLICY_RULE_FIXED_BITS;
    return key;
  }
  key.proto = *fields.proto;
  const uint8_t length = std::min<uint8_t>(fields.port_prefix_length, 16);
  uint8_t port[2] = {static_cast<uint8_t>(fields.port >> 8), static_cast<uint8_t>(fields.port)};
  KeepPrefix(port, 2, length);
  std::memcpy(&key.port, port, 2);
  key.prefixlen = WEIR_POLICY_RULE_PROTO_BITS + length;
  return key;
}

std::optional<PolicyRuleFields> DecodePolicyRuleKey(const weir_policy_rule_key& key) {
  PolicyRuleFields fields;
  fields.policy_id = key.policy_id;
  fields.peer = key.peer;
  fields.direction = key.direction;
  if (key.prefixlen == WEIR_POLICY_RULE_FIXED_BITS) return fields;
  if (key.prefixlen < WEIR_POLICY_RULE_PROTO_BITS || key.prefixlen > WEIR_POLICY_RULE_FULL_BITS) {
    return std::nullopt;
  }
  fields.proto = key.proto;
  fields.port = ntohs(key.port);
  fields.port_prefix_length = static_cast<uint8_t>(key.prefixlen - WEIR_POLICY_RULE_PROTO_BITS);
  return fields;
}

weir_policy_cidr_key EncodePolicyCidrKey(const PolicyCidrFields& fields) {
  const IpPrefix network = fields.cidr.Network();
  weir_policy_cidr_key key{};
  key.prefixlen = WEIR_POLICY_CIDR_FIXED_BITS + static_cast<uint32_t>(network.length());
  key.policy_id = fields.policy_id;
  key.direction = fields.direction;
  key.family = FamilyCode(network.address());
  key.addr = EncodeAddress(network.address());
  return key;
}

std::optional<PolicyCidrFields> DecodePolicyCidrKey(const weir_policy_cidr_key& key) {
  std::optional<IpPrefix> cidr =
      DecodeFamilyPrefix(key.addr, key.family, key.prefixlen, WEIR_POLICY_CIDR_FIXED_BITS);
  if (!cidr.has_value()) return std::nullopt;
  return PolicyCidrFields{.policy_id = key.policy_id, .direction = key.direction, .cidr = *cidr};
}

std::string PolicyDirectionName(uint8_t direction) {
  switch (direction) {
    case WEIR_POLICY_INGRESS: return "ingress";
    case WEIR_POLICY_EGRESS: return "egress";
    default: return absl::StrCat("direction-", direction);
  }
}

std::string PolicyPeerName(uint32_t peer) {
  if (peer == WEIR_POLICY_PEER_ANY) return "any";
  if (peer & WEIR_POLICY_PEER_CIDR_CLASS)
    return absl::StrCat("cidr-class ", peer & ~WEIR_POLICY_PEER_CIDR_CLASS);
  return absl::StrCat("identity ", peer);
}

std::string PolicyVerdictName(uint8_t verdict) {
  switch (verdict) {
    case WEIR_POLICY_ALLOWED: return "allowed";
    case WEIR_POLICY_DENIED: return "denied";
    case WEIR_POLICY_AUDITED: return "audited";
    default: return absl::StrCat("verdict-", verdict);
  }
}

std::string Render(uint32_t id) { return absl::StrCat(id); }

std::string Render(const weir_service_key& key) {
  return absl::StrCat(RenderAddressPort(key.addr, key.family, key.port), "/", ProtoName(key.proto), "/",
                      ScopeName(key.scope));
}

std::string Render(const weir_service_value& value) {
  return absl::StrCat("id=", value.service_id, " count=", value.backend_count);
}

std::string Render(const weir_slot_key& key) { return absl::StrCat(key.service_id, "/", key.slot); }

std::string Render(const weir_backend& backend) {
  std::string text = absl::StrCat(RenderAddressPort(backend.addr, backend.family, backend.port), "/",
                                  ProtoName(backend.proto));
  for (const std::string& flag : BackendFlagList(backend.flags)) absl::StrAppend(&text, " ", flag);
  return text;
}

std::string Render(const weir_endpoint_key& key) { return RenderAddress(key.addr, key.family); }

std::string Render(const weir_affinity_key& key) {
  return absl::StrCat(RenderAddress(key.client, key.family), " service ", key.service_id);
}

std::string Render(const weir_ct_key& key) {
  return absl::StrCat(ProtoName(key.proto), " ", RenderAddressPort(key.saddr, key.family, key.sport), " -> ",
                      RenderAddressPort(key.daddr, key.family, key.dport));
}

std::string Render(const weir_nonmasq_key& key) {
  std::optional<IpPrefix> cidr = DecodeNonMasqueradeKey(key);
  return cidr.has_value() ? cidr->ToString()
                          : absl::StrCat("<prefix ", key.prefixlen, " of family ", key.family, ">");
}

std::string Render(const weir_sock_revnat_key& key) {
  return absl::StrCat("cookie ", key.cookie, " ", RenderAddressPort(key.addr, key.family, key.port));
}

}  // namespace weir::abi

namespace weir::abi {

std::string Render(const weir_policy_peer_key& key) {
  std::optional<IpPrefix> prefix = DecodePolicyPeerKey(key);
  return prefix.has_value() ? prefix->ToString()
                            : absl::StrCat("<prefix ", key.prefixlen, " of family ", key.family, ">");
}

std::string Render(const weir_policy_host_key& key) { return RenderAddress(key.addr, key.family); }

std::string Render(const weir_policy_rule_key& key) {
  std::string text = absl::StrCat("policy ", key.policy_id, " ", PolicyDirectionName(key.direction), " ",
                                  PolicyPeerName(key.peer));
  std::optional<PolicyRuleFields> fields = DecodePolicyRuleKey(key);
  if (!fields.has_value()) return absl::StrCat(text, " <prefix ", key.prefixlen, ">");
  if (!fields->proto.has_value()) return absl::StrCat(text, " all protocols");
  const uint32_t span = 1u << (16 - fields->port_prefix_length);
  const uint32_t last = fields->port + span - 1;
  absl::StrAppend(&text, " ", ProtoName(*fields->proto), " ", fields->port);
  if (span > 1) absl::StrAppend(&text, "-", last);
  return text;
}

std::string Render(const weir_policy_cidr_key& key) {
  std::optional<PolicyCidrFields> fields = DecodePolicyCidrKey(key);
  if (!fields.has_value()) return absl::StrCat("policy ", key.policy_id, " <prefix ", key.prefixlen, ">");
  return absl::StrCat("policy ", fields->policy_id, " ", PolicyDirectionName(fields->direction), " ",
                      fields->cidr.ToString());
}

}  // namespace weir::abi
