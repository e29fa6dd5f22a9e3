#include "proxy/sync/service_encoding.h"

#include "absl/strings/str_cat.h"
#include "lib/abi_codec.h"

namespace weir::sync {

weir_service_key EncodeServiceKey(const lb::FrontendKey& key) {
  return abi::EncodeServiceKey(
      {key.address, key.port, static_cast<uint8_t>(key.proto), static_cast<uint8_t>(key.scope)});
}

std::optional<lb::FrontendKey> DecodeServiceKey(const weir_service_key& key) {
  std::optional<abi::ServiceKeyFields> fields = abi::DecodeServiceKey(key);
  if (!fields.has_value()) return std::nullopt;
  return lb::FrontendKey{fields->address, fields->port, static_cast<lb::L4Proto>(fields->proto),
                         static_cast<lb::Scope>(fields->scope)};
}

weir_backend EncodeBackend(const BackendIdentity& identity, uint16_t flags) {
  return abi::EncodeBackend({identity.address, identity.port, static_cast<uint8_t>(identity.proto), flags});
}

std::optional<BackendIdentity> DecodeBackendIdentity(const weir_backend& backend) {
  std::optional<abi::BackendFields> fields = abi::DecodeBackend(backend);
  if (!fields.has_value()) return std::nullopt;
  return BackendIdentity{fields->address, fields->port, static_cast<lb::L4Proto>(fields->proto)};
}

uint16_t BackendFlags(const lb::BackendSpec& backend) {
  uint16_t flags = 0;
  if (backend.local) flags |= WEIR_BACKEND_LOCAL;
  if (backend.terminating) flags |= WEIR_BACKEND_TERMINATING;
  return flags;
}

std::string BackendName(const BackendIdentity& identity) {
  return absl::StrCat(abi::RenderAddressPort(identity.address, identity.port), "/",
                      lb::L4ProtoName(identity.proto));
}

std::string FrontendName(const lb::FrontendKey& key) {
  return absl::StrCat(abi::RenderAddressPort(key.address, key.port), "/", lb::L4ProtoName(key.proto), "/",
                      lb::ScopeName(key.scope));
}

}  // namespace weir::sync
