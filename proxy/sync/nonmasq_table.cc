#include "proxy/sync/nonmasq_table.h"

#include "lib/abi_codec.h"

namespace weir::sync {

CidrKind StrongerKind(CidrKind a, CidrKind b) {
  auto rank = [](CidrKind kind) { return kind == CidrKind::kPods ? 2 : kind == CidrKind::kNode ? 1 : 0; };
  return rank(a) >= rank(b) ? a : b;
}

namespace {

CidrKind KindOf(uint32_t value) {
  switch (value) {
    case WEIR_NONMASQ_POD_CIDR: return CidrKind::kPods;
    case WEIR_NONMASQ_NODE: return CidrKind::kNode;
    default: return CidrKind::kInCluster;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpfNonMasqTable>> BpfNonMasqTable::OpenPinned(const PinLayout& layout) {
  absl::StatusOr<Map> map = Map::OpenPinned(layout.nonmasq_map());
  if (!map.ok()) return map.status();
  return std::unique_ptr<BpfNonMasqTable>(new BpfNonMasqTable(*std::move(map)));
}

absl::StatusOr<std::unique_ptr<BpfNonMasqTable>> BpfNonMasqTable::FromFd(UniqueFd fd) {
  absl::StatusOr<Map> map = Map::FromFd(std::move(fd), WEIR_NONMASQ_MAP_NAME);
  if (!map.ok()) return map.status();
  return std::unique_ptr<BpfNonMasqTable>(new BpfNonMasqTable(*std::move(map)));
}

absl::StatusOr<CidrKinds> BpfNonMasqTable::List() const {
  absl::StatusOr<std::vector<Map::Entry>> entries = map_.List();
  if (!entries.ok()) return entries.status();
  CidrKinds cidrs;
  for (const Map::Entry& entry : *entries) {
    // A key this build cannot read (another layout) is left for Remove to never touch: skipped.
    if (std::optional<IpPrefix> cidr = abi::DecodeNonMasqueradeKey(entry.key)) {
      cidrs[*cidr] = KindOf(entry.value);
    }
  }
  return cidrs;
}

absl::Status BpfNonMasqTable::Add(const IpPrefix& cidr, CidrKind kind) {
  return map_.Update(abi::EncodeNonMasqueradeKey(cidr), static_cast<uint32_t>(kind));
}

absl::Status BpfNonMasqTable::Remove(const IpPrefix& cidr) {
  return map_.Delete(abi::EncodeNonMasqueradeKey(cidr));
}

absl::StatusOr<CidrChanges> NonMasqueradeSync::Sync(const CidrKinds& desired) {
  if (!written_) {
    absl::StatusOr<CidrKinds> present = table_.List();
    if (!present.ok()) return present.status();
    written_ = *std::move(present);
  }
  CidrKinds wanted;
  for (const auto& [cidr, kind] : desired) {
    // A prefix both pod CIDR and configured is the pods'.
    CidrKind& slot = wanted.try_emplace(cidr.Network(), kind).first->second;
    slot = StrongerKind(slot, kind);
  }
  CidrChanges changes;
  for (const auto& [cidr, kind] : wanted) {
    auto found = written_->find(cidr);
    if (found != written_->end() && found->second == kind) continue;
    if (absl::Status s = table_.Add(cidr, kind); !s.ok()) return s;
    (*written_)[cidr] = kind;
    ++changes.added;
  }
  for (auto it = written_->begin(); it != written_->end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    if (absl::Status s = table_.Remove(it->first); !s.ok()) return s;
    it = written_->erase(it);
    ++changes.removed;
  }
  return changes;
}

}  // namespace weir::sync
