#include "proxy/source/manifest_dir.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lib/errno_status.h"
#include "proxy/k8s/decode.h"
#include "spdlog/spdlog.h"

namespace weir::standalone {
namespace {

bool IsManifest(const std::filesystem::path& path) {
  std::string ext = path.extension();
  std::string name = path.filename();
  return !absl::StartsWith(name, ".") && (ext == ".yaml" || ext == ".yml" || ext == ".json");
}

bool Readable(int fd, std::chrono::milliseconds timeout) {
  pollfd pfd{.fd = fd, .events = POLLIN, .revents = 0};
  return poll(&pfd, 1, static_cast<int>(timeout.count())) > 0;
}

void Drain(int fd) {
  char buffer[8192];
  while (read(fd, buffer, sizeof(buffer)) > 0) {
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

ObjectSet ManifestDirectory::Load() const {
  ObjectSet set;
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    if (entry.is_regular_file() && IsManifest(entry.path())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    std::vector<absl::Status> errors;
    auto objects = k8s::DecodeManifests(text.str(), &errors);
    if (!objects.ok()) {
      spdlog::warn("skipping {}: {}", file.string(), objects.status().ToString());
      ++set.skipped;
      continue;
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
  }
  return set;
}

bool ManifestDirectory::WaitForChange(std::chrono::milliseconds timeout) {
  if (!Readable(inotify_.get(), timeout)) return false;
  // Collect the rest of a burst, bounded so a constantly written directory still gets applied.
  for (int i = 0; i < 10 && Readable(inotify_.get(), std::chrono::milliseconds(50)); ++i)
    Drain(inotify_.get());
  Drain(inotify_.get());
  return true;
}

}  // namespace weir::standalone
