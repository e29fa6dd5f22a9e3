#include "lib/netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"

namespace weir {

absl::StatusOr<NetNs> NetNs::Open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    const int error = errno;
    const std::string message = absl::StrCat("open netns ", path, ": ", std::strerror(error));
    if (error == ENOENT) return absl::NotFoundError(message);
    if (error == EACCES || error == EPERM) return absl::PermissionDeniedError(message);
    return absl::InternalError(message);
  }
  // NS_GET_NSTYPE only succeeds on nsfs files, so it tells "not a namespace" (ENOTTY) and "some
  // other namespace type" apart from a network namespace in one call.
  const int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
  if (type != CLONE_NEWNET) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a network namespace"));
  }
  return NetNs(std::move(fd), path);
}

absl::StatusOr<NetNs> NetNs::Current() {
  // thread-self, not self: the namespace is per thread, and the main thread may be elsewhere.
  return Open("/proc/thread-self/ns/net");
}

absl::Status NetNs::Run(const std::function<absl::Status()>& fn) const {
  absl::Status status;
  // The thread that enters the namespace exits right after `fn`, so no pooled or long-lived thread
  // is ever left in a foreign namespace.
  std::thread worker([&] {
    if (::setns(fd_.get(), CLONE_NEWNET) != 0) {
      status = absl::InternalError(absl::StrCat("setns ", path_, ": ", std::strerror(errno)));
      return;
    }
    status = fn();
  });
  worker.join();
  return status;
}

}  // namespace weir
