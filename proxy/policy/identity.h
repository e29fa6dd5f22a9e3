// Security identities: the number a peer address stands for when policy is judged.
//
// Every pod with the same namespace, namespace labels and pod labels is interchangeable for
// NetworkPolicy, so it gets one number, and a per-endpoint policy lists numbers instead of
// addresses. The numbers are node-local: weir carries no identity on the wire (no tunnel header,
// no packet mark across nodes); each node's datapath maps a peer's address to an identity through
// its own LPM map (pod addresses, node addresses, the rest is world). So every node allocates on
// its own, needs no coordination, and two nodes may give one label set different numbers.
//
// Numbers below kFirstLocalIdentity are reserved for what the datapath must tell apart without
// labels. A number stays with its label set while any pod has it; a freed number is reused only
// once the fresh ones are used up, oldest freed first, so a stale datapath entry is unlikely to
// name a new label set.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "proxy/policy/label_selector.h"

namespace weir::policy {

using Identity = uint32_t;

// Reserved identities.
inline constexpr Identity kIdentityUnknown = 0;     // no entry: never allocated, never allowed by a selector
inline constexpr Identity kIdentityWorld = 1;       // any address the LPM map does not know (outside)
inline constexpr Identity kIdentityHost = 2;        // this node's addresses, and its hostNetwork pods
inline constexpr Identity kIdentityRemoteNode = 3;  // other nodes' addresses, and their hostNetwork pods
inline constexpr Identity kFirstLocalIdentity = 256;
// 16 bits, so that a datapath key can hold an identity in a u16 should it want to.
inline constexpr Identity kDefaultMaxIdentity = 65535;

// Name of a reserved identity ("world", ...), or "" for an allocated one.
const char* ReservedIdentityName(Identity identity);

// What a pod's identity is made of.
struct IdentityKey {
  std::string namespace_;
  Labels namespace_labels;
  Labels pod_labels;
  auto operator<=>(const IdentityKey&) const = default;
  std::string ToString() const;  // "ns x {ns-labels} {pod-labels}", for dumps and messages
};

class IdentityAllocator {
 public:
  explicit IdentityAllocator(Identity max_identity = kDefaultMaxIdentity) : max_identity_(max_identity) {}

  // One more holder of `key`: its identity, allocated when it had none. Fails when every number up
  // to max_identity is held.
  absl::StatusOr<Identity> Acquire(const IdentityKey& key);
  // One holder fewer; the number is freed with the last one. Unknown identities are ignored.
  void Release(Identity identity);

  // The live identities and their keys, in number order.
  const std::map<Identity, IdentityKey>& identities() const { return by_identity_; }
  std::optional<Identity> Find(const IdentityKey& key) const;
  const IdentityKey* KeyOf(Identity identity) const;

 private:
  struct Held {
    Identity identity;
    uint64_t holders;
  };

  Identity max_identity_;
  Identity next_fresh_ = kFirstLocalIdentity;
  std::deque<Identity> freed_;  // oldest first
  std::map<IdentityKey, Held> by_key_;
  std::map<Identity, IdentityKey> by_identity_;
};

}  // namespace weir::policy
