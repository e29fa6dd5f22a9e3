#include "proxy/policy/dump.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weir::policy {
namespace {

std::string PeerText(const Peer& peer, const IdentityNamer& name_of) {
  switch (peer.kind) {
    case PeerKind::kAny: return "any";
    case PeerKind::kIdentity: return absl::StrCat("identity ", name_of(peer.identity));
    case PeerKind::kAddress: return absl::StrCat("address ", peer.cidr.address().ToString());
    case PeerKind::kCidr: {
      std::string text = absl::StrCat("cidr ", peer.cidr.ToString());
      if (!peer.except.empty()) {
        absl::StrAppend(&text, " except ",
                        absl::StrJoin(peer.except, ",", [](std::string* out, const IpPrefix& p) {
                          out->append(p.ToString());
                        }));
      }
      return text;
    }
  }
  return "?";
}

std::string PortsText(const AllowEntry& entry) {
  if (!entry.protocol) return "all protocols";
  std::string text = L4ProtoName(*entry.protocol);
  if (entry.ports.all()) return text + " all ports";
  absl::StrAppend(&text, " ", entry.ports.first);
  if (entry.ports.last != entry.ports.first) absl::StrAppend(&text, "-", entry.ports.last);
  return text;
}

void AppendDirection(std::string& out, const char* name, const DirectionPolicy& direction,
                     const IdentityNamer& name_of) {
  if (!direction.isolated) {
    absl::StrAppend(&out, "  ", name, ": not isolated\n");
    return;
  }
  absl::StrAppend(
      &out, "  ", name, ": isolated by ",
      absl::StrJoin(direction.policies, ", ",
                    [](std::string* text, const ObjectRef& ref) { text->append(ref.ToString()); }),
      direction.allowed.empty() ? " (nothing allowed)" : "", "\n");
  for (const AllowEntry& entry : direction.allowed) {
    absl::StrAppend(&out, "    allow ", DumpEntry(entry, name_of), "\n");
  }
}

}  // namespace

std::string DumpEntry(const AllowEntry& entry, const IdentityNamer& name_of) {
  return absl::StrCat(PeerText(entry.peer, name_of), " ", PortsText(entry));
}

IdentityNamer NumberNamer() {
  return [](Identity identity) {
    const std::string reserved = ReservedIdentityName(identity);
    return reserved.empty() ? absl::StrCat(identity) : absl::StrCat(identity, " (", reserved, ")");
  };
}

IdentityNamer KeyNamer(const IdentityAllocator& identities) {
  return [&identities](Identity identity) {
    const IdentityKey* key = identities.KeyOf(identity);
    return key == nullptr ? std::string(ReservedIdentityName(identity)) : "[" + key->ToString() + "]";
  };
}

std::string DumpIdentities(const IdentityAllocator& identities) {
  std::string out;
  for (const auto& [identity, key] : identities.identities()) {
    absl::StrAppend(&out, "identity ", identity, ": ", key.ToString(), "\n");
  }
  return out;
}

std::string DumpEndpoints(const std::map<ObjectRef, EndpointPolicy>& endpoints,
                          const IdentityNamer& name_of) {
  std::string out;
  for (const auto& [ref, policy] : endpoints) {
    absl::StrAppend(&out, "endpoint ", ref.ToString(), " identity ", name_of(policy.identity), " addresses ",
                    policy.addresses.empty() ? "none"
                                             : absl::StrJoin(policy.addresses, ",",
                                                             [](std::string* text, const IpAddress& address) {
                                                               text->append(address.ToString());
                                                             }),
                    "\n");
    AppendDirection(out, "ingress", policy.ingress, name_of);
    AppendDirection(out, "egress", policy.egress, name_of);
  }
  return out;
}

}  // namespace weir::policy
