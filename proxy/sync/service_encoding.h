// Translation between the desired state's types (lb::) and the service map ABI, over lib/abi_codec.h
// (the one place that knows byte orders and field layouts).
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>

#include "bpf/abi/service.h"
#include "lib/ip.h"
#include "proxy/lb/desired_state.h"

namespace weir::sync {

// What makes two backend entries the same backend, whichever services use it.
struct BackendIdentity {
  IpAddress address;
  uint16_t port = 0;
  lb::L4Proto proto = lb::L4Proto::kTcp;
  auto operator<=>(const BackendIdentity&) const = default;
};

inline BackendIdentity IdentityOf(const lb::BackendSpec& backend) {
  return {backend.address, backend.port, backend.proto};
}

weir_service_key EncodeServiceKey(const lb::FrontendKey& key);
// nullopt when the family is neither IPv4 nor IPv6.
std::optional<lb::FrontendKey> DecodeServiceKey(const weir_service_key& key);

// `flags`: enum weir_backend_flags.
weir_backend EncodeBackend(const BackendIdentity& identity, uint16_t flags);
std::optional<BackendIdentity> DecodeBackendIdentity(const weir_backend& backend);
uint16_t BackendFlags(const lb::BackendSpec& backend);

// "10.0.0.1:8080/TCP", "[fd00::1]:8080/TCP": the stable name Maglev hashes, identical on every node.
std::string BackendName(const BackendIdentity& identity);
// "10.96.0.1:80/TCP/external": for logs and errors.
std::string FrontendName(const lb::FrontendKey& key);

}  // namespace weir::sync
