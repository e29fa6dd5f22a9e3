// weir enforces the runtime's `bandwidth` capability itself (docs/bandwidth.md). The reference
// `bandwidth` plugin chained after it would shape nothing: weir's tcx program ends classic tc on
// the host veth's ingress before the plugin's redirect to its ifb, and weir delivers into pods past
// the host veth's root qdisc. weir cannot see the plugins after it (libcni hands each plugin only
// its own entry of the list), so it looks at the list the runtime read: a conflist of this network
// in the runtime's configuration directory.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace weir::cni {

// kInvalidNetworkConfig naming the file when a configuration list in `conf_dir` (*.conflist,
// *.conf, *.json) named `network` chains a plugin of type "bandwidth" after one of type
// `weir_type`. Files that cannot be read or parsed are someone else's problem: skipped.
absl::Status RefuseChainedBandwidth(const std::string& conf_dir, absl::string_view network,
                                    absl::string_view weir_type);

}  // namespace weir::cni
