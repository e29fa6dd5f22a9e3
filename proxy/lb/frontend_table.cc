#include "proxy/lb/frontend_table.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/abi_codec.h"
#include "proxy/lb/dump.h"
#include "spdlog/spdlog.h"

namespace weir::lb {
namespace {

FrontendKey InternalTwinOf(FrontendKey key) {
  key.scope = Scope::kInternal;
  return key;
}

std::string Describe(const FrontendKey& key) {
  return absl::StrCat(abi::RenderAddressPort(key.address, key.port), "/", L4ProtoName(key.proto));
}

}  // namespace

void FrontendTable::SetClaims(const k8s::ServiceRef& service, std::vector<FrontendClaim> claims) {
  // The Service's previous claims come out first; a claim that comes back unchanged changes no
  // outcome and is not reported.
  std::map<FrontendKey, FrontendClaim> previous;
  if (auto known = keys_of_service_.find(service); known != keys_of_service_.end()) {
    for (const FrontendKey& key : known->second) {
      auto claimants = claims_.find(key);
      auto claim = claimants->second.find(service);
      previous.emplace(key, std::move(claim->second));
      claimants->second.erase(claim);
      if (claimants->second.empty()) claims_.erase(claimants);
    }
    keys_of_service_.erase(known);
  }

  std::vector<FrontendKey> keys;
  for (FrontendClaim& claim : claims) {
    const FrontendKey key = KeyOf(claim.external);
    Claimants& claimants = claims_[key];
    if (claimants.contains(service)) continue;  // its own repeat (an externalIP equal to its LB IP)
    auto was = previous.find(key);
    const bool unchanged = was != previous.end() && was->second == claim;
    if (was != previous.end()) previous.erase(was);
    auto [it, inserted] = claimants.emplace(service, std::move(claim));
    keys.push_back(key);
    if (unchanged) continue;
    touched_.insert(key);
    if (claimants.size() > 1) {
      const k8s::ServiceRef& winner = claimants.begin()->first;
      spdlog::warn("frontend {} is claimed by {} Services; {} keeps it{}", Describe(key), claimants.size(),
                   winner.ToString(),
                   winner == service ? "" : absl::StrCat(", ignoring it for ", service.ToString()));
    }
  }
  for (const auto& [key, claim] : previous) touched_.insert(key);  // withdrawn
  if (!keys.empty()) keys_of_service_.emplace(service, std::move(keys));
}

DesiredState FrontendTable::Desired() const {
  // A key's internal twin differs from it only in the scope, the last and larger field of the
  // key, so it sorts right after it and the result is sorted as DesiredState requires.
  DesiredState state;
  state.frontends.reserve(claims_.size());
  for (const auto& [key, claimants] : claims_) {
    const FrontendClaim& claim = claimants.begin()->second;
    state.frontends.push_back(claim.external);
    if (claim.internal) state.frontends.push_back(*claim.internal);
  }
  return state;
}

DesiredChanges FrontendTable::TakeChanges() {
  DesiredChanges changes;
  for (const FrontendKey& key : touched_) {
    auto claimants = claims_.find(key);
    if (claimants == claims_.end()) {
      changes.removals.push_back(key);
      changes.removals.push_back(InternalTwinOf(key));
      continue;
    }
    const FrontendClaim& claim = claimants->second.begin()->second;
    changes.upserts.push_back(claim.external);
    if (claim.internal) {
      changes.upserts.push_back(*claim.internal);
    } else {
      changes.removals.push_back(InternalTwinOf(key));
    }
  }
  touched_.clear();
  return changes;
}

}  // namespace weir::lb
