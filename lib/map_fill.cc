#include "lib/map_fill.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <linux/bpf.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "lib/bpf_map.h"
#include "lib/errno_status.h"
#include "lib/unique_fd.h"

namespace weir {
namespace {

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
    struct stat st {};
    if (stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
    UniqueFd fd(bpf_obj_get(path.c_str()));
    if (!fd.valid() || !IsMap(fd.get())) continue;  // removed meanwhile, or not a map
    absl::StatusOr<UntypedBpfMap> map =
        UntypedBpfMap::FromFd(std::move(fd), name, std::nullopt, std::nullopt);
    if (!map.ok() || map->type() == BPF_MAP_TYPE_RINGBUF) continue;
    absl::StatusOr<uint64_t> count = map->Count();
    if (!count.ok()) return count.status();
    MapFill fill{.name = name, .entries = static_cast<uint32_t>(*count), .capacity = map->max_entries()};
    fills.push_back(std::move(fill));
  }
  std::sort(fills.begin(), fills.end(), [](const MapFill& a, const MapFill& b) { return a.name < b.name; });
  return fills;
}

}  // namespace weir
