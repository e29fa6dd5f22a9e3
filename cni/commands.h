// The CNI commands, in the shape of containernetworking/plugins: cmdAdd/cmdDel/cmdCheck plus the
// 1.1 additions STATUS and GC. Each returns what goes to stdout on success; errors carry a CniCode.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "cni/config.h"
#include "cni/env.h"

namespace weir::cni {

absl::StatusOr<std::string> CmdAdd(const CniEnv& env, const NetConfig& config);
absl::Status CmdDel(const CniEnv& env, const NetConfig& config);
absl::Status CmdCheck(const CniEnv& env, const NetConfig& config);
absl::Status CmdStatus(const CniEnv& env, const NetConfig& config);
absl::Status CmdGc(const CniEnv& env, const NetConfig& config);

}  // namespace weir::cni
