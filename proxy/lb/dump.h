// A stable, human-readable text form of DesiredState: golden tests compare it and weirctl prints
// it. One line per frontend, then one indented line per backend:
//
//   10.96.0.10:53/UDP external kube-system/kube-dns:dns cluster-ip,affinity=10800s
//     10.244.1.5:53 local
//     10.244.2.7:53 terminating
//   [fd00::1]:80/TCP external default/web:http cluster-ip
//     (no backends: rejected)
//
// Frontends keep DesiredState's order (sorted by key), backends theirs (sorted).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proxy/lb/desired_state.h"

namespace weir::lb {

std::string DumpDesiredState(const DesiredState& state);
std::string DumpFrontend(const FrontendSpec& frontend);  // the frontend's lines, newline-terminated

// "cluster-ip,affinity=10800s,maglev" (abi::ServiceFlagList with the timeout); "-" when no flag is set.
std::string FlagNames(uint16_t flags, uint32_t affinity_timeout_seconds);

}  // namespace weir::lb
