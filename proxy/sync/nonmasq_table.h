// The datapath's set of in-cluster destinations (bpf/abi/masquerade.h), which pods' traffic reaches
// with its own source, and the sync that writes only its differences.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/abi/masquerade.h"
#include "lib/ip.h"
#include "lib/masquerade_maps.h"
#include "lib/pin_layout.h"
#include "lib/unique_fd.h"

namespace weir::sync {

// What an in-cluster CIDR is: the datapath tells pods from other peers by it (bpf/lib/forward.h).
enum class CidrKind : uint32_t {
  kInCluster = WEIR_NONMASQ_IN_CLUSTER,  // nonMasqueradeCIDRs
  kPods = WEIR_NONMASQ_POD_CIDR,         // a node's pod CIDR
  kNode = WEIR_NONMASQ_NODE,             // a node's own address: the only senders of DSR traffic
};
// Which kind a prefix listed twice keeps: a pod CIDR over a node address over the rest.
CidrKind StrongerKind(CidrKind a, CidrKind b);
using CidrKinds = std::map<IpPrefix, CidrKind>;

// The non-masquerade map as the sync sees it.
class CidrTable {
 public:
  virtual ~CidrTable() = default;
  virtual absl::StatusOr<CidrKinds> List() const = 0;
  // Writes the entry, or rewrites its kind.
  virtual absl::Status Add(const IpPrefix& cidr, CidrKind kind) = 0;
  // Succeeds when the entry is already gone.
  virtual absl::Status Remove(const IpPrefix& cidr) = 0;
};

// The pinned LPM trie <bpf root>/weir_nonmasq.
class BpfNonMasqTable : public CidrTable {
 public:
  static absl::StatusOr<std::unique_ptr<BpfNonMasqTable>> OpenPinned(const PinLayout& layout);
  static absl::StatusOr<std::unique_ptr<BpfNonMasqTable>> FromFd(UniqueFd fd);

  absl::StatusOr<CidrKinds> List() const override;
  absl::Status Add(const IpPrefix& cidr, CidrKind kind) override;
  absl::Status Remove(const IpPrefix& cidr) override;

 private:
  using Map = NonMasqueradeMap;
  explicit BpfNonMasqTable(Map map) : map_(std::move(map)) {}
  Map map_;
};

struct CidrChanges {
  size_t added = 0;  // or rewritten with another kind
  size_t removed = 0;
};

// Keeps a CidrTable equal to the desired set, writing only what changed since the previous Sync
// (the first one compares with what the table holds, e.g. left by the previous agent). New entries
// are written before old ones go: a node whose CIDR changes is never outside the set meanwhile.
class NonMasqueradeSync {
 public:
  explicit NonMasqueradeSync(CidrTable& table) : table_(table) {}
  absl::StatusOr<CidrChanges> Sync(const CidrKinds& desired);
  size_t size() const { return written_ ? written_->size() : 0; }

 private:
  CidrTable& table_;
  std::optional<CidrKinds> written_;  // what the table holds; nullopt until read once
};

}  // namespace weir::sync
