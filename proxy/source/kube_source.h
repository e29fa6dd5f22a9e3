// The agent's Kubernetes API source: one informer per collection it needs, a change signal for its
// loop, snapshots for a complete sync, and the Services touched since the last look for an
// incremental one (agent::ServiceSync). The counterpart of standalone::ManifestDirectory for a
// real cluster.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "proxy/k8s/kube_client.h"
#include "proxy/k8s/kube_informer.h"
#include "proxy/k8s/kube_resources.h"
#include "proxy/k8s/objects.h"

namespace weir::k8s {

struct KubeSourceOptions {
  // NetworkPolicy's inputs: every Pod of the cluster (peers on other nodes need identities too),
  // Namespaces and NetworkPolicies. Off: none of the three is watched.
  bool watch_policy_objects = true;
  // The agent's own DaemonSet ("namespace/name"); empty: not watched. Its deletion is how an
  // uninstall reaches the agent (see OwnerRemoved()).
  std::string owner_daemon_set;
  // Shared by the informers, except `sleeper`, which each needs its own: it is ignored here.
  ReflectorOptions reflector;
};

class KubeSource {
 public:
  KubeSource(std::shared_ptr<KubeClient> client, KubeSourceOptions options);
  ~KubeSource() { Stop(); }
  KubeSource(const KubeSource&) = delete;
  KubeSource& operator=(const KubeSource&) = delete;

  void Start();
  // Stops and joins every informer; idempotent.
  void Stop();

  // Services, EndpointSlices and Nodes (and the policy objects, when watched) have each been
  // listed completely. Do not sync before: an empty or partial service set would tear down
  // frontends adopted from the pinned maps, and a missing policy would leave its pods open.
  bool HasSynced() const;

  // Waits up to `timeout` for a change of any watched kind since the previous
  // call (the first call reports the initial lists). Changes in a burst collapse into one.
  bool WaitForChange(std::chrono::milliseconds timeout);

  // The service-relevant state, each collection copied under its informer's lock; `skipped`
  // counts the objects of these kinds that never decoded.
  ObjectSet Snapshot() const;

  // The Services whose Service object or EndpointSlices (by their service-name label, before or
  // after the change) changed since the previous call, each with its current objects; and whether
  // any Node changed. Draining it before Snapshot() starts the tracking afresh.
  // The policy objects changed since the previous call, each once with its current version.
  struct Changes {
    std::vector<ServiceObjects> services;
    bool nodes_changed = false;
    std::vector<KeyedObject<Namespace>> namespaces;
    std::vector<KeyedObject<Pod>> pods;
    std::vector<KeyedObject<NetworkPolicy>> network_policies;
  };
  Changes TakeChanges();

  // The owner DaemonSet was seen deleted, or marked for deletion, since Start(). Only an observed
  // deletion counts: a DaemonSet that never existed (or that could not be read) says nothing.
  bool OwnerRemoved() const { return owner_removed_.load(); }

  // Objects of the synced kinds that never decoded (logged when seen).
  size_t undecodable() const;

  Informer<Service>& services() { return *services_; }
  Informer<EndpointSlice>& endpoint_slices() { return *slices_; }
  Informer<Node>& nodes() { return *nodes_; }
  Informer<Pod>* pods() { return pods_.get(); }                                    // null when not watched
  Informer<Namespace>* namespaces() { return namespaces_.get(); }                  // null when not watched
  Informer<NetworkPolicy>* network_policies() { return network_policies_.get(); }  // null when not watched

 private:
  void MarkChanged();
  void NoteService(const ObjectChange<Service>& change);
  void NoteSlice(const ObjectChange<EndpointSlice>& change);

  std::mutex mu_;
  std::condition_variable changed_cv_;
  bool changed_ = false;
  std::set<ServiceRef> changed_services_;
  bool nodes_changed_ = false;
  std::map<ServiceRef, std::set<std::string>> slice_keys_;  // informer keys of each Service's slices
  std::set<std::string> changed_namespaces_, changed_pods_, changed_policies_;  // informer keys

  std::unique_ptr<Informer<Service>> services_;
  std::unique_ptr<Informer<EndpointSlice>> slices_;
  std::unique_ptr<Informer<Node>> nodes_;
  std::unique_ptr<Informer<Pod>> pods_;
  std::unique_ptr<Informer<Namespace>> namespaces_;
  std::unique_ptr<Informer<NetworkPolicy>> network_policies_;
  std::unique_ptr<Informer<DaemonSet>> owner_;
  std::atomic<bool> owner_removed_{false};
};

}  // namespace weir::k8s
