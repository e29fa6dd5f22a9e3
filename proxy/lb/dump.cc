#include "proxy/lb/dump.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace weir::lb {
namespace {

struct FlagName {
  uint16_t bit;
  const char* name;
};

// In bit order, so the text is stable.
constexpr FlagName kFlagNames[] = {
    {WEIR_SVC_CLUSTER_IP, "cluster-ip"},   {WEIR_SVC_NODE_PORT, "node-port"},
    {WEIR_SVC_EXTERNAL_IP, "external-ip"}, {WEIR_SVC_LOAD_BALANCER, "load-balancer"},
    {WEIR_SVC_AFFINITY, "affinity"},       {WEIR_SVC_LOCAL_ONLY, "local-only"},
    {WEIR_SVC_TWO_SCOPES, "two-scopes"},   {WEIR_SVC_MAGLEV, "maglev"},
    {WEIR_SVC_DSR, "dsr"},
};

}  // namespace

std::string FormatAddressPort(const IpAddress& address, uint16_t port) {
  return address.is_v4() ? absl::StrCat(address.ToString(), ":", port)
                         : absl::StrCat("[", address.ToString(), "]:", port);
}

std::vector<std::string> FlagList(uint16_t flags) {
  std::vector<std::string> list;
  uint16_t known = 0;
  for (const FlagName& flag : kFlagNames) {
    known |= flag.bit;
    if (flags & flag.bit) list.push_back(flag.name);
  }
  if (const uint16_t unknown = flags & ~known; unknown != 0) list.push_back(absl::StrFormat("0x%x", unknown));
  return list;
}

std::string FlagNames(uint16_t flags, uint32_t affinity_timeout_seconds) {
  std::vector<std::string> list = FlagList(flags);
  for (std::string& name : list) {
    if (name == "affinity") absl::StrAppend(&name, "=", affinity_timeout_seconds, "s");
  }
  return list.empty() ? "-" : absl::StrJoin(list, ",");
}

std::string DumpFrontend(const FrontendSpec& frontend) {
  std::string text = absl::StrCat(FormatAddressPort(frontend.address, frontend.port), "/", L4ProtoName(frontend.proto),
                                  " ", ScopeName(frontend.scope), " ",
                                  frontend.service.empty() ? "-" : frontend.service, " ",
                                  FlagNames(frontend.flags, frontend.affinity_timeout_seconds), "\n");
  if (frontend.backends.empty()) absl::StrAppend(&text, "  (no backends: rejected)\n");
  for (const BackendSpec& backend : frontend.backends) {
    absl::StrAppend(&text, "  ", FormatAddressPort(backend.address, backend.port));
    // Backends normally share the frontend's protocol; say so only when they don't.
    if (backend.proto != frontend.proto) absl::StrAppend(&text, "/", L4ProtoName(backend.proto));
    if (backend.local) absl::StrAppend(&text, " local");
    if (backend.terminating) absl::StrAppend(&text, " terminating");
    absl::StrAppend(&text, "\n");
  }
  return text;
}

std::string DumpDesiredState(const DesiredState& state) {
  std::string text;
  for (const FrontendSpec& frontend : state.frontends) absl::StrAppend(&text, DumpFrontend(frontend));
  return text;
}

}  // namespace weir::lb
