// Keeps every node-local endpoint's policy current as Namespaces, Pods and NetworkPolicies change,
// recomputing only the endpoints a change can affect:
//   - a policy edit: the endpoints its old or new version selects;
//   - a pod's labels, addresses or ports: the pod itself, and the endpoints selected by policies with a
//     peer that selects its old or new identity key (or with an egress named port, which depends on
//     every destination pod's ports);
//   - a namespace's labels: its pods (their identities change), and the endpoints selected by
//     policies with a peer that selects one of its pods' old or new keys.
// Each call says which endpoints' EndpointPolicy is now different (added, changed or gone), so the
// agent rewrites the datapath state of those only. A pod's identity follows its key: a relabel
// moves it to another number, which is why peers of other endpoints change with it.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proxy/k8s/objects.h"
#include "proxy/policy/cluster_state.h"
#include "proxy/policy/endpoint_policy.h"

namespace weir::policy {

struct PolicyChanges {
  std::set<ObjectRef> endpoints;  // whose EndpointPolicy was added, changed or removed
  // Not OK when a pod got no identity (all are in use): it then has kIdentityUnknown, which no
  // selector admits, and its own policy is still computed. It gets one as soon as one is freed.
  absl::Status status;
};

class PolicyEngine {
 public:
  explicit PolicyEngine(std::string node_name, Identity max_identity = kDefaultMaxIdentity);

  PolicyChanges UpsertNamespace(k8s::Namespace ns);
  PolicyChanges DeleteNamespace(const std::string& name);
  // A pod in phase Succeeded or Failed keeps its identity but loses its addresses.
  PolicyChanges UpsertPod(k8s::Pod pod);
  PolicyChanges DeletePod(const ObjectRef& ref);
  PolicyChanges UpsertPolicy(k8s::NetworkPolicy policy);
  PolicyChanges DeletePolicy(const ObjectRef& ref);

  // Between BeginBatch() and EndBatch() the calls above update the objects and collect what they
  // affect, and EndBatch() recomputes each affected endpoint once (and looks for the dependents of
  // the pods' changed keys once): a thousand policies that select one pod, or a complete list of
  // ten thousand pods, cost one computation of each endpoint rather than one per object. The calls
  // in a batch return no endpoints; EndBatch() returns them all.
  void BeginBatch();
  PolicyChanges EndBatch();

  // The endpoints (pods of this node that are not hostNetwork) and their policy.
  const std::map<ObjectRef, EndpointPolicy>& endpoints() const { return endpoints_; }
  const ClusterState& state() const { return state_; }
  // Address -> identity of every pod with one, for the datapath's peer LPM map.
  std::map<IpAddress, Identity> PodAddressIdentities() const;
  // Every endpoint computed afresh from the current objects; equal to endpoints() by design.
  std::map<ObjectRef, EndpointPolicy> ComputeAll() const;

 private:
  // Gives `pod` the identity of its current key, acquired before `previous` is released so that an
  // unchanged key keeps its number.
  absl::Status AssignIdentity(const ObjectRef& ref, PodState& pod, std::optional<Identity> previous);
  // Gives identities to the pods that found none, now that some may be free.
  void RetryIdentities(PolicyChanges& changes);
  std::set<ObjectRef> SubjectsOf(const k8s::NetworkPolicy& policy) const;
  // Adds the subjects of every policy whose result may depend on pods with one of `keys`.
  void AddDependents(const std::set<IdentityKey>& keys, std::set<ObjectRef>& candidates) const;
  // AddDependents now, or at the end of the batch.
  void AddOrDeferDependents(const std::set<IdentityKey>& keys, std::set<ObjectRef>& candidates);
  void Recompute(const std::set<ObjectRef>& candidates, PolicyChanges& changes);

  ClusterState state_;
  std::map<ObjectRef, EndpointPolicy> endpoints_;
  std::set<ObjectRef> without_identity_;  // pods that found every identity in use
  bool batching_ = false;
  std::set<ObjectRef> batch_candidates_;
  std::set<IdentityKey> batch_keys_;
};

}  // namespace weir::policy
