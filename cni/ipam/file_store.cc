#include "cni/ipam/file_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cni/error.h"
#include "lib/errno_status.h"

namespace weir::ipam {
namespace {

using cni::CniCode;
using cni::CniError;

constexpr absl::string_view kLockFileName = "lock";
constexpr absl::string_view kLastReservedPrefix = "last_reserved_ip.";
// host-local's separator between container ID and interface name.
constexpr absl::string_view kOwnerSeparator = "\r\n";
// Reservation files are tiny; anything longer is not ours.
constexpr size_t kMaxFileSize = 4096;

absl::Status IoError(int err, absl::string_view context) {
  return cni::WrapCniError(ErrnoStatus(err, context), CniCode::kIoFailure, "IPAM store");
}

absl::string_view FamilySuffix(IpFamily family) { return family == IpFamily::kV4 ? "4" : "6"; }

// Creates `path` and its missing parents (mkdir -p).
absl::Status MakeDirectories(const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return IoError(errno, absl::StrCat("mkdir ", prefix));
    }
    if (slash == std::string::npos) return absl::OkStatus();
  }
}

// Reads a small file whole; nullopt when it does not exist.
absl::StatusOr<std::optional<std::string>> ReadSmallFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::nullopt;
    return IoError(errno, absl::StrCat("open ", path));
  }
  std::string content(kMaxFileSize, '\0');
  size_t used = 0;
  while (used < content.size()) {
    const ssize_t n = ::read(fd.get(), content.data() + used, content.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError(errno, absl::StrCat("read ", path));
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  content.resize(used);
  return content;
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError(errno, absl::StrCat("write ", path));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Writes `content` to a fresh temp file next to `final_path` and returns the temp path. The name
// starts with '.' so List() never mistakes it for a reservation.
absl::StatusOr<std::string> WriteTempFile(const std::string& dir, absl::string_view final_name,
                                          absl::string_view content) {
  const std::string temp_path = absl::StrCat(dir, "/.tmp-", final_name, "-", ::getpid());
  ::unlink(temp_path.c_str());  // a leftover from a crashed process that had the same pid
  UniqueFd fd(::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return IoError(errno, absl::StrCat("create ", temp_path));
  // No fsync: the store must survive crashed CNI processes (the page cache does), and after a node
  // reboot every pod is re-added while stale entries are collected by GC.
  if (absl::Status status = WriteAll(fd.get(), content, temp_path); !status.ok()) {
    ::unlink(temp_path.c_str());
    return status;
  }
  return temp_path;
}

AllocationOwner ParseOwner(absl::string_view content) {
  AllocationOwner owner;
  const size_t separator = content.find(kOwnerSeparator);
  // Files written by old host-local versions hold only the container ID.
  owner.container_id = std::string(absl::StripAsciiWhitespace(content.substr(0, separator)));
  if (separator != absl::string_view::npos) {
    owner.ifname =
        std::string(absl::StripAsciiWhitespace(content.substr(separator + kOwnerSeparator.size())));
  }
  return owner;
}

bool IsReservationFileName(absl::string_view name) {
  return !name.empty() && name[0] != '.' && name != kLockFileName &&
         !absl::StartsWith(name, kLastReservedPrefix);
}

}  // namespace

FileStore::FileStore(std::string data_dir) : data_dir_(std::move(data_dir)) {
  while (data_dir_.size() > 1 && data_dir_.back() == '/') data_dir_.pop_back();
}

absl::StatusOr<std::string> FileStore::NetworkDir(absl::string_view network) const {
  if (network.empty() || network == "." || network == ".." || network.find('/') != absl::string_view::npos ||
      network.find('\0') != absl::string_view::npos) {
    return CniError(CniCode::kInvalidNetworkConfig,
                    absl::StrCat("network name \"", network, "\" cannot be used as a directory name"));
  }
  return absl::StrCat(data_dir_, "/", network);
}

absl::StatusOr<std::string> FileStore::EnsureNetworkDir(absl::string_view network) const {
  absl::StatusOr<std::string> dir = NetworkDir(network);
  if (!dir.ok()) return dir.status();
  if (absl::Status status = MakeDirectories(*dir); !status.ok()) return status;
  return dir;
}

absl::Status FileStore::Lock(absl::string_view network) {
  if (held_locks_.find(network) != held_locks_.end()) {
    return CniError(CniCode::kInternal, absl::StrCat("IPAM store lock for ", network, " is already held"));
  }
  absl::StatusOr<std::string> dir = EnsureNetworkDir(network);
  if (!dir.ok()) return dir.status();
  const std::string path = absl::StrCat(*dir, "/", kLockFileName);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return IoError(errno, absl::StrCat("open ", path));
  // flock, not fcntl locks: it belongs to the open file description, so two stores in one
  // process (or threads) exclude each other too, and it dies with the process.
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return IoError(errno, absl::StrCat("flock ", path));
  }
  held_locks_.emplace(std::string(network), std::move(fd));
  return absl::OkStatus();
}

void FileStore::Unlock(absl::string_view network) {
  // Closing the descriptor releases the flock.
  if (auto it = held_locks_.find(network); it != held_locks_.end()) held_locks_.erase(it);
}

absl::StatusOr<bool> FileStore::Reserve(absl::string_view network, const IpAddress& address,
                                        const AllocationOwner& owner) {
  absl::StatusOr<std::string> dir = EnsureNetworkDir(network);
  if (!dir.ok()) return dir.status();
  const std::string name = address.ToString();
  const std::string final_path = absl::StrCat(*dir, "/", name);
  absl::StatusOr<std::string> temp_path =
      WriteTempFile(*dir, name, absl::StrCat(owner.container_id, kOwnerSeparator, owner.ifname));
  if (!temp_path.ok()) return temp_path.status();
  // link(2) publishes the complete file atomically and fails with EEXIST instead of overwriting.
  const int linked = ::link(temp_path->c_str(), final_path.c_str());
  const int link_errno = errno;
  ::unlink(temp_path->c_str());
  if (linked == 0) return true;
  if (link_errno == EEXIST) return false;
  return IoError(link_errno, absl::StrCat("link ", final_path));
}

absl::Status FileStore::Release(absl::string_view network, const IpAddress& address) {
  absl::StatusOr<std::string> dir = NetworkDir(network);
  if (!dir.ok()) return dir.status();
  const std::string path = absl::StrCat(*dir, "/", address.ToString());
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return IoError(errno, absl::StrCat("unlink ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<IpAddress>> FileStore::ReleaseByOwner(absl::string_view network,
                                                                 const AllocationOwner& owner) {
  absl::StatusOr<std::vector<Allocation>> allocations = List(network);
  if (!allocations.ok()) return allocations.status();
  std::vector<IpAddress> released;
  for (const Allocation& allocation : *allocations) {
    // An entry without interface name (old host-local format) belongs to the whole container.
    const bool matches = allocation.owner.container_id == owner.container_id &&
                         (allocation.owner.ifname == owner.ifname || allocation.owner.ifname.empty());
    if (!matches) continue;
    if (absl::Status status = Release(network, allocation.address); !status.ok()) return status;
    released.push_back(allocation.address);
  }
  return released;
}

absl::StatusOr<std::vector<Allocation>> FileStore::List(absl::string_view network) {
  absl::StatusOr<std::string> dir = NetworkDir(network);
  if (!dir.ok()) return dir.status();
  std::vector<Allocation> allocations;
  std::unique_ptr<DIR, int (*)(DIR*)> stream(::opendir(dir->c_str()), ::closedir);
  if (stream == nullptr) {
    if (errno == ENOENT) return allocations;  // nothing was ever allocated in this network
    return IoError(errno, absl::StrCat("opendir ", *dir));
  }
  while (true) {
    errno = 0;
    const dirent* entry = ::readdir(stream.get());
    if (entry == nullptr) {
      if (errno != 0) return IoError(errno, absl::StrCat("readdir ", *dir));
      break;
    }
    const absl::string_view name = entry->d_name;
    if (!IsReservationFileName(name)) continue;
    absl::StatusOr<IpAddress> address = IpAddress::Parse(std::string(name));
    if (!address.ok()) continue;  // not a reservation (e.g. an operator's note): leave it alone
    absl::StatusOr<std::optional<std::string>> content = ReadSmallFile(absl::StrCat(*dir, "/", name));
    if (!content.ok()) return content.status();
    if (!content->has_value()) continue;  // released between readdir and open
    allocations.push_back({*address, ParseOwner(**content)});
  }
  std::sort(allocations.begin(), allocations.end(),
            [](const Allocation& a, const Allocation& b) { return a.address < b.address; });
  return allocations;
}

absl::StatusOr<std::optional<IpAddress>> FileStore::LastReserved(absl::string_view network, IpFamily family) {
  absl::StatusOr<std::string> dir = NetworkDir(network);
  if (!dir.ok()) return dir.status();
  absl::StatusOr<std::optional<std::string>> content =
      ReadSmallFile(absl::StrCat(*dir, "/", kLastReservedPrefix, FamilySuffix(family)));
  if (!content.ok()) return content.status();
  if (!content->has_value()) return std::nullopt;
  // The cursor is only a hint: a damaged one restarts round-robin from the range start.
  absl::StatusOr<IpAddress> address = IpAddress::Parse(std::string(absl::StripAsciiWhitespace(**content)));
  if (!address.ok() || address->family() != family) return std::nullopt;
  return *address;
}

absl::Status FileStore::SetLastReserved(absl::string_view network, const IpAddress& address) {
  absl::StatusOr<std::string> dir = EnsureNetworkDir(network);
  if (!dir.ok()) return dir.status();
  const std::string name = absl::StrCat(kLastReservedPrefix, FamilySuffix(address.family()));
  absl::StatusOr<std::string> temp_path = WriteTempFile(*dir, name, address.ToString());
  if (!temp_path.ok()) return temp_path.status();
  const std::string final_path = absl::StrCat(*dir, "/", name);
  if (::rename(temp_path->c_str(), final_path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp_path->c_str());
    return IoError(err, absl::StrCat("rename ", *temp_path, " to ", final_path));
  }
  return absl::OkStatus();
}

}  // namespace weir::ipam
