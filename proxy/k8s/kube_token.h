// A bearer token kept in a file. Bound service account tokens are rotated by the kubelet (about
// hourly, by swapping a symlink in the projected volume), so the file is read again whenever it
// changes, or after the API server rejected the token, or at least once a minute.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"

namespace weir::k8s {

class TokenFile {
 public:
  explicit TokenFile(std::string path) : path_(std::move(path)) {}

  // The current token (surrounding whitespace stripped). Thread-safe. When a re-read fails the
  // last good token is returned: a rotation in progress must not fail a request that may still
  // succeed with it.
  absl::StatusOr<std::string> Get();
  // Forces a re-read at the next Get(), e.g. after a 401.
  void Invalidate();

  const std::string& path() const { return path_; }

 private:
  struct FileVersion {
    dev_t device = 0;
    ino_t inode = 0;
    int64_t mtime_ns = 0;
    off_t size = -1;
    bool operator==(const FileVersion&) const = default;
  };

  const std::string path_;
  std::mutex mu_;
  std::string token_;
  FileVersion version_;
  std::chrono::steady_clock::time_point read_at_{};
  bool stale_ = true;
};

}  // namespace weir::k8s
