// Where the agent's Services, EndpointSlices and Nodes come from: a manifest directory (standalone
// mode) or the Kubernetes API. Both feed the same sync pass.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proxy/source/manifest_dir.h"

namespace weir::agent {

// What changed in a source since the previous look.
struct SourceChanges {
  std::vector<k8s::ServiceObjects> services;    // Services whose Service or EndpointSlices changed
  std::optional<std::vector<k8s::Node>> nodes;  // every Node, when any changed
  // NetworkPolicy's inputs that changed, each with its current version (nullopt: deleted).
  std::vector<k8s::KeyedObject<k8s::Namespace>> namespaces;
  std::vector<k8s::KeyedObject<k8s::Pod>> pods;
  std::vector<k8s::KeyedObject<k8s::NetworkPolicy>> network_policies;
  size_t skipped = 0;  // objects that failed to decode (logged)
};

class ObjectSource {
 public:
  virtual ~ObjectSource() = default;
  // False until a first complete view exists: syncing an empty view would delete adopted state.
  virtual bool Ready() const = 0;
  virtual k8s::ObjectSet Snapshot() = 0;
  // The changes since the previous call; nullopt when the source does not track them (sync from
  // Snapshot() instead). Call it before a Snapshot() as well: that restarts the tracking.
  virtual std::optional<SourceChanges> TakeChanges() { return std::nullopt; }
  // True when something changed within `timeout`.
  virtual bool WaitForChange(std::chrono::milliseconds timeout) = 0;
  virtual void Stop() {}
  // The agent was uninstalled (its DaemonSet deleted): clean the node up when stopping.
  virtual bool Uninstalling() const { return false; }
  // This node's Node object and every Node, once Ready(); the standalone source has what its
  // manifests define.
  virtual std::vector<k8s::Node> Nodes() { return Snapshot().nodes; }
};

// How the API source reaches the API server and what it watches.
struct ApiSourceOptions {
  std::string kubeconfig;  // empty: in-cluster (then $KUBECONFIG)
  // In-cluster: dial this host and port instead of $KUBERNETES_SERVICE_HOST/PORT, which name the
  // `kubernetes` Service that nothing serves before weir does.
  std::string api_server_host;
  int api_server_port = 0;
  std::string owner_daemon_set;  // "namespace/name"; empty: not watched
  // Watch Pods (of every node), Namespaces and NetworkPolicies too.
  bool network_policy = false;
};

absl::StatusOr<std::unique_ptr<ObjectSource>> OpenManifestSource(const std::string& dir);
absl::StatusOr<std::unique_ptr<ObjectSource>> OpenApiSource(const ApiSourceOptions& options);

}  // namespace weir::agent
