// The frontends of every Service, kept from one sync to the next so that a change to one Service
// costs one Service's translation and a handful of map writes, not a pass over the whole cluster.
//
// Conflicts resolve as kube-proxy's do, independent of arrival order: when Services claim the same
// address:port/protocol, the first in namespace/name order keeps it (both scopes of it); when it
// goes away, the next claimant takes over.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <vector>

#include "proxy/k8s/objects.h"
#include "proxy/lb/desired_state.h"

namespace weir::lb {

class FrontendTable {
 public:
  // Replaces everything `service` claims. An empty list withdraws its claims (a deleted or skipped
  // Service). A Service claiming one key twice keeps its first claim.
  void SetClaims(const k8s::ServiceRef& service, std::vector<FrontendClaim> claims);

  // Every frontend as resolved now, sorted by key.
  DesiredState Desired() const;

  // Every key whose outcome may have changed since the last TakeChanges() (or DiscardChanges()):
  // its current entry when claimed, a removal when not. The internal twin of each such key is
  // included either way.
  DesiredChanges TakeChanges();
  void DiscardChanges() { touched_.clear(); }

  size_t frontend_count() const { return claims_.size(); }

 private:
  // The claims on one external-scope key, by Service; the first is the one in effect.
  using Claimants = std::map<k8s::ServiceRef, FrontendClaim>;

  std::map<FrontendKey, Claimants> claims_;
  std::map<k8s::ServiceRef, std::vector<FrontendKey>> keys_of_service_;
  std::set<FrontendKey> touched_;
};

}  // namespace weir::lb
