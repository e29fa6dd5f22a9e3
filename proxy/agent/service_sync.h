// The service pipeline: objects in, translation, the reconciler writing only the differences.
// Shared by standalone mode and the Kubernetes API source.
//
// Two ways in. SyncAll() translates every Service: the first sync, every sync of a source that
// does not track changes, and the one after a failure. SyncChanged() translates only the Services
// whose objects changed, so the cost of an EndpointSlice update does not grow with the cluster.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <vector>

#include "absl/status/statusor.h"
#include "proxy/agent/agent_config.h"
#include "proxy/agent/health_check_ports.h"
#include "proxy/k8s/objects.h"
#include "proxy/lb/frontend_table.h"
#include "proxy/lb/translate.h"
#include "proxy/sync/reconciler.h"
#include "proxy/sync/service_names.h"

namespace weir::agent {

struct SyncResult {
  size_t services = 0;   // Services translated by this sync
  size_t frontends = 0;  // frontend entries in the maps afterwards
  size_t backends = 0;   // backend entries in the maps afterwards
  sync::ReconcileStats stats;
  std::chrono::microseconds translate_time{0};
  std::chrono::microseconds apply_time{0};
};

lb::NodeContext NodeContextFrom(const AgentConfig& config);

class ServiceSync {
 public:
  // `names` (optional): where the Service behind each service id is published for weirctl. A sync
  // fails when its names cannot be written, so the next one is complete and rewrites them.
  ServiceSync(lb::NodeContext node, sync::Reconciler& reconciler, sync::ServiceNamePublisher* names = nullptr)
      : node_(std::move(node)), reconciler_(reconciler), names_(names) {}

  absl::StatusOr<SyncResult> SyncAll(const std::vector<k8s::Service>& services,
                                     const std::vector<k8s::EndpointSlice>& slices);

  // Only these Services (each with its current objects). Must follow a successful sync; after an
  // error, the next sync must be SyncAll().
  absl::StatusOr<SyncResult> SyncChanged(const std::vector<k8s::ServiceObjects>& changed);

  // healthCheckNodePort -> Service, as of the last sync.
  std::map<uint16_t, HealthCheckService> HealthChecks() const { return HealthCheckPortsOf(health_checks_); }

 private:
  // Translates one Service (null: deleted) into the table and its health check.
  void Update(const k8s::ServiceRef& ref, const k8s::Service* service,
              const std::vector<const k8s::EndpointSlice*>& slices);
  absl::StatusOr<SyncResult> Apply(SyncResult result, std::chrono::steady_clock::time_point start,
                                   const lb::DesiredChanges* changes);

  const lb::NodeContext node_;
  sync::Reconciler& reconciler_;
  sync::ServiceNamePublisher* names_;
  lb::FrontendTable table_;
  std::map<k8s::ServiceRef, HealthCheckService> health_checks_;
};

}  // namespace weir::agent
