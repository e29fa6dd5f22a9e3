#include "proxy/agent/service_sync.h"

#include <utility>

namespace weir::agent {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::microseconds Elapsed(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::microseconds>(to - from);
}

}  // namespace

lb::NodeContext NodeContextFrom(const AgentConfig& config) {
  return lb::NodeContext{.node_name = config.node_name,
                         .node_addresses = config.node_addresses,
                         .zone = config.zone,
                         .maglev = config.maglev,
                         .lb_mode = config.lb_mode};
}

absl::StatusOr<SyncResult> ServiceSync::SyncAll(const std::vector<k8s::Service>& services,
                                                const std::vector<k8s::EndpointSlice>& slices) {
  const auto start = Clock::now();
  table_ = lb::FrontendTable();
  health_checks_.clear();
  k8s::ForEachServiceWithSlices(services, slices, [&](const k8s::Service& service, const auto& owned) {
    Update(k8s::RefOf(service), &service, owned);
  });
  table_.DiscardChanges();
  return Apply(SyncResult{.services = services.size()}, start, nullptr);
}

absl::StatusOr<SyncResult> ServiceSync::SyncChanged(const std::vector<k8s::ServiceObjects>& changed) {
  const auto start = Clock::now();
  for (const k8s::ServiceObjects& objects : changed) {
    std::vector<const k8s::EndpointSlice*> slices;
    for (const k8s::EndpointSlice& slice : objects.slices) slices.push_back(&slice);
    Update(objects.ref, objects.service ? &*objects.service : nullptr, slices);
  }
  const lb::DesiredChanges changes = table_.TakeChanges();
  return Apply(SyncResult{.services = changed.size()}, start, &changes);
}

void ServiceSync::Update(const k8s::ServiceRef& ref, const k8s::Service* service,
                         const std::vector<const k8s::EndpointSlice*>& slices) {
  table_.SetClaims(ref, service != nullptr ? lb::TranslateService(*service, slices, node_)
                                           : std::vector<lb::FrontendClaim>{});
  std::optional<HealthCheckService> check =
      service != nullptr ? HealthCheckOf(*service, slices, node_.node_name) : std::nullopt;
  if (check) {
    health_checks_.insert_or_assign(ref, *std::move(check));
  } else {
    health_checks_.erase(ref);
  }
}

absl::StatusOr<SyncResult> ServiceSync::Apply(SyncResult result, Clock::time_point start,
                                              const lb::DesiredChanges* changes) {
  const auto translated = Clock::now();
  absl::StatusOr<sync::ReconcileStats> stats;
  if (changes != nullptr) {
    const std::vector<uint32_t> removed_ids =
        names_ != nullptr ? names_->IdsBeforeRemoval(*changes, reconciler_) : std::vector<uint32_t>{};
    stats = reconciler_.ApplyChanges(*changes);
    if (stats.ok() && names_ != nullptr) {
      if (absl::Status s = names_->PublishChanges(*changes, removed_ids, reconciler_); !s.ok()) return s;
    }
  } else {
    const lb::DesiredState desired = table_.Desired();
    stats = reconciler_.Apply(desired);
    if (stats.ok() && names_ != nullptr) {
      if (absl::Status s = names_->PublishAll(desired, reconciler_); !s.ok()) return s;
    }
  }
  if (!stats.ok()) return stats.status();
  result.stats = *stats;
  result.translate_time = Elapsed(start, translated);
  result.apply_time = Elapsed(translated, Clock::now());
  result.frontends = reconciler_.frontend_count();
  result.backends = reconciler_.backend_count();
  return result;
}

}  // namespace weir::agent
