// Loads weir's BPF programs and maps from the embedded skeletons. The agent pins them under the
// bpf root; tests load private, unpinned copies.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/netlink.h"
#include "lib/pin_layout.h"

struct from_pod;

namespace weir {

struct DatapathOptions {
  // Empty: nothing is pinned (tests).
  std::string bpf_root;
  MacAddress gateway_mac = {0xee, 0xee, 0xee, 0xee, 0xee, 0xee};
  uint32_t endpoints_max = 65536;
};

class Datapath {
 public:
  // Loads the programs. With a bpf root, maps already pinned there are reused (their contents
  // survive), missing ones are created and pinned, and the programs are pinned, replacing older ones
  // atomically; links pinned by earlier attachments are switched to the new programs.
  static absl::StatusOr<std::unique_ptr<Datapath>> Load(const DatapathOptions& options);
  ~Datapath();

  int from_pod_fd() const;
  int endpoints_fd() const;
  int metrics_fd() const;

 private:
  explicit Datapath(from_pod* skeleton) : from_pod_(skeleton) {}
  absl::Status PinPrograms(const PinLayout& layout);
  from_pod* from_pod_;
};

// True once an agent has pinned what the CNI plugin needs under `layout`.
bool DatapathPinned(const PinLayout& layout);

}  // namespace weir
