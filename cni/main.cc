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
#include "cni/version.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace {

using weir::cni::CniCommand;

// The version the error JSON is written in: the config's if it can be read, else the newest.
std::string BestEffortVersion(const std::string& stdin_text) {
  auto requested = weir::cni::ParseVersionRequest(stdin_text);
  if (requested.ok() && weir::cni::IsSupportedVersion(*requested)) return *requested;
  return std::string(weir::cni::kLatestVersion);
}

int Fail(const absl::Status& status, const std::string& version) {
  spdlog::error("{}", status.ToString());
  std::cout << weir::cni::CniErrorJson(status, version) << std::endl;
  return 1;
}

void SetUpLogging(const weir::cni::NetConfig& config) {
  std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stderr_sink_mt>()};
  if (!config.log_file.empty()) {
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(config.log_file));
    } catch (const spdlog::spdlog_ex& e) {
      std::cerr << "weir: cannot open logFile " << config.log_file << ": " << e.what() << "\n";
    }
  }
  auto logger = std::make_shared<spdlog::logger>("weir", sinks.begin(), sinks.end());
  using weir::cni::LogLevel;
  switch (config.log_level) {
    case LogLevel::kError: logger->set_level(spdlog::level::err); break;
    case LogLevel::kWarn: logger->set_level(spdlog::level::warn); break;
    case LogLevel::kInfo: logger->set_level(spdlog::level::info); break;
    case LogLevel::kDebug: logger->set_level(spdlog::level::debug); break;
  }
  spdlog::set_default_logger(logger);
}

}  // namespace

int main() {
  std::string stdin_text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  spdlog::set_default_logger(spdlog::stderr_logger_mt("weir-early"));

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
  SetUpLogging(*config);

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
