// Where the agent's Services, EndpointSlices and Nodes come from: a manifest directory (standalone
// mode) or the Kubernetes API. Both feed the same sync pass.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proxy/standalone/manifest_dir.h"

namespace weir::agent {

// What changed in a source since the previous look.
struct SourceChanges {
  std::vector<k8s::ServiceObjects> services;    // Services whose Service or EndpointSlices changed
  std::optional<std::vector<k8s::Node>> nodes;  // every Node, when any changed
  size_t skipped = 0;                           // objects that failed to decode (logged)
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
};

absl::StatusOr<std::unique_ptr<ObjectSource>> OpenManifestSource(const std::string& dir);
// `kubeconfig` empty: in-cluster config when running in a pod, else $KUBECONFIG or ~/.kube/config.
absl::StatusOr<std::unique_ptr<ObjectSource>> OpenApiSource(const std::string& kubeconfig,
                                                            const std::string& node_name);

}  // namespace weir::agent
