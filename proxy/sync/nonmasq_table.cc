#include "proxy/sync/nonmasq_table.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "bpf/abi/masquerade.h"
#include "lib/errno_status.h"

namespace weir::sync {
namespace {

weir_nonmasq_key KeyOf(const IpPrefix& cidr) {
  const IpPrefix network = cidr.Network();
  weir_nonmasq_key key{};
  key.prefixlen = WEIR_NONMASQ_FAMILY_BITS + static_cast<uint32_t>(network.length());
  key.family = network.address().is_v4() ? WEIR_FAMILY_IPV4 : WEIR_FAMILY_IPV6;
  std::memcpy(key.addr.bytes, network.address().bytes().data(), network.address().byte_length());
  return key;
}

std::optional<IpPrefix> PrefixOf(const weir_nonmasq_key& key) {
  if (key.family != WEIR_FAMILY_IPV4 && key.family != WEIR_FAMILY_IPV6) return std::nullopt;
  const IpFamily family = key.family == WEIR_FAMILY_IPV4 ? IpFamily::kV4 : IpFamily::kV6;
  const IpAddress address = IpAddress::FromBytes(family, key.addr.bytes);
  if (key.prefixlen < WEIR_NONMASQ_FAMILY_BITS ||
      key.prefixlen - WEIR_NONMASQ_FAMILY_BITS > static_cast<uint32_t>(address.bit_length())) {
    return std::nullopt;
  }
  return IpPrefix(address, static_cast<int>(key.prefixlen - WEIR_NONMASQ_FAMILY_BITS));
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpfNonMasqTable>> BpfNonMasqTable::OpenPinned(const PinLayout& layout) {
  const std::string path = layout.nonmasq_map();
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open pinned map ", path));
  return FromFd(UniqueFd(fd));
}

std::unique_ptr<BpfNonMasqTable> BpfNonMasqTable::FromFd(UniqueFd fd) {
  return std::unique_ptr<BpfNonMasqTable>(new BpfNonMasqTable(std::move(fd)));
}

absl::StatusOr<std::vector<IpPrefix>> BpfNonMasqTable::List() const {
  std::vector<IpPrefix> cidrs;
  weir_nonmasq_key key{};
  weir_nonmasq_key next{};
  const void* previous = nullptr;
  while (bpf_map_get_next_key(fd_.get(), previous, &next) == 0) {
    // A key this build cannot read (another layout) is left for Remove to never touch: skipped.
    if (std::optional<IpPrefix> cidr = PrefixOf(next)) cidrs.push_back(*cidr);
    key = next;
    previous = &key;
  }
  if (errno != ENOENT) return ErrnoStatus(errno, "walk map " WEIR_NONMASQ_MAP_NAME);
  return cidrs;
}

absl::Status BpfNonMasqTable::Add(const IpPrefix& cidr) {
  const weir_nonmasq_key key = KeyOf(cidr);
  const uint32_t value = 0;
  if (bpf_map_update_elem(fd_.get(), &key, &value, BPF_ANY) != 0) {
    return ErrnoStatus(errno, absl::StrCat("add ", cidr.ToString(), " to " WEIR_NONMASQ_MAP_NAME));
  }
  return absl::OkStatus();
}

absl::Status BpfNonMasqTable::Remove(const IpPrefix& cidr) {
  const weir_nonmasq_key key = KeyOf(cidr);
  if (bpf_map_delete_elem(fd_.get(), &key) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("remove ", cidr.ToString(), " from " WEIR_NONMASQ_MAP_NAME));
  }
  return absl::OkStatus();
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
