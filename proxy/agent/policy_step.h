// The policy step of the agent's loop: keeps a PolicyEngine current from the source's Namespaces,
// Pods and NetworkPolicies (each change recomputes only what depends on it), and hands the
// PolicyWriter what changed: the peers (address -> identity) when any changed, and the endpoints
// whose enforcement changed, each under a policy_id that stays with the pod for its life.
//
// CNI ADD reaches it through EndpointAdded() on another thread (proxy/agent/policy_socket.h), so
// every public member locks: the loop and the CNI's requests take turns on the engine and the writer.
//
// Audit mode, per endpoint and direction: on when the node is in audit mode, or when every policy
// that isolates the endpoint in that direction carries weir.io/policy-audit: "true".
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/ip.h"
#include "proxy/agent/metrics.h"
#include "proxy/k8s/objects.h"
#include "proxy/policy/policy_counters.h"
#include "proxy/policy/policy_engine.h"
#include "proxy/policy/policy_writer.h"
#include "proxy/source/object_source.h"

namespace weir::agent {

// policy_ids for this node's endpoints: one per pod (by namespace/name) while it exists, never 0.
// A freed id is reused only after the fresh ones (2^32 - 1 of them) run out.
class PolicyIds {
 public:
  uint32_t Acquire(const policy::ObjectRef& pod);
  void Release(const policy::ObjectRef& pod);
  std::optional<uint32_t> Find(const policy::ObjectRef& pod) const;
  const std::map<uint32_t, policy::ObjectRef>& by_id() const { return by_id_; }

 private:
  uint32_t next_ = 1;
  std::map<policy::ObjectRef, uint32_t> by_pod_;
  std::map<uint32_t, policy::ObjectRef> by_id_;
};

struct PolicyStepSettings {
  std::string node_name;
  bool audit = false;                     // every endpoint of this node in audit mode
  std::vector<IpAddress> node_addresses;  // this node's, besides those its Node object lists
};

class PolicyStep {
 public:
  using Clock = std::chrono::steady_clock;

  // `writer` and `metrics` outlive this.
  PolicyStep(PolicyStepSettings settings, policy::PolicyWriter& writer, Metrics& metrics);

  // A complete view: what it lacks is deleted. False when a write failed; the failed endpoints (or
  // peers) are written again by the next call of either Sync.
  bool SyncAll(const k8s::ObjectSet& objects);
  // The changes since the previous call.
  bool SyncChanged(const SourceChanges& changes);

  // CNI ADD of `pod` on this node gave it `addresses`: they stand for the pod until its status
  // lists them. Waits up to `wait` for the pod to be known as this node's (the API may lag behind
  // kubelet), writes its enforcement (again, since ADD has just made its endpoint entries) and
  // returns its policy_id. DeadlineExceeded when the pod did not show up in time.
  absl::StatusOr<uint32_t> EndpointAdded(const policy::ObjectRef& pod, std::vector<IpAddress> addresses,
                                         Clock::duration wait);

  // What `weirctl policy` shows, as JSON: every endpoint, or those whose "namespace/name" or name
  // is `filter`.
  std::string DescribeJson(const std::string& filter) const;
  // What `weirctl events` needs to name a policy record's endpoint and the policies that decided: per
  // endpoint its policy_id, namespace/name, addresses and, per direction, whether it is isolated, by
  // which policies and in which mode; and every identity's namespace and pod labels. JSON.
  std::string DirectoryJson() const;
  // Per-endpoint verdict counters as Prometheus text (weir_policy_packets_total), named by pod.
  std::string CountersText(policy::PolicyCounters& counters) const;

  // The enforcement last written for each endpoint (tests, and the dump).
  std::map<policy::ObjectRef, policy::EndpointEnforcement> Written() const;

 private:
  using Touched = std::set<policy::ObjectRef>;
  void ApplyNamespace(const std::string& name, const k8s::Namespace* ns, Touched& touched);
  void ApplyPod(const policy::ObjectRef& ref, const k8s::Pod* pod, Touched& touched);
  void ApplyPolicy(const policy::ObjectRef& ref, const k8s::NetworkPolicy* policy, Touched& touched);
  void Note(const policy::PolicyChanges& changes, Touched& touched);
  // The pod as policy sees it: CNI ADD's addresses until the status has them.
  k8s::Pod Effective(k8s::Pod pod);
  std::map<IpPrefix, policy::Identity> DesiredPeers() const;
  policy::EndpointEnforcement EnforcementOf(uint32_t policy_id, const policy::EndpointPolicy& endpoint) const;
  bool DirectionAudited(const policy::DirectionPolicy& direction) const;
  // Writes the peers when they changed, then each touched endpoint whose enforcement changed
  // (`forced` ones in any case).
  bool Flush(const Touched& touched, const Touched& forced);
  bool WriteOne(const policy::ObjectRef& ref, bool force);

  const PolicyStepSettings settings_;
  policy::PolicyWriter& writer_;
  Counter& writes_;
  Counter& write_errors_;
  Gauge& endpoints_gauge_;
  Gauge& identities_gauge_;

  mutable std::mutex mu_;
  std::condition_variable pods_changed_;
  policy::PolicyEngine engine_;
  PolicyIds ids_;
  std::vector<k8s::Node> nodes_;
  std::map<policy::ObjectRef, std::vector<IpAddress>> cni_addresses_;
  std::map<policy::ObjectRef, policy::EndpointEnforcement> written_;
  Touched unwritten_;  // endpoints whose last write failed
  std::map<IpPrefix, policy::Identity> peers_;
  bool peers_written_ = false;
  bool peers_changed_ = true;  // a pod, namespace or node changed since peers_ was computed
};

}  // namespace weir::agent
