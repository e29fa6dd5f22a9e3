// What the datapath should hold for Services: the output of translation (Kubernetes objects in,
// no BPF), the input of the reconciler (which assigns ids and writes map differences).
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bpf/abi/service.h"
#include "lib/ip.h"
#include "lib/l4_proto.h"

namespace weir::lb {

using weir::L4Proto;
using weir::L4ProtoName;
using weir::ParseL4Proto;
enum class Scope : uint8_t { kExternal = WEIR_SCOPE_EXTERNAL, kInternal = WEIR_SCOPE_INTERNAL };

const char* ScopeName(Scope scope);

struct BackendSpec {
  IpAddress address;
  uint16_t port = 0;
  L4Proto proto = L4Proto::kTcp;
  bool local = false;        // on this node
  bool terminating = false;  // used only because no ready endpoint exists
  auto operator<=>(const BackendSpec&) const = default;
};

// One frontend entry: (address, port, protocol, scope) and everything the datapath needs to
// pick a backend for it.
struct FrontendSpec {
  IpAddress address;
  uint16_t port = 0;
  L4Proto proto = L4Proto::kTcp;
  Scope scope = Scope::kExternal;
  // "namespace/name:portName" (portName may be empty): for weirctl and logs.
  std::string service;
  uint16_t flags = 0;  // enum weir_service_flags
  uint32_t affinity_timeout_seconds = 0;
  // The backends to choose from, sorted, already filtered (readiness / terminating fallback,
  // traffic policy Local, topology). Empty: the datapath rejects (RST / ICMP unreachable).
  std::vector<BackendSpec> backends;
  auto operator<=>(const FrontendSpec&) const = default;
};

struct FrontendKey {
  IpAddress address;
  uint16_t port = 0;
  L4Proto proto = L4Proto::kTcp;
  Scope scope = Scope::kExternal;
  auto operator<=>(const FrontendKey&) const = default;
};

inline FrontendKey KeyOf(const FrontendSpec& f) { return {f.address, f.port, f.proto, f.scope}; }

// Sorted by KeyOf, no duplicate keys.
struct DesiredState {
  std::vector<FrontendSpec> frontends;
};

// What one Service asks for, before conflicts with other Services are resolved: per address:port/
// protocol an external-scope entry and, for externalTrafficPolicy Local, its internal twin, which
// always goes with it. FrontendTable (frontend_table.h) resolves the conflicts.
struct FrontendClaim {
  FrontendSpec external;
  std::optional<FrontendSpec> internal;
  bool operator==(const FrontendClaim&) const = default;
};

// The difference between two DesiredStates: entries to write (new or changed) and keys to remove.
// A key is in at most one of the two; removing a key that is not there is not an error.
struct DesiredChanges {
  std::vector<FrontendSpec> upserts;  // sorted by KeyOf
  std::vector<FrontendKey> removals;  // sorted
  bool empty() const { return upserts.empty() && removals.empty(); }
};

}  // namespace weir::lb
