// Delegated IPAM: runs the plugin named by ipam.type from CNI_PATH with the same configuration, as
// the spec's delegation rules say (same environment, CNI_COMMAND possibly overridden).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cni/result.h"

namespace weir::ipam {

struct DelegateCall {
  std::string plugin_type;               // e.g. "host-local"
  std::vector<std::string> search_path;  // CNI_PATH
  std::string command;                   // ADD, DEL, CHECK, GC, STATUS
  std::string config_json;               // the network configuration, unchanged
};

// Returns the plugin's stdout. A non-zero exit becomes the plugin's own CNI error (code and msg).
absl::StatusOr<std::string> RunDelegate(const DelegateCall& call);

// ADD through a delegate, parsed into a Result.
absl::StatusOr<cni::Result> DelegateAdd(const DelegateCall& call);

}  // namespace weir::ipam
