// Deciding how a new agent adopts a pinned map whose definition differs from its own build's or
// configuration's (a conntrackMax changed, a struct of bpf/abi grown): reuse it as it is, copy its
// entries into a map of the new definition, convert them on the way, start it empty, or refuse it.
// Pure: the copying is lib/map_copy.h, the sequence around it lib/datapath.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace weir {

// What the kernel fixed when a map was created, and the layout version of its key and value
// (bpf/abi/constants.h, WEIR_*_LAYOUT).
struct MapShape {
  uint32_t type = 0;  // enum bpf_map_type
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint32_t flags = 0;
  uint32_t layout = 1;
  bool operator==(const MapShape&) const = default;
};

// One entry as bytes.
struct MapEntryBytes {
  std::vector<uint8_t> key;
  std::vector<uint8_t> value;
};

// Rewrites one entry of a map shaped `from` towards `to`; false drops the entry (it has no
// equivalent in the new layout).
using EntryConversion = std::function<bool(const MapShape& from, const MapShape& to, MapEntryBytes& entry)>;

// Per map (by name), the ways its entries move to a new definition.
class MapMigrations {
 public:
  // Converts an entry of layout `to_layout - 1` into one of `to_layout`.
  void AddLayoutStep(const std::string& map, uint32_t to_layout, EntryConversion step);
  // Converts an entry whose value size changed within one layout (a Maglev table of another size).
  void AddValueResize(const std::string& map, EntryConversion resize);
  // Nothing in the map has to outlive its definition (a ring of events): a new one starts empty.
  void AddDisposable(const std::string& map);

  const EntryConversion* LayoutStep(const std::string& map, uint32_t to_layout) const;
  const EntryConversion* ValueResize(const std::string& map) const;
  bool Disposable(const std::string& map) const;

 private:
  std::map<std::pair<std::string, uint32_t>, EntryConversion> steps_;
  std::map<std::string, EntryConversion> resizes_;
  std::set<std::string> disposable_;
};

enum class Adoption {
  kReuse,     // the pinned map is what this agent would create: used as it is
  kCopy,      // same key and value layout, other size, flags or a compatible type: entries copied
  kConvert,   // entries converted on the way (`conversions`, in order)
  kRecreate,  // a new, empty map
};

struct AdoptionPlan {
  Adoption adoption = Adoption::kReuse;
  std::vector<EntryConversion> conversions;
  // What differs, for logs and errors: "262144 entries, this agent's are 131072".
  std::string change;
};

// How to adopt the map named `name` pinned with `pinned` when this agent wants `wanted`.
// FailedPrecondition when its entries cannot be carried over; the message says what differs and
// why, and the caller adds what the operator can do.
absl::StatusOr<AdoptionPlan> PlanAdoption(const std::string& name, const MapShape& pinned,
                                          const MapShape& wanted, const MapMigrations& migrations);

// Applies the plan's conversions to one entry. False: dropped. An entry that comes out in other
// sizes than `to`'s is an error of the conversion.
absl::StatusOr<bool> ConvertEntry(const AdoptionPlan& plan, const MapShape& from, const MapShape& to,
                                  MapEntryBytes& entry);

}  // namespace weir
