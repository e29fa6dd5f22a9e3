#include "lib/map_fill.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "lib/errno_status.h"
#include "lib/unique_fd.h"

namespace weir {
namespace {

bool IsArray(uint32_t type) {
  return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PROG_ARRAY ||
         type == BPF_MAP_TYPE_ARRAY_OF_MAPS;
}

absl::StatusOr<uint32_t> CountKeys(int fd, uint32_t key_size, const std::string& name) {
  std::vector<uint8_t> key(key_size), next(key_size);
  const void* previous = nullptr;
  uint32_t count = 0;
  while (bpf_map_get_next_key(fd, previous, next.data()) == 0) {
    ++count;
    key.swap(next);
    previous = key.data();
  }
  if (errno != ENOENT) return ErrnoStatus(errno, absl::StrCat("list ", name));
  return count;
}

// The info query fills whatever struct it is given with the object's own kind of info: a pinned
// program or link must be told apart first, which fdinfo does.
bool IsMap(int fd) {
  std::ifstream fdinfo(absl::StrCat("/proc/self/fdinfo/", fd));
  std::string line;
  while (std::getline(fdinfo, line)) {
    if (line.starts_with("map_type:")) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::vector<MapFill>> ReadMapFill(const std::string& pin_root) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(pin_root.c_str()), closedir);
  if (!dir) return ErrnoStatus(errno, absl::StrCat("open ", pin_root));
  std::vector<MapFill> fills;
  while (const dirent* entry = readdir(dir.get())) {
    const std::string name = entry->d_name;
    if (name.starts_with(".")) continue;
    const std::string path = pin_root + "/" + name;
    struct stat st{};
    if (stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
    UniqueFd fd(bpf_obj_get(path.c_str()));
    if (fd.get() < 0) continue;  // removed meanwhile, or not a BPF object
    bpf_map_info info{};
    uint32_t length = sizeof(info);
    if (!IsMap(fd.get()) || bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0 ||
        info.type == BPF_MAP_TYPE_RINGBUF) {
      continue;
    }
    MapFill fill{.name = name, .capacity = info.max_entries};
    if (IsArray(info.type)) {
      fill.entries = info.max_entries;
    } else {
      absl::StatusOr<uint32_t> count = CountKeys(fd.get(), info.key_size, name);
      if (!count.ok()) return count.status();
      fill.entries = *count;
    }
    fills.push_back(std::move(fill));
  }
  std::sort(fills.begin(), fills.end(), [](const MapFill& a, const MapFill& b) { return a.name < b.name; });
  return fills;
}

}  // namespace weir
