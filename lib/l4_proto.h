// The transport protocols a Service port and a datapath entry can have, valued as the ABI spells
// them. Below every layer of proxy/: Kubernetes objects, translation and the map encodings all use it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "bpf/abi/service.h"

namespace weir {

enum class L4Proto : uint8_t { kTcp = WEIR_PROTO_TCP, kUdp = WEIR_PROTO_UDP, kSctp = WEIR_PROTO_SCTP };

// "TCP", "UDP", "SCTP" as in Kubernetes objects; nullopt for anything else.
std::optional<L4Proto> ParseL4Proto(std::string_view kubernetes_name);
const char* L4ProtoName(L4Proto proto);

}  // namespace weir
