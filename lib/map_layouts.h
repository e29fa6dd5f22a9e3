// This build's side of map upgrades: the layout version of each pinned map (bpf/abi/constants.h),
// the conversions of entries between layouts and sizes, and the pinned record of which layout the
// maps under a bpf root have.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/bpf_map.h"
#include "lib/map_adoption.h"

namespace weir {

// The layout version this build gives the map named `name`; 1 for a map bpf/abi does not list.
uint32_t LayoutVersion(const std::string& name);

// What this build can carry over: every layout step of bpf/abi's history, and the Maglev tables
// resampled to another table size.
const MapMigrations& WeirMapMigrations();

// weir_services, layout 1 to 2: the frontend entry grew room for backends it carries itself
// (weir_inline_backend); a converted entry carries none, so the datapath finds its backends through
// the slots map as layout 1 did until the agent's sync rewrites the entry.
bool AddInlineBackends(const MapShape& from, const MapShape& to, MapEntryBytes& entry);

// A Maglev table of another size, resampled: every slot of the new table takes the backend of the
// slot at the same relative position in the old one, so new flows keep reaching live backends
// until the agent's sync writes the table computed for the new size.
bool ResampleMaglevTable(const MapShape& from, const MapShape& to, MapEntryBytes& entry);

// The pinned record (WEIR_LAYOUTS_MAP_NAME) of the layout each map under a bpf root was created
// with. Its own definition never changes: map name (16 bytes) -> version (u32).
class PinnedLayouts {
 public:
  static absl::StatusOr<PinnedLayouts> OpenOrCreate(const std::string& path);
  // 1 when the map has no record: it was pinned before records were kept, at version 1.
  absl::StatusOr<uint32_t> Of(const std::string& map_name) const;
  absl::Status Record(const std::string& map_name, uint32_t layout) const;

 private:
  explicit PinnedLayouts(UntypedBpfMap map) : map_(std::move(map)) {}
  UntypedBpfMap map_;
};

}  // namespace weir
