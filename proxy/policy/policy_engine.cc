#include "proxy/policy/policy_engine.h"

#include <utility>

#include "proxy/policy/compute.h"

namespace weir::policy {
namespace {

ObjectRef RefOf(const k8s::ObjectMeta& meta) { return {meta.namespace_, meta.name}; }

bool RulesSelectAny(const std::vector<k8s::NetworkPolicyRule>& rules, const std::string& policy_namespace,
                    const std::set<IdentityKey>& keys) {
  for (const k8s::NetworkPolicyRule& rule : rules) {
    for (const k8s::NetworkPolicyPeer& peer : rule.peers) {
      for (const IdentityKey& key : keys) {
        if (PeerSelects(peer, policy_namespace, key)) return true;
      }
    }
  }
  return false;
}

// Whether a pod's change can alter what a policy allows, beyond its identity.
bool PeerFactsDiffer(const k8s::Pod& a, const k8s::Pod& b) {
  return a.pod_ips != b.pod_ips || a.ports != b.ports || a.host_network != b.host_network;
}

}  // namespace

PolicyEngine::PolicyEngine(std::string node_name, Identity max_identity) {
  state_.node_name = std::move(node_name);
  state_.identities = IdentityAllocator(max_identity);
}

absl::Status PolicyEngine::AssignIdentity(const ObjectRef& ref, PodState& pod,
                                          std::optional<Identity> previous) {
  pod.identity.reset();
  without_identity_.erase(ref);
  absl::Status status;
  if (!pod.pod.host_network) {
    absl::StatusOr<Identity> acquired = state_.identities.Acquire(state_.KeyOf(pod.pod));
    if (acquired.ok()) {
      pod.identity = *acquired;
    } else {
      status = acquired.status();
      without_identity_.insert(ref);
    }
  }
  if (previous) state_.identities.Release(*previous);
  return status;
}

void PolicyEngine::RetryIdentities(PolicyChanges& changes) {
  std::set<ObjectRef> candidates;
  std::set<IdentityKey> keys;
  for (auto it = without_identity_.begin(); it != without_identity_.end();) {
    PodState& pod = state_.pods.at(*it);
    absl::StatusOr<Identity> acquired = state_.identities.Acquire(state_.KeyOf(pod.pod));
    if (!acquired.ok()) break;  // none free: the others would fail too
    pod.identity = *acquired;
    keys.insert(state_.KeyOf(pod.pod));
    candidates.insert(*it);
    it = without_identity_.erase(it);
  }
  if (candidates.empty()) return;
  AddOrDeferDependents(keys, candidates);
  Recompute(candidates, changes);
}

std::set<ObjectRef> PolicyEngine::SubjectsOf(const k8s::NetworkPolicy& policy) const {
  std::set<ObjectRef> subjects;
  const std::string& ns = policy.metadata.namespace_;
  for (auto it = state_.pods.lower_bound(ObjectRef{ns, ""});
       it != state_.pods.end() && it->first.namespace_ == ns; ++it) {
    if (state_.IsEndpoint(it->second.pod) && PolicySelects(policy, it->second.pod))
      subjects.insert(it->first);
  }
  return subjects;
}

void PolicyEngine::AddDependents(const std::set<IdentityKey>& keys, std::set<ObjectRef>& candidates) const {
  for (const auto& [ref, policy] : state_.policies) {
    const bool depends = HasEgressNamedPort(policy) ||
                         (policy.ingress_type && RulesSelectAny(policy.ingress, ref.namespace_, keys)) ||
                         (policy.egress_type && RulesSelectAny(policy.egress, ref.namespace_, keys));
    if (!depends) continue;
    std::set<ObjectRef> subjects = SubjectsOf(policy);
    candidates.insert(subjects.begin(), subjects.end());
  }
}

void PolicyEngine::AddOrDeferDependents(const std::set<IdentityKey>& keys, std::set<ObjectRef>& candidates) {
  if (batching_) {
    batch_keys_.insert(keys.begin(), keys.end());
    return;
  }
  AddDependents(keys, candidates);
}

void PolicyEngine::BeginBatch() { batching_ = true; }

PolicyChanges PolicyEngine::EndBatch() {
  batching_ = false;
  PolicyChanges changes;
  std::set<ObjectRef> candidates = std::exchange(batch_candidates_, {});
  // With the policies as they are now: one that went in the batch recomputed its subjects itself.
  AddDependents(std::exchange(batch_keys_, {}), candidates);
  Recompute(candidates, changes);
  return changes;
}

void PolicyEngine::Recompute(const std::set<ObjectRef>& candidates, PolicyChanges& changes) {
  if (batching_) {
    batch_candidates_.insert(candidates.begin(), candidates.end());
    return;
  }
  for (const ObjectRef& ref : candidates) {
    auto pod = state_.pods.find(ref);
    if (pod == state_.pods.end() || !state_.IsEndpoint(pod->second.pod)) {
      if (endpoints_.erase(ref) > 0) changes.endpoints.insert(ref);
      continue;
    }
    EndpointPolicy computed = ComputeEndpointPolicy(state_, pod->second);
    auto [current, added] = endpoints_.try_emplace(ref);
    if (added || current->second != computed) {
      current->second = std::move(computed);
      changes.endpoints.insert(ref);
    }
  }
}

PolicyChanges PolicyEngine::UpsertNamespace(k8s::Namespace ns) {
  PolicyChanges changes;
  const std::string name = ns.metadata.name;
  const Labels old_labels = state_.NamespaceLabels(name);
  state_.namespaces[name] = std::move(ns);
  if (state_.NamespaceLabels(name) == old_labels) return changes;
  // Every pod of the namespace moves to the identity of its new key.
  std::set<IdentityKey> keys;
  std::set<ObjectRef> candidates;
  for (auto it = state_.pods.lower_bound(ObjectRef{name, ""});
       it != state_.pods.end() && it->first.namespace_ == name; ++it) {
    PodState& pod = it->second;
    if (pod.pod.host_network) continue;
    keys.insert(IdentityKey{name, old_labels, pod.pod.metadata.labels});
    keys.insert(state_.KeyOf(pod.pod));
    if (absl::Status assigned = AssignIdentity(it->first, pod, pod.identity); !assigned.ok()) {
      changes.status = assigned;
    }
    candidates.insert(it->first);
  }
  AddOrDeferDependents(keys, candidates);
  Recompute(candidates, changes);
  RetryIdentities(changes);
  return changes;
}

PolicyChanges PolicyEngine::DeleteNamespace(const std::string& name) {
  // Its pods are deleted on their own; until then they keep the labels every namespace has.
  k8s::Namespace bare;
  bare.metadata.name = name;
  bare.metadata.labels = {{k8s::kNamespaceNameLabel, name}};
  PolicyChanges changes = UpsertNamespace(std::move(bare));
  state_.namespaces.erase(name);
  return changes;
}

PolicyChanges PolicyEngine::UpsertPod(k8s::Pod pod) {
  PolicyChanges changes;
  // A finished pod's addresses go back to IPAM and may already belong to a new pod: they must not
  // stand for this one's identity any more (the other implementations ignore such pods too).
  if (pod.phase == "Succeeded" || pod.phase == "Failed") pod.pod_ips.clear();
  const ObjectRef ref = RefOf(pod.metadata);
  std::set<IdentityKey> keys;
  std::optional<Identity> previous;
  bool peer_facts_changed = true;
  if (auto old = state_.pods.find(ref); old != state_.pods.end()) {
    const k8s::Pod& before = old->second.pod;
    if (!before.host_network) keys.insert(state_.KeyOf(before));
    previous = old->second.identity;
    peer_facts_changed = PeerFactsDiffer(before, pod) || before.metadata.labels != pod.metadata.labels;
  }
  if (!pod.host_network) keys.insert(state_.KeyOf(pod));
  PodState& stored = state_.pods[ref];
  stored.pod = std::move(pod);
  changes.status = AssignIdentity(ref, stored, previous);
  std::set<ObjectRef> candidates = {ref};
  if (peer_facts_changed) AddOrDeferDependents(keys, candidates);
  Recompute(candidates, changes);
  RetryIdentities(changes);
  return changes;
}

PolicyChanges PolicyEngine::DeletePod(const ObjectRef& ref) {
  PolicyChanges changes;
  auto old = state_.pods.find(ref);
  if (old == state_.pods.end()) return changes;
  std::set<IdentityKey> keys;
  if (!old->second.pod.host_network) keys.insert(state_.KeyOf(old->second.pod));
  if (old->second.identity) state_.identities.Release(*old->second.identity);
  state_.pods.erase(old);
  without_identity_.erase(ref);
  std::set<ObjectRef> candidates = {ref};
  AddOrDeferDependents(keys, candidates);
  Recompute(candidates, changes);
  RetryIdentities(changes);
  return changes;
}

PolicyChanges PolicyEngine::UpsertPolicy(k8s::NetworkPolicy policy) {
  PolicyChanges changes;
  const ObjectRef ref = RefOf(policy.metadata);
  std::set<ObjectRef> candidates = SubjectsOf(policy);
  if (auto old = state_.policies.find(ref); old != state_.policies.end()) {
    std::set<ObjectRef> before = SubjectsOf(old->second);
    candidates.insert(before.begin(), before.end());
  }
  state_.policies[ref] = std::move(policy);
  Recompute(candidates, changes);
  return changes;
}

PolicyChanges PolicyEngine::DeletePolicy(const ObjectRef& ref) {
  PolicyChanges changes;
  auto old = state_.policies.find(ref);
  if (old == state_.policies.end()) return changes;
  const std::set<ObjectRef> candidates = SubjectsOf(old->second);
  state_.policies.erase(old);
  Recompute(candidates, changes);
  return changes;
}

std::map<IpAddress, Identity> PolicyEngine::PodAddressIdentities() const {
  std::map<IpAddress, Identity> addresses;
  for (const auto& [ref, pod] : state_.pods) {
    if (!pod.identity) continue;
    for (const IpAddress& address : pod.pod.pod_ips) addresses[address] = *pod.identity;
  }
  return addresses;
}

std::map<ObjectRef, EndpointPolicy> PolicyEngine::ComputeAll() const {
  std::map<ObjectRef, EndpointPolicy> all;
  for (const auto& [ref, pod] : state_.pods) {
    if (state_.IsEndpoint(pod.pod)) all.emplace(ref, ComputeEndpointPolicy(state_, pod));
  }
  return all;
}

}  // namespace weir::policy
