#include "lib/map_adoption.h"

#include <linux/bpf.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weir {
namespace {

bool PerCpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
         type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

// The kind of map an entry means the same in: a hash map's entries copy into an LRU hash map of
// the same key and value (and back), never into an array or a trie.
uint32_t TypeFamily(uint32_t type) {
  switch (type) {
    case BPF_MAP_TYPE_LRU_HASH: return BPF_MAP_TYPE_HASH;
    case BPF_MAP_TYPE_LRU_PERCPU_HASH: return BPF_MAP_TYPE_PERCPU_HASH;
    default: return type;
  }
}

std::string Differences(const MapShape& pinned, const MapShape& wanted) {
  std::vector<std::string> said;
  if (pinned.layout != wanted.layout) {
    said.push_back(absl::StrCat("layout version ", pinned.layout, ", this build's is ", wanted.layout));
  }
  if (pinned.type != wanted.type) {
    said.push_back(absl::StrCat("map type ", pinned.type, ", this build's is ", wanted.type));
  }
  if (pinned.key_size != wanted.key_size) {
    said.push_back(absl::StrCat("keys of ", pinned.key_size, " bytes, this build's are ", wanted.key_size));
  }
  if (pinned.value_size != wanted.value_size) {
    said.push_back(
        absl::StrCat("values of ", pinned.value_size, " bytes, this agent's are ", wanted.value_size));
  }
  if (pinned.max_entries != wanted.max_entries) {
    said.push_back(
        absl::StrCat(pinned.max_entries, " entries, this agent is configured for ", wanted.max_entries));
  }
  if (pinned.flags != wanted.flags) {
    said.push_back(
        absl::StrCat("flags 0x", absl::Hex(pinned.flags), ", this build's are 0x", absl::Hex(wanted.flags)));
  }
  return absl::StrJoin(said, "; ");
}

absl::Status Refuse(const std::string& change, const std::string& why) {
  return absl::FailedPreconditionError(absl::StrCat(change, ": ", why));
}

}  // namespace

void MapMigrations::AddLayoutStep(const std::string& map, uint32_t to_layout, EntryConversion step) {
  steps_[{map, to_layout}] = std::move(step);
}
void MapMigrations::AddValueResize(const std::string& map, EntryConversion resize) {
  resizes_[map] = std::move(resize);
}
void MapMigrations::AddDisposable(const std::string& map) { disposable_.insert(map); }

const EntryConversion* MapMigrations::LayoutStep(const std::string& map, uint32_t to_layout) const {
  auto found = steps_.find({map, to_layout});
  return found == steps_.end() ? nullptr : &found->second;
}
const EntryConversion* MapMigrations::ValueResize(const std::string& map) const {
  auto found = resizes_.find(map);
  return found == resizes_.end() ? nullptr : &found->second;
}
bool MapMigrations::Disposable(const std::string& map) const { return disposable_.count(map) > 0; }

absl::StatusOr<AdoptionPlan> PlanAdoption(const std::string& name, const MapShape& pinned,
                                          const MapShape& wanted, const MapMigrations& migrations) {
  AdoptionPlan plan;
  if (pinned == wanted) return plan;
  plan.change = Differences(pinned, wanted);
  if (pinned.layout > wanted.layout) {
    return Refuse(plan.change, "it was written by a newer weir, and a build converts entries only forward");
  }
  if (migrations.Disposable(name) ||
      (pinned.type == BPF_MAP_TYPE_RINGBUF && wanted.type == BPF_MAP_TYPE_RINGBUF)) {
    plan.adoption = Adoption::kRecreate;
    return plan;
  }
  if (TypeFamily(pinned.type) != TypeFamily(wanted.type)) {
    return Refuse(plan.change, "its entries mean something else in a map of the other type");
  }
  for (uint32_t layout = pinned.layout + 1; layout <= wanted.layout; ++layout) {
    const EntryConversion* step = migrations.LayoutStep(name, layout);
    if (step == nullptr) {
      return Refuse(plan.change,
                    absl::StrCat("this build has no conversion of its entries to layout ", layout));
    }
    plan.conversions.push_back(*step);
  }
  if (plan.conversions.empty()) {
    // One layout: the key and value mean the same, so only a value sized by a setting may differ.
    if (pinned.key_size != wanted.key_size) {
      return Refuse(plan.change, "its key changed without a new layout version (a bug of this build)");
    }
    if (pinned.value_size != wanted.value_size) {
      const EntryConversion* resize = migrations.ValueResize(name);
      if (resize == nullptr) {
        return Refuse(plan.change, "its value changed without a new layout version (a bug of this build)");
      }
      plan.conversions.push_back(*resize);
    }
  }
  if (!plan.conversions.empty() && (PerCpu(pinned.type) || PerCpu(wanted.type))) {
    return Refuse(plan.change, "its values are per CPU, and this build converts only shared values");
  }
  plan.adoption = plan.conversions.empty() ? Adoption::kCopy : Adoption::kConvert;
  return plan;
}

absl::StatusOr<bool> ConvertEntry(const AdoptionPlan& plan, const MapShape& from, const MapShape& to,
                                  MapEntryBytes& entry) {
  if (plan.conversions.empty()) return true;  // a copy, per-CPU values (one per CPU) included
  for (const EntryConversion& conversion : plan.conversions) {
    if (!conversion(from, to, entry)) return false;
  }
  if (entry.key.size() != to.key_size || entry.value.size() != to.value_size) {
    return absl::InternalError(absl::StrCat("an entry converted to a ", entry.key.size(), "-byte key and a ",
                                            entry.value.size(), "-byte value, the map takes ", to.key_size,
                                            " and ", to.value_size));
  }
  return true;
}

}  // namespace weir
