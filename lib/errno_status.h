// errno to absl::Status, so that syscall and libbpf failures keep their meaning.
#pragma once

#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace weir {

// `err` is a positive errno value (libbpf returns negative ones: pass -ret).
absl::Status ErrnoStatus(int err, absl::string_view context);

}  // namespace weir
