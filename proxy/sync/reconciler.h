// Writes a DesiredState into the service maps, touching only what changed and ordering every
// change make-before-break: nothing the datapath can reach ever points at an entry that is not
// there yet or no longer there, so established flows keep their backend across updates, agent
// restarts and failed partial updates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/abi/service.h"
#include "lib/ip.h"
#include "proxy/lb/desired_state.h"
#include "proxy/sync/id_allocator.h"
#include "proxy/sync/map_writer.h"
#include "proxy/sync/service_encoding.h"

namespace weir::sync {

struct ReconcilerOptions {
  // Must be prime and match the value size of the Maglev map (BpfMapWriter::maglev_table_size()).
  uint32_t maglev_table_size = WEIR_MAGLEV_DEFAULT_SIZE;
};

struct MapChangeCounts {
  size_t writes = 0;
  size_t deletes = 0;
};

struct ReconcileStats {
  MapChangeCounts services;
  MapChangeCounts slots;
  MapChangeCounts backends;
  MapChangeCounts maglev;
  // Frontends with more backends than a slot count can address (65535): the rest were left out.
  size_t truncated_frontends = 0;

  size_t writes() const { return services.writes + slots.writes + backends.writes + maglev.writes; }
  size_t deletes() const { return services.deletes + slots.deletes + backends.deletes + maglev.deletes; }
};

class Reconciler {
 public:
  Reconciler(ServiceMapWriter& writer, ReconcilerOptions options) : writer_(writer), options_(options) {}

  // Takes what the maps hold as what was last written: after an agent restart the pinned maps are
  // full and serving traffic, and the next Apply() must rewrite only real differences and keep
  // every service and backend id. Entries this build would never write are deleted by that Apply.
  absl::Status Adopt();

  // Makes the maps hold `desired`. On error the maps hold a consistent mix of old and new state,
  // what was written is remembered, and the next Apply() continues from there.
  absl::StatusOr<ReconcileStats> Apply(const lb::DesiredState& desired);

  // Writes only `changes`, leaving every other frontend as it is: the cost follows the size of the
  // change, not of the maps. Same ordering guarantees as Apply(). After an error, call Apply() with
  // the whole desired state: only a complete pass can tell what the failed one left behind.
  absl::StatusOr<ReconcileStats> ApplyChanges(const lb::DesiredChanges& changes);

  std::optional<uint32_t> ServiceIdOf(const lb::FrontendKey& key) const;
  std::optional<uint32_t> BackendIdOf(const BackendIdentity& backend) const;
  size_t frontend_count() const { return frontends_.size(); }
  size_t backend_count() const { return backends_.size(); }
  // Whether the backends map holds `backend_id` (as far as this reconciler wrote or adopted it).
  bool HasBackend(uint32_t backend_id) const { return backends_.contains(backend_id); }

 private:
  // A frontend entry as it is in the services map.
  struct WrittenFrontend {
    weir_service_key key;
    weir_service_value value;
  };
  // What the slots and Maglev maps hold for one service id.
  struct WrittenTables {
    std::vector<std::optional<uint32_t>> slots;  // [i]: backend id in slot i + 1, if present
    bool has_maglev = false;
    // The slots the Maglev table was built from; nullopt when not known (adopted).
    std::optional<std::vector<uint32_t>> maglev_source;
    std::vector<uint32_t> adopted_maglev;  // kept only while maglev_source is unknown
  };
  struct PlannedBackend {
    BackendIdentity identity;
    weir_backend value;
    bool newly_allocated = false;
  };
  struct PlannedFrontend {
    lb::FrontendKey key;
    weir_service_key map_key;
    weir_service_value value;
    std::vector<uint32_t> slots;  // backend ids, slot 1 first
    bool newly_allocated_id = false;
  };
  struct Plan {
    // The plan covers every frontend: whatever it does not list goes, and so do the backends and
    // tables nothing uses any more. Otherwise only `removals` go, and what they leave unused.
    bool complete = false;
    std::map<uint32_t, PlannedBackend> backends;  // by id
    std::vector<PlannedFrontend> frontends;       // existing frontends first, then new ones
    std::vector<lb::FrontendKey> removals;
  };

  absl::StatusOr<Plan> MakePlan(const std::vector<lb::FrontendSpec>& desired, ReconcileStats& stats);
  absl::StatusOr<ReconcileStats> Run(const Plan& plan, ReconcileStats stats);
  absl::Status Execute(const Plan& plan, ReconcileStats& stats);
  absl::Status WriteBackends(const Plan& plan, ReconcileStats& stats);
  absl::Status SyncFrontend(const Plan& plan, const PlannedFrontend& frontend, ReconcileStats& stats);
  // Returns the ids of the removed frontends, whose tables are now orphans.
  absl::StatusOr<std::vector<uint32_t>> RemoveFrontends(const Plan& plan, ReconcileStats& stats);
  // `candidates`: the ids that may have lost their frontend; all ids when the plan is complete.
  absl::Status RemoveOrphanTables(const Plan& plan, const std::vector<uint32_t>& candidates,
                                  ReconcileStats& stats);
  absl::Status DeleteTables(uint32_t id, WrittenTables& tables, ReconcileStats& stats);
  absl::Status RemoveUnusedBackends(const Plan& plan, ReconcileStats& stats);
  absl::Status DeleteBackend(uint32_t id, ReconcileStats& stats);
  // The mirror of one slot, keeping slot_refs_ current.
  void SetSlot(WrittenTables& tables, size_t index, uint32_t backend_id);
  void PopSlot(WrittenTables& tables);
  void Unreference(uint32_t backend_id);
  std::vector<uint32_t> BuildMaglev(const Plan& plan, const std::vector<uint32_t>& slots) const;
  // Gives back ids a failed Apply allocated but never wrote.
  void ReleaseUnwrittenIds(const Plan& plan);
  void Forget();

  ServiceMapWriter& writer_;
  ReconcilerOptions options_;

  // Mirror of the maps, updated after every successful write or delete.
  std::map<lb::FrontendKey, WrittenFrontend> frontends_;
  std::map<uint32_t, WrittenTables> tables_;         // by service id
  std::map<uint32_t, weir_backend> backends_;        // by backend id
  std::map<BackendIdentity, uint32_t> backend_ids_;  // identity -> id, for backends_
  // Backend id -> how many slots hold it. A backend is unused when this reaches 0: a Maglev table
  // holds only backends of its own slots.
  std::unordered_map<uint32_t, uint32_t> slot_refs_;
  // Backends whose count reached 0 during the current Apply: the ones a partial plan may delete.
  std::set<uint32_t> unreferenced_;
  // Adopted entries this build would never write (not a canonical encoding): deleted by Apply.
  std::vector<weir_service_key> stale_service_keys_;
  std::vector<weir_slot_key> stale_slot_keys_;
  // New frontends whose slots were written under an id but whose own entry was not (a failed
  // Apply): the retry keeps the id and so the slots.
  std::map<lb::FrontendKey, uint32_t> unfinished_frontends_;

  IdAllocator service_ids_;           // used: ids of frontends_ and tables_
  IdAllocator backend_id_allocator_;  // used: ids of backends_
};

}  // namespace weir::sync
