// Where the agent's Services, EndpointSlices and Nodes come from: a manifest directory (standalone
// mode) or the Kubernetes API. Both feed the same sync pass.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proxy/standalone/manifest_dir.h"

namespace weir::agent {

class ObjectSource {
 public:
  virtual ~ObjectSource() = default;
  // False until a first complete view exists: syncing an empty view would delete adopted state.
  virtual bool Ready() const = 0;
  virtual standalone::ObjectSet Snapshot() = 0;
  // True when something changed within `timeout`.
  virtual bool WaitForChange(std::chrono::milliseconds timeout) = 0;
  virtual void Stop() {}
};

absl::StatusOr<std::unique_ptr<ObjectSource>> OpenManifestSource(const std::string& dir);
// `kubeconfig` empty: in-cluster config when running in a pod, else $KUBECONFIG or ~/.kube/config.
absl::StatusOr<std::unique_ptr<ObjectSource>> OpenApiSource(const std::string& kubeconfig,
                                                            const std::string& node_name);

}  // namespace weir::agent
