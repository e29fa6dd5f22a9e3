// Network namespaces. setns() only ever happens on a dedicated short-lived thread, so the calling
// thread (and every other thread of the process) stays in its own namespace.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/unique_fd.h"

namespace weir {

class NetNs {
 public:
  // Opens a namespace by path (e.g. /var/run/netns/pod1 or /proc/<pid>/ns/net).
  // NotFound if the path does not exist; InvalidArgument if it is not a network namespace.
  static absl::StatusOr<NetNs> Open(const std::string& path);
  // The namespace of the calling thread.
  static absl::StatusOr<NetNs> Current();

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

  // Runs `fn` on a new thread that has entered this namespace, waits for it, returns its status.
  absl::Status Run(const std::function<absl::Status()>& fn) const;

 private:
  NetNs(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::string path_;
};

}  // namespace weir
