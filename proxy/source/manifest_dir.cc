#include "proxy/source/manifest_dir.h"

#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lib/errno_status.h"
#include "proxy/k8s/decode.h"
#include "spdlog/spdlog.h"

namespace weir::standalone {
namespace {

// A burst of events (a write then a rename) ends when none follows within this: long enough for a
// writer's next step, short against the time to enforcement (bench/policy_bench.py measures it).
constexpr std::chrono::milliseconds kBurstQuiet{10};

bool IsManifest(const std::filesystem::path& path) {
  std::string ext = path.extension();
  std::string name = path.filename();
  return !absl::StartsWith(name, ".") && (ext == ".yaml" || ext == ".yml" || ext == ".json");
}

bool Readable(int fd, std::chrono::milliseconds timeout) {
  pollfd pfd{.fd = fd, .events = POLLIN, .revents = 0};
  return poll(&pfd, 1, static_cast<int>(timeout.count())) > 0;
}

// Reads the pending events; the names of the files they concern go into `touched`.
void Drain(int fd, std::set<std::string>& touched) {
  alignas(inotify_event) char buffer[8192];
  ssize_t length;
  while ((length = read(fd, buffer, sizeof(buffer))) > 0) {
    for (ssize_t offset = 0; offset + static_cast<ssize_t>(sizeof(inotify_event)) <= length;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
      if (event->len > 0) touched.insert(event->name);
      offset += sizeof(inotify_event) + event->len;
    }
  }
}

}  // namespace

absl::StatusOr<ManifestDirectory> ManifestDirectory::Open(std::string dir) {
  if (!std::filesystem::is_directory(dir))
    return absl::NotFoundError(absl::StrCat(dir, " is not a directory"));
  UniqueFd inotify(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify.valid()) return ErrnoStatus(errno, "inotify_init1");
  uint32_t events = IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY;
  if (inotify_add_watch(inotify.get(), dir.c_str(), events) < 0) {
    return ErrnoStatus(errno, absl::StrCat("watch ", dir));
  }
  return ManifestDirectory(std::move(dir), std::move(inotify));
}

namespace {

ObjectSet Decode(const std::filesystem::path& file) {
  ObjectSet set;
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  std::vector<absl::Status> errors;
  auto objects = k8s::DecodeManifests(text.str(), &errors);
  if (!objects.ok()) {
    spdlog::warn("skipping {}: {}", file.string(), objects.status().ToString());
    ++set.skipped;
    return set;
  }
  for (const absl::Status& error : errors) {
    spdlog::warn("{}: skipped an object: {}", file.string(), error.ToString());
    ++set.skipped;
  }
  for (k8s::Object& object : *objects) {
    if (auto* service = std::get_if<k8s::Service>(&object)) set.services.push_back(std::move(*service));
    if (auto* slice = std::get_if<k8s::EndpointSlice>(&object)) set.slices.push_back(std::move(*slice));
    if (auto* node = std::get_if<k8s::Node>(&object)) set.nodes.push_back(std::move(*node));
    if (auto* ns = std::get_if<k8s::Namespace>(&object)) set.namespaces.push_back(std::move(*ns));
    if (auto* pod = std::get_if<k8s::Pod>(&object)) set.pods.push_back(std::move(*pod));
    if (auto* policy = std::get_if<k8s::NetworkPolicy>(&object))
      set.network_policies.push_back(std::move(*policy));
  }
  return set;
}

template <typename T>
void Append(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

}  // namespace

std::vector<ManifestDirectory::FileChange> ManifestDirectory::Refresh() {
  // The files events named before this listing; the listing covers them.
  const std::set<std::string> touched = std::exchange(touched_, {});
  std::map<std::string, FileIdentity> present;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    if (!entry.is_regular_file() || !IsManifest(entry.path())) continue;
    struct stat st;
    if (stat(entry.path().c_str(), &st) != 0) continue;  // gone meanwhile
    present[entry.path().string()] = {
        .inode = st.st_ino,
        .size = static_cast<uint64_t>(st.st_size),
        .modified_ns = st.st_mtim.tv_sec * 1'000'000'000ll + st.st_mtim.tv_nsec};
  }
  std::vector<FileChange> changes;
  for (auto it = files_.begin(); it != files_.end();) {
    if (present.count(it->first) > 0) {
      ++it;
      continue;
    }
    changes.push_back({.path = it->first, .before = std::move(it->second.objects), .after = {}});
    it = files_.erase(it);
  }
  for (const auto& [path, identity] : present) {
    auto known = files_.find(path);
    // An event named the file, or it is not the one read last: an edit in place within the clock's
    // granularity keeps size and time, but not its inotify event.
    const bool named = touched.count(std::filesystem::path(path).filename().string()) > 0;
    if (known != files_.end() && known->second.identity == identity && !named) continue;
    FileChange change{.path = path, .before = {}, .after = Decode(path)};
    if (known != files_.end()) change.before = std::move(known->second.objects);
    files_[path] = File{.identity = identity, .objects = change.after};
    changes.push_back(std::move(change));
  }
  return changes;
}

ObjectSet ManifestDirectory::Objects() const {
  ObjectSet set;
  for (const auto& [path, file] : files_) {
    Append(set.services, file.objects.services);
    Append(set.slices, file.objects.slices);
    Append(set.nodes, file.objects.nodes);
    Append(set.namespaces, file.objects.namespaces);
    Append(set.pods, file.objects.pods);
    Append(set.network_policies, file.objects.network_policies);
    set.skipped += file.objects.skipped;
  }
  return set;
}

std::vector<const ObjectSet*> ManifestDirectory::Files() const {
  std::vector<const ObjectSet*> sets;
  for (const auto& [path, file] : files_) sets.push_back(&file.objects);
  return sets;
}

ObjectSet ManifestDirectory::Load() {
  Refresh();
  return Objects();
}

bool ManifestDirectory::WaitForChange(std::chrono::milliseconds timeout) {
  if (!Readable(inotify_.get(), timeout)) return false;
  // Collect the rest of a burst, bounded so a constantly written directory still gets applied.
  for (int i = 0; i < 10 && Readable(inotify_.get(), kBurstQuiet); ++i) Drain(inotify_.get(), touched_);
  Drain(inotify_.get(), touched_);
  return true;
}

}  // namespace weir::standalone
