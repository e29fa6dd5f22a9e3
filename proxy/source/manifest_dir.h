// Standalone mode's source of truth: a directory of Kubernetes YAML (or JSON) manifests, followed
// with inotify so that a file added, edited or removed takes effect at once.
//
// Each file's objects are kept, decoded, with the file's identity (inode, size, modification time):
// a change re-reads only the files that changed, and says which objects they held before and hold
// now, so one policy written beside 10,000 pods costs one small file's decoding, not the cluster's.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
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

  // A file that was added, edited or removed since the previous Refresh(): its objects before
  // (empty when new) and now (empty when removed).
  struct FileChange {
    std::string path;
    ObjectSet before;
    ObjectSet after;
  };

  // Re-reads the *.yaml, *.yml and *.json files that changed. A file or object that does not decode
  // is logged and skipped; the rest still count.
  std::vector<FileChange> Refresh();
  // Every file's objects, in the order of the files' names (as of the last Refresh()).
  ObjectSet Objects() const;
  // Each file's objects, in the order of the files' names, without copying them (valid until the
  // next Refresh()).
  std::vector<const ObjectSet*> Files() const;
  // Refresh(), then Objects().
  ObjectSet Load();

  // Waits up to `timeout` for a change in the directory; true when something changed. Changes that
  // arrive in a burst (an editor's write-rename) are collected into one.
  bool WaitForChange(std::chrono::milliseconds timeout);

  const std::string& dir() const { return dir_; }

 private:
  struct FileIdentity {
    uint64_t inode = 0;
    uint64_t size = 0;
    int64_t modified_ns = 0;
    bool operator==(const FileIdentity&) const = default;
  };
  struct File {
    FileIdentity identity;
    ObjectSet objects;
  };

  ManifestDirectory(std::string dir, UniqueFd inotify) : dir_(std::move(dir)), inotify_(std::move(inotify)) {}
  std::string dir_;
  UniqueFd inotify_;
  std::map<std::string, File> files_;  // by path: sorted, as Objects() concatenates them
  std::set<std::string> touched_;      // file names inotify reported since the last Refresh()
};

}  // namespace weir::standalone
