#include "proxy/policy_sync/policy_entries.h"

#include <vector>

#include "bpf/abi/policy.h"
#include "proxy/policy/identity.h"
#include "proxy/policy/port_prefix.h"

namespace weir::policy_sync {
namespace {

// The datapath tells these apart by number alone.
static_assert(policy::kIdentityWorld == WEIR_IDENTITY_WORLD);
static_assert(policy::kIdentityHost == WEIR_IDENTITY_HOST);
static_assert(policy::kFirstLocalIdentity == WEIR_IDENTITY_FIRST_POD);

using policy::AllowEntry;
using policy::Peer;
using policy::PeerKind;

bool Encloses(const IpPrefix& outer, const IpPrefix& inner) {
  return outer.family() == inner.family() && outer.length() <= inner.length() &&
         outer.Contains(inner.address());
}

void AddRules(uint32_t peer, const AllowEntry& entry, std::set<RuleEntry>& rules) {
  if (!entry.protocol.has_value()) {
    rules.insert(RuleEntry{.peer = peer});
    return;
  }
  const uint8_t proto = static_cast<uint8_t>(*entry.protocol);
  for (const policy::PortPrefix& prefix : policy::PortRangeToPrefixes(entry.ports.first, entry.ports.last)) {
    rules.insert(
        RuleEntry{.peer = peer, .proto = proto, .port = prefix.port, .port_prefix_length = prefix.length});
  }
}

// The prefixes a peer names: its CIDR (or address) and its excepts.
std::vector<IpPrefix> NamedPrefixes(const Peer& peer) {
  std::vector<IpPrefix> named = {peer.cidr.Network()};
  for (const IpPrefix& except : peer.except) named.push_back(except.Network());
  return named;
}

bool PeerMatchesAllOf(const Peer& peer, const IpPrefix& prefix) {
  if (!Encloses(peer.cidr.Network(), prefix)) return false;
  for (const IpPrefix& except : peer.except) {
    if (Encloses(except.Network(), prefix)) return false;
  }
  return true;
}

}  // namespace

uint32_t CidrClasses::ClassOf(const std::set<Peer>& peers) {
  auto [it, inserted] = classes_.try_emplace(peers, next_);
  if (inserted) ++next_;
  return it->second;
}

void CidrClasses::Retain(const std::set<uint32_t>& in_use) {
  std::erase_if(classes_, [&](const auto& entry) { return !in_use.contains(entry.second); });
}

DirectionEntries DirectionEntriesOf(const policy::DirectionPolicy& direction, CidrClasses& classes) {
  DirectionEntries out;
  if (!direction.isolated) return out;
  std::map<Peer, std::vector<const AllowEntry*>> address_peers;  // kCidr and kAddress peers
  for (const AllowEntry& entry : direction.allowed) {
    switch (entry.peer.kind) {
      case PeerKind::kAny: AddRules(WEIR_POLICY_PEER_ANY, entry, out.rules); break;
      case PeerKind::kIdentity: AddRules(entry.peer.identity, entry, out.rules); break;
      case PeerKind::kCidr:
      case PeerKind::kAddress: address_peers[entry.peer].push_back(&entry); break;
    }
  }
  std::set<IpPrefix> named;
  for (const auto& [peer, entries] : address_peers) {
    for (const IpPrefix& prefix : NamedPrefixes(peer)) named.insert(prefix);
  }
  for (const IpPrefix& prefix : named) {
    std::set<Peer> matching;
    for (const auto& [peer, entries] : address_peers) {
      if (PeerMatchesAllOf(peer, prefix)) matching.insert(peer);
    }
    if (matching.empty()) {
      // Only needed to hide a shorter prefix that has a class.
      bool enclosed = false;
      for (const IpPrefix& other : named) enclosed |= other != prefix && Encloses(other, prefix);
      if (enclosed) out.cidrs[prefix] = 0;
      continue;
    }
    const uint32_t cidr_class = classes.ClassOf(matching);
    out.cidrs[prefix] = cidr_class;
    for (const Peer& peer : matching) {
      for (const AllowEntry* entry : address_peers[peer]) {
        AddRules(WEIR_POLICY_PEER_CIDR_CLASS | cidr_class, *entry, out.rules);
      }
    }
  }
  return out;
}

}  // namespace weir::policy_sync
