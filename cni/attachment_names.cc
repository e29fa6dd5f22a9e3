#include "cni/attachment_names.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace weir::cni {
namespace {

// FNV-1a: stable across builds and machines, unlike std::hash.
uint64_t Fnv1a(absl::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

}  // namespace

uint64_t PodId(const std::string& container_id, const std::string& ifname) {
  return Fnv1a(absl::StrCat(container_id, "/", ifname));
}

std::string HostInterfaceName(const std::string& container_id, const std::string& ifname) {
  return HostInterfaceNameOfPodId(PodId(container_id, ifname));
}

std::string HostInterfaceNameOfPodId(uint64_t pod_id) {
  return absl::StrFormat("weir%011x", pod_id & 0xfffffffffffull);
}

}  // namespace weir::cni
