// What one endpoint-direction's policy becomes in the datapath's maps, before any key is encoded:
// rules (peer, protocol, port prefix) and the CIDR prefixes that give an address its CIDR class.
//
// ipBlock and named-port address peers are matched on the raw address through the per-endpoint
// CIDR trie. Every prefix any of them names (a cidr, an except, an address) gets an entry whose
// class is the set of peers containing that whole prefix: for an address, the longest such prefix
// is the trie's answer, and the peers containing it are exactly the peers that match the address
// (prefixes either nest or are disjoint). So the trie needs one entry per named prefix, never a
// split of the address space, and a prefix no peer matches (an except) gets class 0.
#pragma once

#include <algorithm>
#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <set>

#include "lib/ip.h"
#include "proxy/policy/endpoint_policy.h"

namespace weir::policy_sync {

struct RuleEntry {
  uint32_t peer = 0;             // identity, WEIR_POLICY_PEER_ANY, or WEIR_POLICY_PEER_CIDR_CLASS | class
  std::optional<uint8_t> proto;  // nullopt: every protocol and port
  uint16_t port = 0;             // the port prefix (PortRangeToPrefixes)
  uint8_t port_prefix_length = 16;
  auto operator<=>(const RuleEntry&) const = default;
};

struct DirectionEntries {
  std::set<RuleEntry> rules;
  std::map<IpPrefix, uint32_t> cidrs;  // prefix (network) -> class, 0: matches no peer
  bool operator==(const DirectionEntries&) const = default;
};

// The CIDR classes of one endpoint-direction, kept across rewrites: a number names one set of peers
// for as long as it is in use and is never given to another set, so replacing entries one by one
// never makes a prefix's class mean something new.
class CidrClasses {
 public:
  uint32_t ClassOf(const std::set<policy::Peer>& peers);
  // Forgets the sets whose numbers are not in `in_use` (the numbers themselves are not reused).
  void Retain(const std::set<uint32_t>& in_use);
  // Numbers up to `taken` are in use by entries of unknown meaning (adopted from an earlier agent):
  // new sets get higher ones.
  void ReserveUpTo(uint32_t taken) { next_ = std::max(next_, taken + 1); }

 private:
  std::map<std::set<policy::Peer>, uint32_t> classes_;
  uint32_t next_ = 1;
};

// Empty when the direction is not isolated (nothing is looked up for it).
DirectionEntries DirectionEntriesOf(const policy::DirectionPolicy& direction, CidrClasses& classes);

}  // namespace weir::policy_sync
