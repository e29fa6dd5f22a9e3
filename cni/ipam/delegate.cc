#include "cni/ipam/delegate.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "cni/error.h"
#include "cni/json_util.h"
#include "lib/errno_status.h"
#include "lib/unique_fd.h"

extern char** environ;

namespace weir::ipam {
namespace {

absl::StatusOr<std::string> FindPlugin(const DelegateCall& call) {
  if (call.plugin_type.find('/') != std::string::npos) {
    return cni::CniError(cni::CniCode::kInvalidNetworkConfig,
                         absl::StrCat("ipam.type \"", call.plugin_type, "\" must be a plain plugin name"));
  }
  for (const std::string& dir : call.search_path) {
    std::string candidate = absl::StrCat(dir, "/", call.plugin_type);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return cni::CniError(cni::CniCode::kInvalidNetworkConfig,
                       absl::StrCat("IPAM plugin \"", call.plugin_type, "\" not found in CNI_PATH"));
}

std::vector<std::string> EnvironmentFor(const std::string& command) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "CNI_COMMAND=", 12) != 0) env.emplace_back(*e);
  }
  env.push_back("CNI_COMMAND=" + command);
  return env;
}

absl::Status WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "write to IPAM plugin");
    done += n;
  }
  return absl::OkStatus();
}

std::string ReadAll(int fd) {
  std::string out;
  char buffer[4096];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buffer, n);
  }
  return out;
}

absl::Status ErrorFromPluginOutput(const std::string& plugin, const std::string& output, int exit_code) {
  rapidjson::Document doc;
  if (cni::ParseJsonObject(output, "IPAM plugin error", doc).ok() && doc.HasMember("code") &&
      doc["code"].IsUint()) {
    std::string msg = doc.HasMember("msg") && doc["msg"].IsString() ? doc["msg"].GetString() : "";
    std::string details =
        doc.HasMember("details") && doc["details"].IsString() ? doc["details"].GetString() : "";
    return cni::CniError(static_cast<cni::CniCode>(doc["code"].GetUint()),
                         absl::StrCat("IPAM plugin ", plugin, ": ", msg), details);
  }
  return cni::CniError(cni::CniCode::kInternal,
                       absl::StrCat("IPAM plugin ", plugin, " exited with ", exit_code), output);
}

}  // namespace

absl::StatusOr<std::string> RunDelegate(const DelegateCall& call) {
  auto plugin = FindPlugin(call);
  if (!plugin.ok()) return plugin.status();

  int to_child[2], from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  UniqueFd child_stdin(to_child[0]), write_end(to_child[1]);
  if (pipe2(from_child, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  UniqueFd read_end(from_child[0]), child_stdout(from_child[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_stdin.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, child_stdout.get(), STDOUT_FILENO);
  std::vector<std::string> env = EnvironmentFor(call.command);
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string argv0 = *plugin;
  char* argv[] = {argv0.data(), nullptr};
  pid_t pid = 0;
  int err = posix_spawn(&pid, plugin->c_str(), &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return ErrnoStatus(err, absl::StrCat("run IPAM plugin ", *plugin));
  child_stdin.reset();
  child_stdout.reset();

  // Configurations are small: the write cannot fill the pipe and block against our read.
  absl::Status written = WriteAll(write_end.get(), call.config_json);
  write_end.reset();
  std::string output = ReadAll(read_end.get());
  int wait_status = 0;
  while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  if (!written.ok()) return written;
  int exit_code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
  if (exit_code != 0) return ErrorFromPluginOutput(call.plugin_type, output, exit_code);
  return output;
}

absl::StatusOr<cni::Result> DelegateAdd(const DelegateCall& call) {
  auto output = RunDelegate(call);
  if (!output.ok()) return output.status();
  auto result = cni::ParseResult(*output);
  if (!result.ok()) {
    return cni::CniError(cni::CniCode::kDecodeFailure,
                         absl::StrCat("IPAM plugin ", call.plugin_type, " returned an unreadable result"),
                         result.status().ToString());
  }
  if (result->ips.empty()) {
    return cni::CniError(cni::CniCode::kInternal,
                         absl::StrCat("IPAM plugin ", call.plugin_type, " returned no IP"));
  }
  return result;
}

}  // namespace weir::ipam
