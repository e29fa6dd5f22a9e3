// Streams the events ring (drops, translations, socket-LB verdicts) as they happen.
#pragma once

#include "absl/status/status.h"
#include "proxy/weirctl/command.h"

namespace weir::weirctl {

// Prints records from now on (with options.replay, also those already in the ring) until
// options.count records or options.timeout_s seconds.
absl::Status RunEvents(const CommandOptions& options);

}  // namespace weir::weirctl
