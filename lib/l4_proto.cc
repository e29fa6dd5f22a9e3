#include "lib/l4_proto.h"

namespace weir {

std::optional<L4Proto> ParseL4Proto(std::string_view kubernetes_name) {
  if (kubernetes_name == "TCP") return L4Proto::kTcp;
  if (kubernetes_name == "UDP") return L4Proto::kUdp;
  if (kubernetes_name == "SCTP") return L4Proto::kSctp;
  return std::nullopt;
}

const char* L4ProtoName(L4Proto proto) {
  switch (proto) {
    case L4Proto::kTcp: return "TCP";
    case L4Proto::kUdp: return "UDP";
    case L4Proto::kSctp: return "SCTP";
  }
  return "?";
}

}  // namespace weir
