#include "lib/endpoint_map.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "lib/errno_status.h"

namespace weir {

weir_endpoint_key EndpointKey(const IpAddress& address) {
  weir_endpoint_key key{};
  std::memcpy(key.addr.bytes, address.bytes().data(), address.byte_length());
  key.family = address.is_v4() ? WEIR_FAMILY_IPV4 : WEIR_FAMILY_IPV6;
  return key;
}

namespace {

Endpoint FromEntry(const weir_endpoint_key& key, const weir_endpoint_value& value) {
  Endpoint endpoint;
  endpoint.address = IpAddress::FromBytes(
      key.family == WEIR_FAMILY_IPV4 ? IpFamily::kV4 : IpFamily::kV6, key.addr.bytes);
  endpoint.host_ifindex = static_cast<int>(value.host_ifindex);
  std::memcpy(endpoint.pod_mac.data(), value.pod_mac, sizeof(value.pod_mac));
  endpoint.flags = value.flags;
  endpoint.pod_id = value.pod_id;
  return endpoint;
}

}  // namespace

absl::StatusOr<EndpointMap> EndpointMap::OpenPinned(const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open pinned endpoints map ", path));
  return EndpointMap(UniqueFd(fd));
}

absl::Status EndpointMap::Upsert(const Endpoint& endpoint) {
  weir_endpoint_key key = EndpointKey(endpoint.address);
  weir_endpoint_value value{};
  value.host_ifindex = static_cast<uint32_t>(endpoint.host_ifindex);
  std::memcpy(value.pod_mac, endpoint.pod_mac.data(), sizeof(value.pod_mac));
  value.flags = endpoint.flags;
  value.pod_id = endpoint.pod_id;
  if (bpf_map_update_elem(fd_.get(), &key, &value, BPF_ANY) != 0) {
    return ErrnoStatus(errno, absl::StrCat("write endpoint ", endpoint.address.ToString()));
  }
  return absl::OkStatus();
}

absl::Status EndpointMap::Remove(const IpAddress& address) {
  weir_endpoint_key key = EndpointKey(address);
  if (bpf_map_delete_elem(fd_.get(), &key) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("remove endpoint ", address.ToString()));
  }
  return absl::OkStatus();
}

absl::StatusOr<Endpoint> EndpointMap::Lookup(const IpAddress& address) const {
  weir_endpoint_key key = EndpointKey(address);
  weir_endpoint_value value{};
  if (bpf_map_lookup_elem(fd_.get(), &key, &value) != 0) {
    return ErrnoStatus(errno, absl::StrCat("look up endpoint ", address.ToString()));
  }
  return FromEntry(key, value);
}

absl::StatusOr<std::vector<Endpoint>> EndpointMap::List() const {
  std::vector<Endpoint> endpoints;
  weir_endpoint_key key{};
  weir_endpoint_key next{};
  const void* previous = nullptr;
  while (bpf_map_get_next_key(fd_.get(), previous, &next) == 0) {
    weir_endpoint_value value{};
    if (bpf_map_lookup_elem(fd_.get(), &next, &value) == 0) endpoints.push_back(FromEntry(next, value));
    key = next;
    previous = &key;
  }
  if (errno != ENOENT) return ErrnoStatus(errno, "list endpoints");
  return endpoints;
}

}  // namespace weir
