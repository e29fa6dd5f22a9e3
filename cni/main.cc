// weir: the CNI plugin binary. One exec per command; the protocol is env + stdin in, result or error
// JSON on stdout, logs on stderr (and in the config's logFile).
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "cni/commands.h"
#include "cni/config.h"
#include "cni/env.h"
#include "cni/error.h"
#include "cni/log.h"
#include "cni/version.h"

namespace {

using weir::cni::CniCommand;

// The version the error JSON is written in: the config's if it can be read, else the newest.
std::string BestEffortVersion(const std::string& stdin_text) {
  auto requested = weir::cni::ParseVersionRequest(stdin_text);
  if (requested.ok() && weir::cni::IsSupportedVersion(*requested)) return *requested;
  return std::string(weir::cni::kLatestVersion);
}

int Fail(const absl::Status& status, const std::string& version) {
  weir::cni::log::Error("%s", status.ToString());
  std::cout << weir::cni::CniErrorJson(status, version) << std::endl;
  return 1;
}

}  // namespace

int main() {
  std::string stdin_text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());

  auto env = weir::cni::ParseProcessCniEnv();
  if (!env.ok()) return Fail(env.status(), BestEffortVersion(stdin_text));

  if (env->command == CniCommand::kVersion) {
    auto requested = weir::cni::ParseVersionRequest(stdin_text);
    if (!requested.ok()) return Fail(requested.status(), std::string(weir::cni::kLatestVersion));
    std::cout << weir::cni::VersionInfoJson(*requested) << std::endl;
    return 0;
  }

  auto config = weir::cni::ParseNetConfig(stdin_text);
  if (!config.ok()) return Fail(config.status(), BestEffortVersion(stdin_text));
  weir::cni::log::Configure(config->log_level, config->log_file);

  absl::Status status;
  switch (env->command) {
    case CniCommand::kAdd: {
      auto result = weir::cni::CmdAdd(*env, *config);
      if (!result.ok()) return Fail(result.status(), config->cni_version);
      std::cout << *result << std::endl;
      return 0;
    }
    case CniCommand::kDel: status = weir::cni::CmdDel(*env, *config); break;
    case CniCommand::kCheck: status = weir::cni::CmdCheck(*env, *config); break;
    case CniCommand::kStatus: status = weir::cni::CmdStatus(*env, *config); break;
    case CniCommand::kGc: status = weir::cni::CmdGc(*env, *config); break;
    case CniCommand::kVersion: break;
  }
  if (!status.ok()) return Fail(status, config->cni_version);
  return 0;
}
