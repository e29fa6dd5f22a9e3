// Standalone mode's source of truth: a directory of Kubernetes YAML (or JSON) manifests, followed
// with inotify so that a file added, edited or removed takes effect within a second.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/unique_fd.h"
#include "proxy/k8s/objects.h"

namespace weir::standalone {

using k8s::ObjectSet;

class ManifestDirectory {
 public:
  static absl::StatusOr<ManifestDirectory> Open(std::string dir);

  // Reads every *.yaml, *.yml and *.json file. A file or object that does not decode is logged and
  // skipped; the rest still count.
  ObjectSet Load() const;

  // Waits up to `timeout` for a change in the directory; true when something changed. Changes that
  // arrive in a burst (an editor's write-rename) are collected into one.
  bool WaitForChange(std::chrono::milliseconds timeout);

  const std::string& dir() const { return dir_; }

 private:
  ManifestDirectory(std::string dir, UniqueFd inotify) : dir_(std::move(dir)), inotify_(std::move(inotify)) {}
  std::string dir_;
  UniqueFd inotify_;
};

}  // namespace weir::standalone
