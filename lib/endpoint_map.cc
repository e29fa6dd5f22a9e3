#include "lib/endpoint_map.h"

#include "absl/strings/str_cat.h"

namespace weir {

absl::StatusOr<EndpointMap> EndpointMap::OpenPinned(const std::string& path) {
  absl::StatusOr<Map> map = Map::OpenPinned(path);
  if (!map.ok()) return map.status();
  return EndpointMap(*std::move(map));
}

absl::StatusOr<EndpointMap> EndpointMap::FromFd(UniqueFd fd) {
  absl::StatusOr<Map> map = Map::FromFd(std::move(fd), WEIR_ENDPOINTS_MAP_NAME);
  if (!map.ok()) return map.status();
  return EndpointMap(*std::move(map));
}

absl::Status EndpointMap::Upsert(const Endpoint& endpoint) const {
  return map_.Update(abi::EncodeEndpointKey(endpoint.address), abi::EncodeEndpointValue(endpoint));
}

absl::Status EndpointMap::Remove(const IpAddress& address) const {
  return map_.Delete(abi::EncodeEndpointKey(address));
}

absl::StatusOr<Endpoint> EndpointMap::Lookup(const IpAddress& address) const {
  const weir_endpoint_key key = abi::EncodeEndpointKey(address);
  absl::StatusOr<std::optional<weir_endpoint_value>> value = map_.Lookup(key);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return absl::NotFoundError(absl::StrCat("no endpoint ", address.ToString()));
  return *abi::DecodeEndpoint(key, **value);
}

absl::StatusOr<std::vector<Endpoint>> EndpointMap::List() const {
  absl::StatusOr<std::vector<Map::Entry>> entries = map_.List();
  if (!entries.ok()) return entries.status();
  std::vector<Endpoint> endpoints;
  endpoints.reserve(entries->size());
  for (const Map::Entry& entry : *entries) {
    if (std::optional<Endpoint> endpoint = abi::DecodeEndpoint(entry.key, entry.value))
      endpoints.push_back(*endpoint);
  }
  return endpoints;
}

}  // namespace weir
