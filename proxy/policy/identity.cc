#include "proxy/policy/identity.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weir::policy {
namespace {

std::string LabelsToString(const Labels& labels) {
  return absl::StrCat("{", absl::StrJoin(labels, ",", absl::PairFormatter("=")), "}");
}

}  // namespace

const char* ReservedIdentityName(Identity identity) {
  switch (identity) {
    case kIdentityUnknown: return "unknown";
    case kIdentityWorld: return "world";
    case kIdentityHost: return "host";
    case kIdentityRemoteNode: return "remote-node";
    default: return identity < kFirstLocalIdentity ? "reserved" : "";
  }
}

std::string IdentityKey::ToString() const {
  return absl::StrCat("ns ", namespace_, " ", LabelsToString(namespace_labels), " ",
                      LabelsToString(pod_labels));
}

absl::StatusOr<Identity> IdentityAllocator::Acquire(const IdentityKey& key) {
  if (auto found = by_key_.find(key); found != by_key_.end()) {
    ++found->second.holders;
    return found->second.identity;
  }
  Identity identity = kIdentityUnknown;
  if (next_fresh_ <= max_identity_) {
    identity = next_fresh_++;
  } else if (!freed_.empty()) {
    identity = freed_.front();
    freed_.pop_front();
  } else {
    return absl::ResourceExhaustedError(absl::StrCat("all ", max_identity_ - kFirstLocalIdentity + 1,
                                                     " identities are in use; none for ", key.ToString()));
  }
  by_key_.emplace(key, Held{identity, 1});
  by_identity_.emplace(identity, key);
  return identity;
}

void IdentityAllocator::Release(Identity identity) {
  auto key = by_identity_.find(identity);
  if (key == by_identity_.end()) return;
  auto held = by_key_.find(key->second);
  if (--held->second.holders > 0) return;
  by_key_.erase(held);
  by_identity_.erase(key);
  freed_.push_back(identity);
}

std::optional<Identity> IdentityAllocator::Find(const IdentityKey& key) const {
  auto found = by_key_.find(key);
  if (found == by_key_.end()) return std::nullopt;
  return found->second.identity;
}

const IdentityKey* IdentityAllocator::KeyOf(Identity identity) const {
  auto found = by_identity_.find(identity);
  return found == by_identity_.end() ? nullptr : &found->second;
}

}  // namespace weir::policy
