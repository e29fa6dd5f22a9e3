#include "proxy/lb/dump.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/abi_codec.h"

namespace weir::lb {

std::string FlagNames(uint16_t flags, uint32_t affinity_timeout_seconds) {
  std::vector<std::string> list = abi::ServiceFlagList(flags);
  for (std::string& name : list) {
    if (name == "affinity") absl::StrAppend(&name, "=", affinity_timeout_seconds, "s");
  }
  return list.empty() ? "-" : absl::StrJoin(list, ",");
}

std::string DumpFrontend(const FrontendSpec& frontend) {
  std::string text =
      absl::StrCat(abi::RenderAddressPort(frontend.address, frontend.port), "/", L4ProtoName(frontend.proto),
                   " ", ScopeName(frontend.scope), " ", frontend.service.empty() ? "-" : frontend.service,
                   " ", FlagNames(frontend.flags, frontend.affinity_timeout_seconds), "\n");
  if (frontend.backends.empty()) absl::StrAppend(&text, "  (no backends: rejected)\n");
  for (const BackendSpec& backend : frontend.backends) {
    absl::StrAppend(&text, "  ", abi::RenderAddressPort(backend.address, backend.port));
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
