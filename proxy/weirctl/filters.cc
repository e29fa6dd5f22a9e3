#include "proxy/weirctl/filters.h"

#include <arpa/inet.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bpf/abi/service.h"
#include "lib/abi_codec.h"
#include "proxy/weirctl/format.h"

namespace weir::weirctl {

bool FlowFilter::MatchesSides(const std::vector<FlowSide>& sides) const {
  if (address) {
    bool found = false;
    for (const FlowSide& side : sides) {
      std::optional<IpAddress> ip = abi::DecodeAddress(side.addr, side.family);
      if (ip && ip->family() == address->family() && address->Contains(*ip)) found = true;
    }
    if (!found) return false;
  }
  if (port) {
    bool found = false;
    for (const FlowSide& side : sides) found |= ntohs(side.port_be) == *port;
    if (!found) return false;
  }
  return true;
}

bool FlowFilter::MatchesService(uint32_t service_id, const ServiceDirectory& names) const {
  if (!service) return true;
  if (uint32_t id = 0; absl::SimpleAtoi(*service, &id)) return id == service_id;
  const ServiceName* name = names.Find(service_id);
  if (name == nullptr) return false;
  // Without a port, every port of the Service.
  if (service->find(':') == std::string::npos)
    return absl::StrCat(name->namespace_name, "/", name->name) == *service;
  return name->ToString() == *service;
}

absl::StatusOr<FlowFilter> ParseFilter(const FilterFlags& flags) {
  FlowFilter filter;
  if (!flags.addr.empty()) {
    if (flags.addr.find('/') != std::string::npos) {
      auto prefix = IpPrefix::Parse(flags.addr);
      if (!prefix.ok())
        return absl::InvalidArgumentError(absl::StrCat("--addr ", flags.addr, ": not an address or CIDR"));
      filter.address = prefix->Network();
    } else {
      auto address = IpAddress::Parse(flags.addr);
      if (!address.ok())
        return absl::InvalidArgumentError(absl::StrCat("--addr ", flags.addr, ": not an address or CIDR"));
      filter.address = IpPrefix(*address, address->bit_length());
    }
  }
  if (!flags.port.empty()) {
    uint32_t port = 0;
    if (!absl::SimpleAtoi(flags.port, &port) || port == 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("--port ", flags.port, ": a port from 1 to 65535"));
    }
    filter.port = static_cast<uint16_t>(port);
  }
  if (!flags.proto.empty()) {
    const std::string proto = absl::AsciiStrToLower(flags.proto);
    if (proto == "tcp")
      filter.proto = WEIR_PROTO_TCP;
    else if (proto == "udp")
      filter.proto = WEIR_PROTO_UDP;
    else if (proto == "sctp")
      filter.proto = WEIR_PROTO_SCTP;
    else
      return absl::InvalidArgumentError(absl::StrCat("--proto ", flags.proto, ": tcp, udp or sctp"));
  }
  if (!flags.service.empty()) {
    uint32_t id = 0;
    if (!absl::SimpleAtoi(flags.service, &id) && !ServiceName::Parse(flags.service)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--service ", flags.service, ": namespace/name, namespace/name:port or a service id"));
    }
    filter.service = flags.service;
  }
  for (absl::string_view type : absl::StrSplit(flags.type, ',', absl::SkipEmpty())) {
    filter.types.insert(absl::AsciiStrToLower(type));
  }
  for (absl::string_view verdict : absl::StrSplit(flags.verdict, ',', absl::SkipEmpty())) {
    filter.verdicts.insert(absl::AsciiStrToLower(verdict));
  }
  return filter;
}

}  // namespace weir::weirctl
