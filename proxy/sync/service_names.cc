#include "proxy/sync/service_names.h"

namespace weir::sync {

absl::Status ServiceNamePublisher::PublishAll(const lb::DesiredState& desired, const Reconciler& reconciler) {
  std::map<uint32_t, ServiceName> names;
  for (const lb::FrontendSpec& frontend : desired.frontends) {
    std::optional<uint32_t> id = reconciler.ServiceIdOf(lb::KeyOf(frontend));
    std::optional<ServiceName> name = ServiceName::Parse(frontend.service);
    if (id && name) names.emplace(*id, *std::move(name));
  }
  if (!written_) {
    auto listed = store_.List();
    if (!listed.ok()) return listed.status();
    written_ = *std::move(listed);
  }
  std::vector<uint32_t> drop;
  for (const auto& [id, name] : *written_) {
    if (!names.contains(id)) drop.push_back(id);
  }
  return Write(names, drop);
}

std::vector<uint32_t> ServiceNamePublisher::IdsBeforeRemoval(const lb::DesiredChanges& changes,
                                                             const Reconciler& reconciler) const {
  std::vector<uint32_t> ids;
  for (const lb::FrontendKey& key : changes.removals) {
    if (std::optional<uint32_t> id = reconciler.ServiceIdOf(key)) ids.push_back(*id);
  }
  return ids;
}

absl::Status ServiceNamePublisher::PublishChanges(const lb::DesiredChanges& changes,
                                                  const std::vector<uint32_t>& removed_ids,
                                                  const Reconciler& reconciler) {
  if (!written_) {
    auto listed = store_.List();
    if (!listed.ok()) return listed.status();
    written_ = *std::move(listed);
  }
  std::map<uint32_t, ServiceName> names;
  std::vector<uint32_t> drop = removed_ids;
  for (const lb::FrontendSpec& frontend : changes.upserts) {
    std::optional<uint32_t> id = reconciler.ServiceIdOf(lb::KeyOf(frontend));
    if (!id) continue;
    if (std::optional<ServiceName> name = ServiceName::Parse(frontend.service)) {
      names.emplace(*id, *std::move(name));
    } else {
      drop.push_back(*id);
    }
  }
  return Write(names, drop);
}

absl::Status ServiceNamePublisher::Write(const std::map<uint32_t, ServiceName>& names,
                                         const std::vector<uint32_t>& drop) {
  // On any error the mirror is no longer known to be true: the next publish reads the store again.
  for (const auto& [id, name] : names) {
    if (auto it = written_->find(id); it != written_->end() && it->second == name) continue;
    if (absl::Status s = store_.Put(id, name); !s.ok()) {
      written_.reset();
      return s;
    }
    (*written_)[id] = name;
  }
  for (uint32_t id : drop) {
    // An id released by a removal may already be reused by a new frontend of the same sync.
    if (names.contains(id) || !written_->contains(id)) continue;
    if (absl::Status s = store_.Delete(id); !s.ok()) {
      written_.reset();
      return s;
    }
    written_->erase(id);
  }
  return absl::OkStatus();
}

}  // namespace weir::sync
