// The endpoints map (bpf/abi/endpoint.h) in terms of abi::Endpoint: the addresses that live on this
// node and how to deliver to them. Written by the CNI plugin and the agent, read by weirctl.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/abi/endpoint.h"
#include "lib/abi_codec.h"
#include "lib/bpf_map.h"
#include "lib/ip.h"
#include "lib/unique_fd.h"

namespace weir {

using Endpoint = abi::Endpoint;

class EndpointMap {
 public:
  static absl::StatusOr<EndpointMap> OpenPinned(const std::string& path);
  static absl::StatusOr<EndpointMap> FromFd(UniqueFd fd);

  absl::Status Upsert(const Endpoint& endpoint) const;
  // Succeeds when the entry is already gone.
  absl::Status Remove(const IpAddress& address) const;
  // NotFound when absent.
  absl::StatusOr<Endpoint> Lookup(const IpAddress& address) const;
  // Entries of a family this build cannot read are left out.
  absl::StatusOr<std::vector<Endpoint>> List() const;

  int fd() const { return map_.fd(); }

 private:
  using Map = BpfMap<weir_endpoint_key, weir_endpoint_value>;
  explicit EndpointMap(Map map) : map_(std::move(map)) {}
  Map map_;
};

}  // namespace weir
