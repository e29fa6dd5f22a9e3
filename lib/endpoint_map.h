// Typed access to the pinned endpoints map.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/abi/endpoint.h"
#include "lib/ip.h"
#include "lib/netlink.h"
#include "lib/unique_fd.h"

namespace weir {

struct Endpoint {
  IpAddress address;
  int host_ifindex = 0;
  MacAddress pod_mac{};
  uint16_t flags = WEIR_ENDPOINT_LOCAL_POD;
  uint64_t pod_id = 0;
};

class EndpointMap {
 public:
  static absl::StatusOr<EndpointMap> OpenPinned(const std::string& path);
  static EndpointMap FromFd(UniqueFd fd) { return EndpointMap(std::move(fd)); }

  absl::Status Upsert(const Endpoint& endpoint);
  // Succeeds when the entry is already gone.
  absl::Status Remove(const IpAddress& address);
  absl::StatusOr<Endpoint> Lookup(const IpAddress& address) const;
  absl::StatusOr<std::vector<Endpoint>> List() const;

  int fd() const { return fd_.get(); }

 private:
  explicit EndpointMap(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

weir_endpoint_key EndpointKey(const IpAddress& address);

}  // namespace weir
