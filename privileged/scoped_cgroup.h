// A throwaway cgroup v2 for privileged tests of the socket hooks: programs attach here, and only
// processes the test moves in are load-balanced, never the machine's own. Removed on destruction
// (its processes must have exited by then).
#pragma once

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace weir::testing {

class ScopedCgroup {
 public:
  // Creates "weirtest-<pid>-<n>" under the cgroup v2 mount; NotFound when the machine has none.
  static absl::StatusOr<std::unique_ptr<ScopedCgroup>> Create() {
    static std::atomic<int> counter{0};
    const std::string root = Cgroup2Root();
    if (root.empty()) return absl::NotFoundError("no cgroup2 filesystem is mounted");
    RemoveStale(root);
    const std::string path = absl::StrCat(root, "/", kPrefix, ::getpid(), "-", counter++);
    if (::mkdir(path.c_str(), 0755) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("mkdir ", path));
    auto scoped = std::unique_ptr<ScopedCgroup>(new ScopedCgroup(path));
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("stat ", path));
    scoped->id_ = st.st_ino;
    return scoped;
  }

  ~ScopedCgroup() { Remove(path_); }
  ScopedCgroup(const ScopedCgroup&) = delete;
  ScopedCgroup& operator=(const ScopedCgroup&) = delete;

  const std::string& path() const { return path_; }
  // What bpf_get_current_cgroup_id() returns for its processes: the directory's inode number.
  uint64_t id() const { return id_; }
  // For a child process to move itself in: write "0" here.
  std::string procs_file() const { return path_ + "/cgroup.procs"; }

 private:
  static constexpr char kPrefix[] = "weirtest-";

  explicit ScopedCgroup(std::string path) : path_(std::move(path)) {}

  static std::string Cgroup2Root() {
    std::ifstream mounts("/proc/self/mounts");
    std::string line;
    while (std::getline(mounts, line)) {
      const std::vector<std::string> fields = absl::StrSplit(line, ' ');
      if (fields.size() > 2 && fields[2] == "cgroup2") return fields[1];
    }
    return "";
  }

  // A cgroup whose last process was just reaped can stay busy for a moment.
  static void Remove(const std::string& path) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      if (::rmdir(path.c_str()) == 0 || errno == ENOENT) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // Cgroups left behind by test processes that crashed before their destructors ran.
  static void RemoveStale(const std::string& root) {
    DIR* dir = ::opendir(root.c_str());
    if (dir == nullptr) return;
    while (const dirent* entry = ::readdir(dir)) {
      const std::string name = entry->d_name;
      if (!absl::StartsWith(name, kPrefix)) continue;
      const std::vector<std::string> parts = absl::StrSplit(name.substr(sizeof(kPrefix) - 1), '-');
      int pid = 0;
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &pid)) continue;
      if (::kill(pid, 0) != 0 && errno == ESRCH) ::rmdir(absl::StrCat(root, "/", name).c_str());
    }
    ::closedir(dir);
  }

  std::string path_;
  uint64_t id_ = 0;
};

}  // namespace weir::testing
