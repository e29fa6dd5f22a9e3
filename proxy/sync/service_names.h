// Keeps the published names of service ids (lib/agent_state_maps.h) in step with the reconciler:
// after each sync every id in the services map names the Service its frontend came from, and ids
// no frontend uses any more name nothing. Writes only what changed since the previous publish.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/agent_state_maps.h"
#include "proxy/lb/desired_state.h"
#include "proxy/sync/reconciler.h"

namespace weir::sync {

// The map as the publisher sees it (the pinned map, or a fake in tests).
class ServiceNameStore {
 public:
  virtual ~ServiceNameStore() = default;
  virtual absl::Status Put(uint32_t service_id, const ServiceName& name) = 0;
  virtual absl::Status Delete(uint32_t service_id) = 0;  // succeeds when absent
  virtual absl::StatusOr<std::map<uint32_t, ServiceName>> List() const = 0;
};

class PinnedServiceNameStore : public ServiceNameStore {
 public:
  explicit PinnedServiceNameStore(ServiceNamesMap map) : map_(std::move(map)) {}
  absl::Status Put(uint32_t service_id, const ServiceName& name) override {
    return map_.Put(service_id, name);
  }
  absl::Status Delete(uint32_t service_id) override { return map_.Delete(service_id); }
  absl::StatusOr<std::map<uint32_t, ServiceName>> List() const override { return map_.List(); }

 private:
  ServiceNamesMap map_;
};

class ServiceNamePublisher {
 public:
  explicit ServiceNamePublisher(ServiceNameStore& store) : store_(store) {}

  // After Reconciler::Apply(desired): every frontend of `desired` is named, every other id is not.
  absl::Status PublishAll(const lb::DesiredState& desired, const Reconciler& reconciler);

  // Around Reconciler::ApplyChanges(changes): call IdsBeforeRemoval() before it (the ids of the
  // frontends it will remove, which it releases), then PublishChanges() after it.
  std::vector<uint32_t> IdsBeforeRemoval(const lb::DesiredChanges& changes,
                                         const Reconciler& reconciler) const;
  absl::Status PublishChanges(const lb::DesiredChanges& changes, const std::vector<uint32_t>& removed_ids,
                              const Reconciler& reconciler);

 private:
  // Makes the store hold `names` for these ids; other ids in `drop` are deleted.
  absl::Status Write(const std::map<uint32_t, ServiceName>& names, const std::vector<uint32_t>& drop);

  ServiceNameStore& store_;
  // What the store holds; nullopt until read once (the previous agent's names) or after an error.
  std::optional<std::map<uint32_t, ServiceName>> written_;
};

}  // namespace weir::sync
