#include "proxy/sync/service_encoding.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace weir::sync {
namespace {

uint8_t FamilyCode(const IpAddress& address) {
  return address.is_v4() ? WEIR_FAMILY_IPV4 : WEIR_FAMILY_IPV6;
}

std::optional<IpAddress> DecodeAddress(const weir_addr& addr, uint8_t family) {
  if (family == WEIR_FAMILY_IPV4) return IpAddress::FromBytes(IpFamily::kV4, addr.bytes);
  if (family == WEIR_FAMILY_IPV6) return IpAddress::FromBytes(IpFamily::kV6, addr.bytes);
  return std::nullopt;
}

std::string AddressAndPort(const IpAddress& address, uint16_t port) {
  if (address.is_v4()) return absl::StrCat(address.ToString(), ":", port);
  return absl::StrCat("[", address.ToString(), "]:", port);
}

}  // namespace

weir_service_key EncodeServiceKey(const lb::FrontendKey& key) {
  weir_service_key encoded{};
  std::memcpy(encoded.addr.bytes, key.address.bytes().data(), key.address.byte_length());
  encoded.port = htons(key.port);
  encoded.proto = static_cast<uint8_t>(key.proto);
  encoded.family = FamilyCode(key.address);
  encoded.scope = static_cast<uint8_t>(key.scope);
  return encoded;
}

std::optional<lb::FrontendKey> DecodeServiceKey(const weir_service_key& key) {
  std::optional<IpAddress> address = DecodeAddress(key.addr, key.family);
  if (!address.has_value()) return std::nullopt;
  return lb::FrontendKey{*address, ntohs(key.port), static_cast<lb::L4Proto>(key.proto),
                         static_cast<lb::Scope>(key.scope)};
}

weir_backend EncodeBackend(const BackendIdentity& identity, uint16_t flags) {
  weir_backend encoded{};
  std::memcpy(encoded.addr.bytes, identity.address.bytes().data(), identity.address.byte_length());
  encoded.port = htons(identity.port);
  encoded.proto = static_cast<uint8_t>(identity.proto);
  encoded.family = FamilyCode(identity.address);
  encoded.flags = flags;
  return encoded;
}

std::optional<BackendIdentity> DecodeBackendIdentity(const weir_backend& backend) {
  std::optional<IpAddress> address = DecodeAddress(backend.addr, backend.family);
  if (!address.has_value()) return std::nullopt;
  return BackendIdentity{*address, ntohs(backend.port), static_cast<lb::L4Proto>(backend.proto)};
}

uint16_t BackendFlags(const lb::BackendSpec& backend) {
  uint16_t flags = 0;
  if (backend.local) flags |= WEIR_BACKEND_LOCAL;
  if (backend.terminating) flags |= WEIR_BACKEND_TERMINATING;
  return flags;
}

std::string BackendName(const BackendIdentity& identity) {
  return absl::StrCat(AddressAndPort(identity.address, identity.port), "/", lb::L4ProtoName(identity.proto));
}

std::string FrontendName(const lb::FrontendKey& key) {
  return absl::StrCat(AddressAndPort(key.address, key.port), "/", lb::L4ProtoName(key.proto), "/",
                      lb::ScopeName(key.scope));
}

}  // namespace weir::sync
