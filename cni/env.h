// The CNI_* environment a runtime invokes a plugin with, parsed and validated per command.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace weir::cni {

enum class CniCommand { kAdd, kDel, kCheck, kVersion, kStatus, kGc };

// "ADD", "DEL", ... as spelled in CNI_COMMAND.
absl::string_view CniCommandName(CniCommand command);
std::optional<CniCommand> ParseCniCommand(absl::string_view text);

struct CniEnv {
  CniCommand command = CniCommand::kVersion;
  // Empty when not provided (allowed for VERSION/STATUS/GC, and for CNI_NETNS on DEL).
  std::string container_id;
  std::string netns;
  std::string ifname;

  // CNI_ARGS verbatim, and split into key/value pairs (later duplicates win).
  std::string args_raw;
  std::map<std::string, std::string> args;
  bool ignore_unknown_args = false;
  // The Kubernetes conventions carried in CNI_ARGS by kubelet/CRI runtimes; empty when absent.
  std::string k8s_pod_namespace;
  std::string k8s_pod_name;
  std::string k8s_pod_infra_container_id;
  std::string k8s_pod_uid;

  // CNI_PATH split on ':', empty entries dropped, order kept (it is a search order).
  std::vector<std::string> path;

  // Where the runtime read its network configuration lists: NETCONFPATH when the client set it
  // (libcni's cnitool does), else the directory every runtime defaults to. Not a CNI variable;
  // weir only reads it to find a `bandwidth` plugin chained after it (cni/chained_plugins.h).
  std::string conf_dir = "/etc/cni/net.d";
};

// Looks up an environment variable; returns nullptr when unset. Tests pass a fake.
using GetenvFunction = std::function<const char*(const char*)>;

// Parses and validates the environment for the command named by CNI_COMMAND. Every failure is a
// CniCode::kInvalidEnv error whose message names the offending variable:
//   - ADD and CHECK need CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME;
//   - DEL needs CNI_CONTAINERID and CNI_IFNAME (CNI_NETNS is optional: the netns may be gone);
//   - VERSION, STATUS and GC need none of them.
//   - CNI_ARGS keys other than IgnoreUnknown and K8S_POD_{NAMESPACE,NAME,INFRA_CONTAINER_ID,UID}
//     are rejected unless IgnoreUnknown is 1/true (libcni's rule); only ADD/DEL/CHECK fail on
//     CNI_ARGS problems.
absl::StatusOr<CniEnv> ParseCniEnv(const GetenvFunction& getenv_function);

// ParseCniEnv over the real process environment.
absl::StatusOr<CniEnv> ParseProcessCniEnv();

// Spec rule: non-empty, starts alphanumeric, then alphanumerics, '_', '.', '-'.
bool IsValidContainerId(absl::string_view id);
// Linux interface name rule: 1..15 chars, not "." or "..", no '/', ':' or whitespace.
bool IsValidInterfaceName(absl::string_view name);

}  // namespace weir::cni
