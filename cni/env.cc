#include "cni/env.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cni/error.h"

namespace weir::cni {
namespace {

// IFNAMSIZ is 16 including the terminating NUL.
constexpr size_t kMaxInterfaceNameLength = 15;

bool NeedsContainerArgs(CniCommand command) {
  return command == CniCommand::kAdd || command == CniCommand::kCheck || command == CniCommand::kDel;
}

std::string Lookup(const GetenvFunction& getenv_function, const char* name) {
  const char* value = getenv_function(name);
  return value != nullptr ? std::string(value) : std::string();
}

absl::Status MissingVariable(absl::string_view name, CniCommand command) {
  return CniError(CniCode::kInvalidEnv,
                  absl::StrCat(name, " is required for ", CniCommandName(command), " but is not set"));
}

// libcni accepts these spellings for its boolean CNI_ARGS values.
absl::StatusOr<bool> ParseArgBool(absl::string_view key, absl::string_view value) {
  const std::string lower = absl::AsciiStrToLower(value);
  if (lower == "1" || lower == "true") return true;
  if (lower == "0" || lower == "false") return false;
  return CniError(CniCode::kInvalidEnv,
                  absl::StrCat("CNI_ARGS: ", key, "=", value, " is not a boolean (use 1/0 or true/false)"));
}

absl::Status ParseArgs(absl::string_view text, CniEnv& env) {
  env.args_raw = std::string(text);
  for (absl::string_view pair : absl::StrSplit(text, ';', absl::SkipEmpty())) {
    const size_t equals = pair.find('=');
    if (equals == absl::string_view::npos || equals == 0) {
      return CniError(CniCode::kInvalidEnv, absl::StrCat("CNI_ARGS: \"", pair, "\" is not a KEY=VALUE pair"));
    }
    env.args[std::string(pair.substr(0, equals))] = std::string(pair.substr(equals + 1));
  }

  if (auto it = env.args.find("IgnoreUnknown"); it != env.args.end()) {
    absl::StatusOr<bool> ignore = ParseArgBool(it->first, it->second);
    if (!ignore.ok()) return ignore.status();
    env.ignore_unknown_args = *ignore;
  }
  const std::pair<const char*, std::string*> known[] = {
      {"K8S_POD_NAMESPACE", &env.k8s_pod_namespace},
      {"K8S_POD_NAME", &env.k8s_pod_name},
      {"K8S_POD_INFRA_CONTAINER_ID", &env.k8s_pod_infra_container_id},
      {"K8S_POD_UID", &env.k8s_pod_uid},
  };
  for (const auto& [key, value] : env.args) {
    if (key == "IgnoreUnknown") continue;
    bool is_known = false;
    for (const auto& [known_key, field] : known) {
      if (key == known_key) {
        *field = value;
        is_known = true;
      }
    }
    if (!is_known && !env.ignore_unknown_args) {
      return CniError(CniCode::kInvalidEnv,
                      absl::StrCat("CNI_ARGS: unknown argument \"", key,
                                   "\" (add IgnoreUnknown=1 to ignore unknown arguments)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view CniCommandName(CniCommand command) {
  switch (command) {
    case CniCommand::kAdd: return "ADD";
    case CniCommand::kDel: return "DEL";
    case CniCommand::kCheck: return "CHECK";
    case CniCommand::kVersion: return "VERSION";
    case CniCommand::kStatus: return "STATUS";
    case CniCommand::kGc: return "GC";
  }
  return "UNKNOWN";
}

std::optional<CniCommand> ParseCniCommand(absl::string_view text) {
  for (CniCommand command : {CniCommand::kAdd, CniCommand::kDel, CniCommand::kCheck, CniCommand::kVersion,
                             CniCommand::kStatus, CniCommand::kGc}) {
    if (text == CniCommandName(command)) return command;
  }
  return std::nullopt;
}

bool IsValidContainerId(absl::string_view id) {
  if (id.empty() || !absl::ascii_isalnum(static_cast<unsigned char>(id[0]))) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

bool IsValidInterfaceName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxInterfaceNameLength || name == "." || name == "..") {
    return false;
  }
  for (char c : name) {
    if (c == '/' || c == ':' || absl::ascii_isspace(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<CniEnv> ParseCniEnv(const GetenvFunction& getenv_function) {
  CniEnv env;
  const std::string command_text = Lookup(getenv_function, "CNI_COMMAND");
  if (command_text.empty()) {
    return CniError(CniCode::kInvalidEnv, "CNI_COMMAND is not set");
  }
  std::optional<CniCommand> command = ParseCniCommand(command_text);
  if (!command.has_value()) {
    return CniError(CniCode::kInvalidEnv,
                    absl::StrCat("CNI_COMMAND \"", command_text,
                                 "\" is not one of ADD, DEL, CHECK, VERSION, STATUS, GC"));
  }
  env.command = *command;
  env.container_id = Lookup(getenv_function, "CNI_CONTAINERID");
  env.netns = Lookup(getenv_function, "CNI_NETNS");
  env.ifname = Lookup(getenv_function, "CNI_IFNAME");
  if (std::string conf_dir = Lookup(getenv_function, "NETCONFPATH"); !conf_dir.empty())
    env.conf_dir = conf_dir;

  if (NeedsContainerArgs(env.command)) {
    if (env.container_id.empty()) return MissingVariable("CNI_CONTAINERID", env.command);
    if (!IsValidContainerId(env.container_id)) {
      return CniError(CniCode::kInvalidEnv,
                      absl::StrCat("CNI_CONTAINERID \"", env.container_id,
                                   "\" is invalid: it must start with a letter or digit and contain "
                                   "only letters, digits, '_', '.' and '-'"));
    }
    // DEL must work after the runtime already destroyed the namespace, so CNI_NETNS is optional.
    if (env.netns.empty() && env.command != CniCommand::kDel) {
      return MissingVariable("CNI_NETNS", env.command);
    }
    if (env.ifname.empty()) return MissingVariable("CNI_IFNAME", env.command);
    if (!IsValidInterfaceName(env.ifname)) {
      return CniError(CniCode::kInvalidEnv,
                      absl::StrCat("CNI_IFNAME \"", env.ifname,
                                   "\" is not a valid interface name: it must be 1-15 characters, "
                                   "not \".\" or \"..\", without '/', ':' or whitespace"));
    }
  }

  // CNI_ARGS only matters to attachment commands; VERSION/STATUS/GC must not fail over it.
  if (absl::Status status = ParseArgs(Lookup(getenv_function, "CNI_ARGS"), env);
      !status.ok() && NeedsContainerArgs(env.command)) {
    return status;
  }
  for (absl::string_view dir : absl::StrSplit(Lookup(getenv_function, "CNI_PATH"), ':', absl::SkipEmpty())) {
    env.path.emplace_back(dir);
  }
  return env;
}

absl::StatusOr<CniEnv> ParseProcessCniEnv() {
  return ParseCniEnv([](const char* name) { return std::getenv(name); });
}

}  // namespace weir::cni
