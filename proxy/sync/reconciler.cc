#include "proxy/sync/reconciler.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "lib/abi_codec.h"
#include "proxy/lb/maglev.h"

namespace weir::sync {
namespace {

// backend_count is a __u16, and slots are numbered from 1.
constexpr size_t kMaxSlots = 65535;

// The ABI structs are compared as the map sees them: byte for byte, padding included.
template <typename T>
bool SameBytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

}  // namespace

std::optional<uint32_t> Reconciler::ServiceIdOf(const lb::FrontendKey& key) const {
  auto it = frontends_.find(key);
  if (it == frontends_.end()) return std::nullopt;
  return it->second.value.service_id;
}

std::optional<uint32_t> Reconciler::BackendIdOf(const BackendIdentity& backend) const {
  auto it = backend_ids_.find(backend);
  if (it == backend_ids_.end()) return std::nullopt;
  return it->second;
}

void Reconciler::Forget() {
  frontends_.clear();
  tables_.clear();
  backends_.clear();
  backend_ids_.clear();
  slot_refs_.clear();
  unreferenced_.clear();
  stale_service_keys_.clear();
  stale_slot_keys_.clear();
  unfinished_frontends_.clear();
  service_ids_.Clear();
  backend_id_allocator_.Clear();
}

// --- Adoption ---

absl::Status Reconciler::Adopt() {
  absl::StatusOr<ServiceMapContents> contents = writer_.ReadAll();
  if (!contents.ok()) return contents.status();
  Forget();

  for (const ServicesMap::Entry& entry : contents->services) {
    std::optional<lb::FrontendKey> key = DecodeServiceKey(entry.key);
    // Only entries this build would write byte for byte are adopted; the rest (unknown family,
    // garbage in padding) could never be updated in place, so they go.
    if (!key.has_value() || !SameBytes(EncodeServiceKey(*key), entry.key)) {
      stale_service_keys_.push_back(entry.key);
      continue;
    }
    frontends_[*key] = WrittenFrontend{entry.key, entry.value};
    service_ids_.MarkUsed(entry.value.service_id);
  }

  for (const SlotsMap::Entry& entry : contents->slots) {
    if (entry.key.slot == 0 || entry.key.slot > kMaxSlots) {
      stale_slot_keys_.push_back(entry.key);
      continue;
    }
    WrittenTables& tables = tables_[entry.key.service_id];
    if (tables.slots.size() < entry.key.slot) tables.slots.resize(entry.key.slot);
    SetSlot(tables, entry.key.slot - 1, entry.value);
    service_ids_.MarkUsed(entry.key.service_id);
  }

  for (const BackendsMap::Entry& entry : contents->backends) {
    backends_[entry.key] = entry.value;
    backend_id_allocator_.MarkUsed(entry.key);
    std::optional<BackendIdentity> identity = DecodeBackendIdentity(entry.value);
    if (entry.key == 0 || !identity.has_value() ||
        !SameBytes(EncodeBackend(*identity, entry.value.flags), entry.value)) {
      continue;  // kept until unreferenced, never reused for a desired backend
    }
    // Two ids for one backend (never written by weir, but possible in a damaged map): the smaller
    // id becomes the backend's id, slots move to it, and the other is deleted once unused.
    auto [it, inserted] = backend_ids_.try_emplace(*identity, entry.key);
    if (!inserted && entry.key < it->second) it->second = entry.key;
  }

  for (const MaglevMap::Entry& entry : contents->maglev) {
    WrittenTables& tables = tables_[entry.key];
    tables.has_maglev = true;
    tables.maglev_source.reset();
    tables.adopted_maglev = entry.value;
    service_ids_.MarkUsed(entry.key);
  }
  return absl::OkStatus();
}

// --- Planning: ids and encoded entries for the desired state, no writes ---

absl::StatusOr<Reconciler::Plan> Reconciler::MakePlan(const std::vector<lb::FrontendSpec>& desired,
                                                      ReconcileStats& stats) {
  if (absl::Status status = lb::ValidateMaglevTableSize(options_.maglev_table_size); !status.ok()) {
    return status;
  }
  Plan plan;
  std::set<lb::FrontendKey> keys;
  for (const lb::FrontendSpec& spec : desired) {
    if (!keys.insert(lb::KeyOf(spec)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("desired state lists frontend ", FrontendName(lb::KeyOf(spec)), " twice"));
    }
  }

  std::map<BackendIdentity, uint32_t> planned_backend_ids;
  std::vector<PlannedFrontend> existing;
  std::vector<PlannedFrontend> fresh;
  std::unordered_set<uint32_t> claimed_service_ids;
  for (const lb::FrontendSpec& spec : desired) {
    PlannedFrontend frontend;
    frontend.key = lb::KeyOf(spec);
    frontend.map_key = EncodeServiceKey(frontend.key);

    const size_t backend_count = std::min(spec.backends.size(), kMaxSlots);
    if (backend_count < spec.backends.size()) ++stats.truncated_frontends;
    frontend.slots.reserve(backend_count);
    for (size_t i = 0; i < backend_count; ++i) {
      const lb::BackendSpec& backend = spec.backends[i];
      const BackendIdentity identity = IdentityOf(backend);
      auto [planned, first_use] = planned_backend_ids.try_emplace(identity, 0);
      if (first_use) {
        auto known = backend_ids_.find(identity);
        const bool allocate = known == backend_ids_.end();
        planned->second = allocate ? backend_id_allocator_.Allocate() : known->second;
        plan.backends.emplace(
            planned->second,
            PlannedBackend{identity, EncodeBackend(identity, BackendFlags(backend)), allocate});
      } else {
        // One backend table entry serves every service using the backend; the flags describe the
        // endpoint (its node, its termination), so the services agree, and a union is safe.
        plan.backends.at(planned->second).value.flags |= BackendFlags(backend);
      }
      frontend.slots.push_back(planned->second);
    }

    frontend.value = weir_service_value{};
    frontend.value.backend_count = static_cast<uint16_t>(backend_count);
    frontend.value.flags = spec.flags;
    frontend.value.affinity_timeout = spec.affinity_timeout_seconds;
    // The first slots travel in the entry too (bpf/abi/service.h). An id's address and port are
    // fixed while the slots refer to it, so the copies never go stale; flags are not copied.
    abi::CarryBackends(frontend.value, frontend.slots,
                       [&](uint32_t id) -> const weir_backend* { return &plan.backends.at(id).value; });

    auto written = frontends_.find(frontend.key);
    if (written == frontends_.end()) {
      auto unfinished = unfinished_frontends_.find(frontend.key);
      if (unfinished != unfinished_frontends_.end() &&
          claimed_service_ids.insert(unfinished->second).second) {
        frontend.value.service_id = unfinished->second;
      }
      fresh.push_back(std::move(frontend));
      continue;
    }
    // Keep the id: the slots, Maglev table and affinity entries of live flows are keyed by it.
    const uint32_t id = written->second.value.service_id;
    if (id != 0 && claimed_service_ids.insert(id).second) frontend.value.service_id = id;
    existing.push_back(std::move(frontend));
  }

  // Ids for new frontends (and for adopted ones whose id was unusable), in desired order so that
  // the same history gives the same ids. Ids freed by this Apply's deletions are not available
  // yet: their old entries are still live until the end of the Apply.
  plan.frontends = std::move(existing);
  plan.frontends.insert(plan.frontends.end(), std::make_move_iterator(fresh.begin()),
                        std::make_move_iterator(fresh.end()));
  for (PlannedFrontend& frontend : plan.frontends) {
    if (frontend.value.service_id != 0) continue;
    frontend.value.service_id = service_ids_.Allocate();
    frontend.newly_allocated_id = true;
  }
  return plan;
}

// --- Execution: writes in make-before-break order ---

absl::StatusOr<ReconcileStats> Reconciler::Apply(const lb::DesiredState& desired) {
  ReconcileStats stats;
  absl::StatusOr<Plan> plan = MakePlan(desired.frontends, stats);
  if (!plan.ok()) return plan.status();
  plan->complete = true;
  auto wanted = desired.frontends.begin();
  for (const auto& [key, written] : frontends_) {
    while (wanted != desired.frontends.end() && lb::KeyOf(*wanted) < key) ++wanted;
    if (wanted == desired.frontends.end() || lb::KeyOf(*wanted) != key) plan->removals.push_back(key);
  }
  return Run(*plan, stats);
}

absl::StatusOr<ReconcileStats> Reconciler::ApplyChanges(const lb::DesiredChanges& changes) {
  ReconcileStats stats;
  absl::StatusOr<Plan> plan = MakePlan(changes.upserts, stats);
  if (!plan.ok()) return plan.status();
  std::set<lb::FrontendKey> upserted;
  for (const lb::FrontendSpec& spec : changes.upserts) upserted.insert(lb::KeyOf(spec));
  for (const lb::FrontendKey& key : changes.removals) {
    if (upserted.contains(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("frontend ", FrontendName(key), " is both written and removed"));
    }
    if (frontends_.contains(key)) plan->removals.push_back(key);
  }
  return Run(*plan, stats);
}

absl::StatusOr<ReconcileStats> Reconciler::Run(const Plan& plan, ReconcileStats stats) {
  unreferenced_.clear();
  const absl::Status status = Execute(plan, stats);
  ReleaseUnwrittenIds(plan);
  if (!status.ok()) return status;
  return stats;
}

absl::Status Reconciler::Execute(const Plan& plan, ReconcileStats& stats) {
  // 1. Backends first: every slot and Maglev table written below may point at them.
  if (absl::Status status = WriteBackends(plan, stats); !status.ok()) return status;
  // 2. Changed frontends, then 3. new ones. Each writes its slots and table before itself.
  for (const PlannedFrontend& frontend : plan.frontends) {
    if (absl::Status status = SyncFrontend(plan, frontend, stats); !status.ok()) return status;
  }
  // 4. Removals, outermost first: frontends, then their slots and tables, then backends.
  absl::StatusOr<std::vector<uint32_t>> orphans = RemoveFrontends(plan, stats);
  if (!orphans.ok()) return orphans.status();
  if (absl::Status status = RemoveOrphanTables(plan, *orphans, stats); !status.ok()) return status;
  return RemoveUnusedBackends(plan, stats);
}

absl::Status Reconciler::WriteBackends(const Plan& plan, ReconcileStats& stats) {
  for (const auto& [id, backend] : plan.backends) {
    auto written = backends_.find(id);
    if (written != backends_.end() && SameBytes(written->second, backend.value)) continue;
    // A flag change (e.g. terminating) rewrites the entry in place under the same id.
    if (absl::Status status = writer_.PutBackend(id, backend.value); !status.ok()) return status;
    ++stats.backends.writes;
    backends_[id] = backend.value;
    backend_ids_[backend.identity] = id;
  }
  return absl::OkStatus();
}

absl::Status Reconciler::SyncFrontend(const Plan& plan, const PlannedFrontend& frontend,
                                      ReconcileStats& stats) {
  const uint32_t id = frontend.value.service_id;
  WrittenTables& tables = tables_[id];
  const size_t count = frontend.slots.size();
  auto written = frontends_.find(frontend.key);
  if (written == frontends_.end()) unfinished_frontends_[frontend.key] = id;

  // Slots 1..count before the frontend counts them. Slots already counted are replaced in place,
  // each atomically, so a lookup finds the old backend or the new one.
  for (size_t i = 0; i < count; ++i) {
    if (i < tables.slots.size() && tables.slots[i] == frontend.slots[i]) continue;
    const weir_slot_key key{id, static_cast<uint32_t>(i + 1)};
    if (absl::Status status = writer_.PutSlot(key, frontend.slots[i]); !status.ok()) return status;
    ++stats.slots.writes;
    if (tables.slots.size() <= i) tables.slots.resize(i + 1);
    SetSlot(tables, i, frontend.slots[i]);
  }

  // The Maglev table, whole, before a frontend that starts using it.
  const bool wants_maglev = (frontend.value.flags & WEIR_SVC_MAGLEV) != 0 && count > 0;
  if (wants_maglev && !(tables.has_maglev && tables.maglev_source == frontend.slots)) {
    std::vector<uint32_t> table = BuildMaglev(plan, frontend.slots);
    const bool adopted_matches =
        tables.has_maglev && !tables.maglev_source.has_value() && tables.adopted_maglev == table;
    if (!adopted_matches) {
      if (absl::Status status = writer_.PutMaglev(id, table); !status.ok()) return status;
      ++stats.maglev.writes;
      tables.has_maglev = true;
    }
    tables.maglev_source = frontend.slots;
    tables.adopted_maglev = {};
  }

  // The frontend: new, or with a changed count, flags, timeout or (after adoption) id.
  if (written == frontends_.end() || !SameBytes(written->second.value, frontend.value)) {
    if (absl::Status status = writer_.PutService(frontend.map_key, frontend.value); !status.ok()) {
      return status;
    }
    ++stats.services.writes;
    frontends_[frontend.key] = WrittenFrontend{frontend.map_key, frontend.value};
    unfinished_frontends_.erase(frontend.key);
  }

  // What the frontend no longer reaches: slots above its count, a table it stopped using.
  while (tables.slots.size() > count) {
    if (tables.slots.back().has_value()) {
      const weir_slot_key key{id, static_cast<uint32_t>(tables.slots.size())};
      if (absl::Status status = writer_.DeleteSlot(key); !status.ok()) return status;
      ++stats.slots.deletes;
    }
    PopSlot(tables);
  }
  if (!wants_maglev && tables.has_maglev) {
    if (absl::Status status = writer_.DeleteMaglev(id); !status.ok()) return status;
    ++stats.maglev.deletes;
    tables.has_maglev = false;
    tables.maglev_source.reset();
    tables.adopted_maglev = {};
  }
  return absl::OkStatus();
}

std::vector<uint32_t> Reconciler::BuildMaglev(const Plan& plan, const std::vector<uint32_t>& slots) const {
  // A backend listed twice owns two slots, so it gets twice the Maglev share as well.
  std::map<uint32_t, uint32_t> weights;
  for (uint32_t backend_id : slots) ++weights[backend_id];
  std::vector<lb::MaglevBackend> backends;
  backends.reserve(weights.size());
  for (const auto& [backend_id, weight] : weights) {
    backends.push_back({backend_id, BackendName(plan.backends.at(backend_id).identity), weight});
  }
  return lb::BuildMaglevTable(backends, options_.maglev_table_size);
}

absl::StatusOr<std::vector<uint32_t>> Reconciler::RemoveFrontends(const Plan& plan, ReconcileStats& stats) {
  std::vector<uint32_t> orphans;
  for (const lb::FrontendKey& key : plan.removals) {
    auto it = frontends_.find(key);
    if (it == frontends_.end()) continue;
    if (absl::Status status = writer_.DeleteService(it->second.key); !status.ok()) return status;
    ++stats.services.deletes;
    // Its tables (possibly none) are now orphans: RemoveOrphanTables deletes them and frees the id.
    const uint32_t id = it->second.value.service_id;
    tables_.try_emplace(id);
    orphans.push_back(id);
    frontends_.erase(it);
  }
  while (!stale_service_keys_.empty()) {
    if (absl::Status status = writer_.DeleteService(stale_service_keys_.back()); !status.ok()) return status;
    ++stats.services.deletes;
    stale_service_keys_.pop_back();
  }
  return orphans;
}

absl::Status Reconciler::RemoveOrphanTables(const Plan& plan, const std::vector<uint32_t>& candidates,
                                            ReconcileStats& stats) {
  if (plan.complete) {
    // Ids are unique among frontends only after a complete plan has been written (adopted maps
    // may say otherwise), so only a complete plan looks at every table.
    std::unordered_set<uint32_t> live_ids;
    for (const auto& [key, frontend] : frontends_) live_ids.insert(frontend.value.service_id);
    for (auto it = tables_.begin(); it != tables_.end();) {
      if (live_ids.contains(it->first)) {
        ++it;
        continue;
      }
      if (absl::Status status = DeleteTables(it->first, it->second, stats); !status.ok()) return status;
      it = tables_.erase(it);
    }
  } else {
    for (uint32_t id : candidates) {
      auto it = tables_.find(id);
      if (it == tables_.end()) continue;
      if (absl::Status status = DeleteTables(id, it->second, stats); !status.ok()) return status;
      tables_.erase(it);
    }
  }
  while (!stale_slot_keys_.empty()) {
    if (absl::Status status = writer_.DeleteSlot(stale_slot_keys_.back()); !status.ok()) return status;
    ++stats.slots.deletes;
    stale_slot_keys_.pop_back();
  }
  return absl::OkStatus();
}

absl::Status Reconciler::DeleteTables(uint32_t id, WrittenTables& tables, ReconcileStats& stats) {
  while (!tables.slots.empty()) {
    if (tables.slots.back().has_value()) {
      const weir_slot_key key{id, static_cast<uint32_t>(tables.slots.size())};
      if (absl::Status status = writer_.DeleteSlot(key); !status.ok()) return status;
      ++stats.slots.deletes;
    }
    PopSlot(tables);
  }
  if (tables.has_maglev) {
    if (absl::Status status = writer_.DeleteMaglev(id); !status.ok()) return status;
    ++stats.maglev.deletes;
    tables.has_maglev = false;
  }
  service_ids_.Release(id);
  std::erase_if(unfinished_frontends_, [id](const auto& unfinished) { return unfinished.second == id; });
  return absl::OkStatus();
}

absl::Status Reconciler::RemoveUnusedBackends(const Plan& plan, ReconcileStats& stats) {
  if (plan.complete) {
    // Every slot and table now matches the plan, so a backend outside the plan is unreferenced.
    std::vector<uint32_t> unused;
    for (const auto& [id, backend] : backends_) {
      if (!plan.backends.contains(id)) unused.push_back(id);
    }
    for (uint32_t id : unused) {
      if (absl::Status status = DeleteBackend(id, stats); !status.ok()) return status;
    }
    return absl::OkStatus();
  }
  for (uint32_t id : unreferenced_) {
    if (slot_refs_.contains(id) || !backends_.contains(id)) continue;
    if (absl::Status status = DeleteBackend(id, stats); !status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status Reconciler::DeleteBackend(uint32_t id, ReconcileStats& stats) {
  auto it = backends_.find(id);
  if (absl::Status status = writer_.DeleteBackend(id); !status.ok()) return status;
  ++stats.backends.deletes;
  if (std::optional<BackendIdentity> identity = DecodeBackendIdentity(it->second); identity.has_value()) {
    auto known = backend_ids_.find(*identity);
    if (known != backend_ids_.end() && known->second == id) backend_ids_.erase(known);
  }
  backend_id_allocator_.Release(id);
  backends_.erase(it);
  return absl::OkStatus();
}

void Reconciler::SetSlot(WrittenTables& tables, size_t index, uint32_t backend_id) {
  std::optional<uint32_t>& slot = tables.slots[index];
  if (slot.has_value()) Unreference(*slot);
  slot = backend_id;
  ++slot_refs_[backend_id];
}

void Reconciler::PopSlot(WrittenTables& tables) {
  if (tables.slots.back().has_value()) Unreference(*tables.slots.back());
  tables.slots.pop_back();
}

void Reconciler::Unreference(uint32_t backend_id) {
  auto refs = slot_refs_.find(backend_id);
  if (--refs->second > 0) return;
  slot_refs_.erase(refs);
  unreferenced_.insert(backend_id);
}

void Reconciler::ReleaseUnwrittenIds(const Plan& plan) {
  for (const auto& [id, backend] : plan.backends) {
    if (backend.newly_allocated && !backends_.contains(id)) backend_id_allocator_.Release(id);
  }
  for (const PlannedFrontend& frontend : plan.frontends) {
    const uint32_t id = frontend.value.service_id;
    if (frontend.newly_allocated_id && !tables_.contains(id)) service_ids_.Release(id);
  }
}

}  // namespace weir::sync
