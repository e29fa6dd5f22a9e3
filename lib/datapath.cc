#include "lib/datapath.h"

#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "from_pod.skel.h"
#include "lib/errno_status.h"
#include "lib/tc_attach.h"

namespace weir {
namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;

absl::Status RequireBpfFs(const std::string& root) {
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", root, ": ", ec.message()));
  struct statfs fs {};
  if (statfs(root.c_str(), &fs) != 0) return ErrnoStatus(errno, absl::StrCat("statfs ", root));
  if (fs.f_type != kBpfFsMagic) {
    return absl::FailedPreconditionError(absl::StrCat(root, " is not on a bpf filesystem (mount -t bpf)"));
  }
  return absl::OkStatus();
}

// Pins under a temporary name, then renames over the old pin: readers never see no program.
absl::Status PinReplacing(bpf_program* program, const std::string& path) {
  // bpffs refuses names with a dot.
  std::string staging = path + "_staging";
  unlink(staging.c_str());
  int err = bpf_program__pin(program, staging.c_str());
  if (err) return ErrnoStatus(-err, absl::StrCat("pin program at ", staging));
  if (rename(staging.c_str(), path.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("rename ", staging, " to ", path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Datapath>> Datapath::Load(const DatapathOptions& options) {
  if (!options.bpf_root.empty()) {
    if (absl::Status status = RequireBpfFs(options.bpf_root); !status.ok()) return status;
  }
  DECLARE_LIBBPF_OPTS(bpf_object_open_opts, open_opts,
                      .pin_root_path = options.bpf_root.empty() ? nullptr : options.bpf_root.c_str());
  from_pod* skeleton = from_pod__open_opts(&open_opts);
  if (skeleton == nullptr) return ErrnoStatus(errno, "open from_pod skeleton");
  std::unique_ptr<Datapath> datapath(new Datapath(skeleton));

  std::memcpy(const_cast<uint8_t*>(skeleton->rodata->gateway_mac), options.gateway_mac.data(), 6);
  bpf_map__set_max_entries(skeleton->maps.weir_endpoints, options.endpoints_max);
  if (options.bpf_root.empty()) {
    bpf_map__set_pin_path(skeleton->maps.weir_endpoints, nullptr);
    bpf_map__set_pin_path(skeleton->maps.weir_metrics, nullptr);
  }
  if (int err = from_pod__load(skeleton); err) return ErrnoStatus(-err, "load from_pod programs");

  if (!options.bpf_root.empty()) {
    PinLayout layout{options.bpf_root};
    if (absl::Status status = datapath->PinPrograms(layout); !status.ok()) return status;
  }
  return datapath;
}

absl::Status Datapath::PinPrograms(const PinLayout& layout) {
  std::error_code ec;
  std::filesystem::create_directories(layout.programs_dir(), ec);
  std::filesystem::create_directories(layout.links_dir(), ec);
  if (ec) return absl::InternalError(absl::StrCat("create pin directories: ", ec.message()));
  if (absl::Status status = PinReplacing(from_pod_->progs.from_pod, layout.from_pod_program()); !status.ok()) {
    return status;
  }
  return UpdatePinnedLinks(layout.links_dir(), from_pod_fd());
}

Datapath::~Datapath() { from_pod__destroy(from_pod_); }

int Datapath::from_pod_fd() const { return bpf_program__fd(from_pod_->progs.from_pod); }
int Datapath::endpoints_fd() const { return bpf_map__fd(from_pod_->maps.weir_endpoints); }
int Datapath::metrics_fd() const { return bpf_map__fd(from_pod_->maps.weir_metrics); }

bool DatapathPinned(const PinLayout& layout) {
  return access(layout.from_pod_program().c_str(), F_OK) == 0 &&
         access(layout.endpoints_map().c_str(), F_OK) == 0;
}

}  // namespace weir
