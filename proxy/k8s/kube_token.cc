#include "proxy/k8s/kube_token.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace weir::k8s {
namespace {

// Even an unchanged-looking file is re-read this often: some volume types keep mtimes still.
constexpr std::chrono::minutes kMaxTokenAge{1};

}  // namespace

absl::StatusOr<std::string> TokenFile::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  struct stat info {};
  if (::stat(path_.c_str(), &info) != 0) {
    const int err = errno;
    if (!token_.empty()) return token_;
    return absl::UnavailableError(absl::StrCat("token file ", path_, ": ", std::strerror(err)));
  }
  const FileVersion version{info.st_dev, info.st_ino,
                            static_cast<int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec,
                            info.st_size};
  const auto now = std::chrono::steady_clock::now();
  if (!stale_ && version == version_ && now - read_at_ < kMaxTokenAge) return token_;

  std::ifstream in(path_, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(contents.str()));
  if (!in || token.empty()) {
    if (!token_.empty()) return token_;
    return absl::UnavailableError(absl::StrCat("token file ", path_, " is unreadable or empty"));
  }
  if (!token_.empty() && token != token_)
    spdlog::info("kube: token file {} changed; using the new token", path_);
  token_ = std::move(token);
  version_ = version;
  read_at_ = now;
  stale_ = false;
  return token_;
}

void TokenFile::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  stale_ = true;
}

}  // namespace weir::k8s
