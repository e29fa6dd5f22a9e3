#include "proxy/sync/nonmasq_table.h"

#include "lib/abi_codec.h"

namespace weir::sync {

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

absl::StatusOr<std::vector<IpPrefix>> BpfNonMasqTable::List() const {
  absl::StatusOr<std::vector<Map::Entry>> entries = map_.List();
  if (!entries.ok()) return entries.status();
  std::vector<IpPrefix> cidrs;
  for (const Map::Entry& entry : *entries) {
    // A key this build cannot read (another layout) is left for Remove to never touch: skipped.
    if (std::optional<IpPrefix> cidr = abi::DecodeNonMasqueradeKey(entry.key)) cidrs.push_back(*cidr);
  }
  return cidrs;
}

absl::Status BpfNonMasqTable::Add(const IpPrefix& cidr) {
  return map_.Update(abi::EncodeNonMasqueradeKey(cidr), 0);
}

absl::Status BpfNonMasqTable::Remove(const IpPrefix& cidr) {
  return map_.Delete(abi::EncodeNonMasqueradeKey(cidr));
}

absl::StatusOr<CidrChanges> NonMasqueradeSync::Sync(const std::vector<IpPrefix>& desired) {
  if (!written_) {
    absl::StatusOr<std::vector<IpPrefix>> present = table_.List();
    if (!present.ok()) return present.status();
    written_.emplace(present->begin(), present->end());
  }
  std::set<IpPrefix> wanted;
  for (const IpPrefix& cidr : desired) wanted.insert(cidr.Network());
  CidrChanges changes;
  for (const IpPrefix& cidr : wanted) {
    if (written_->count(cidr)) continue;
    if (absl::Status s = table_.Add(cidr); !s.ok()) return s;
    written_->insert(cidr);
    ++changes.added;
  }
  for (auto it = written_->begin(); it != written_->end();) {
    if (wanted.count(*it)) {
      ++it;
      continue;
    }
    if (absl::Status s = table_.Remove(*it); !s.ok()) return s;
    it = written_->erase(it);
    ++changes.removed;
  }
  return changes;
}

}  // namespace weir::sync
