#include "lib/errno_status.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace weir {

absl::Status ErrnoStatus(int err, absl::string_view context) {
  return absl::Status(absl::ErrnoToStatusCode(err), absl::StrCat(context, ": ", std::strerror(err)));
}

}  // namespace weir
