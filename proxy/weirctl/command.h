// What every weirctl command gets from the command line.
#pragma once

#include <cstdint>
#include <string>

#include "lib/pin_layout.h"
#include "proxy/weirctl/filters.h"
#include "proxy/weirctl/output.h"

namespace weir::weirctl {

struct CommandOptions {
  PinLayout layout;
  OutputFormat format = OutputFormat::kTable;
  FlowFilter filter;
  // events only
  int64_t count = 0;    // stop after this many records (0: no limit)
  int timeout_s = 0;    // stop after this many seconds (0: no limit)
  bool replay = false;  // also the records already in the ring when weirctl started
  // policy only
  std::string argument;      // the command's one positional argument (a pod), if any
  std::string agent_socket;  // the agent's policy socket
};

}  // namespace weir::weirctl
