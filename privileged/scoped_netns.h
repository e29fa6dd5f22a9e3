// A throwaway named network namespace for privileged tests: everything a test creates goes in one
// of these, never in the machine's own namespace. Deleting it takes its links and routes with it.
#pragma once

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lib/netns.h"

namespace weir::testing {

class ScopedNetNs {
 public:
  // Creates "weirtest-<pid>-<n>" with `ip netns add` (so `ip netns exec` can inspect it while a
  // test is paused in a debugger).
  static absl::StatusOr<std::unique_ptr<ScopedNetNs>> Create() {
    static std::atomic<int> counter{0};
    RemoveStale();
    const std::string name = absl::StrCat(kPrefix, ::getpid(), "-", counter++);
    if (std::system(absl::StrCat("ip netns add ", name).c_str()) != 0) {
      return absl::InternalError(absl::StrCat("ip netns add ", name, " failed"));
    }
    // Owns the name from here on, so the destructor deletes it even if opening fails.
    auto scoped = std::unique_ptr<ScopedNetNs>(new ScopedNetNs(name));
    absl::StatusOr<NetNs> ns = NetNs::Open(scoped->path());
    if (!ns.ok()) return ns.status();
    scoped->ns_ = std::make_unique<NetNs>(std::move(*ns));
    return scoped;
  }

  ~ScopedNetNs() { Delete(name_); }
  ScopedNetNs(const ScopedNetNs&) = delete;
  ScopedNetNs& operator=(const ScopedNetNs&) = delete;

  const std::string& name() const { return name_; }
  std::string path() const { return absl::StrCat("/run/netns/", name_); }
  const NetNs& ns() const { return *ns_; }

 private:
  static constexpr char kPrefix[] = "weirtest-";

  explicit ScopedNetNs(std::string name) : name_(std::move(name)) {}

  static void Delete(const std::string& name) {
    // The namespace itself disappears once the last descriptor and socket in it are closed too.
    std::system(absl::StrCat("ip netns del ", name, " 2>/dev/null").c_str());
  }

  // Namespaces left behind by test processes that crashed before their destructors ran.
  static void RemoveStale() {
    DIR* dir = ::opendir("/run/netns");
    if (dir == nullptr) return;
    while (const dirent* entry = ::readdir(dir)) {
      const std::string name = entry->d_name;
      if (!absl::StartsWith(name, kPrefix)) continue;
      const std::vector<std::string> parts = absl::StrSplit(name.substr(sizeof(kPrefix) - 1), '-');
      int pid = 0;
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &pid)) continue;
      if (::kill(pid, 0) != 0 && errno == ESRCH) Delete(name);
    }
    ::closedir(dir);
  }

  std::string name_;
  std::unique_ptr<NetNs> ns_;
};

}  // namespace weir::testing
