// The CNI plugin's logger: lines to stderr and, once the config names one, to its logFile.
//
// The plugin is exec'd once per pod operation, so it carries no logging library: each shared object
// it loads is paid for on every ADD. Lines keep the "[time] [logger] [level] message" layout that the
// plugin wrote before.
#pragma once

#include <string>

#include "absl/strings/str_format.h"
#include "cni/config.h"

namespace weir::cni::log {

// Before Configure: stderr only, at info, as logger "weir-early".
// Configure: logger "weir" at `level`, to stderr and (when not empty) appended to `log_file`.
void Configure(LogLevel level, const std::string& log_file);

bool Enabled(LogLevel level);
void Write(LogLevel level, const std::string& message);

template <typename... Args>
void Log(LogLevel level, const absl::FormatSpec<Args...>& format, const Args&... args) {
  if (Enabled(level)) Write(level, absl::StrFormat(format, args...));
}
template <typename... Args>
void Error(const absl::FormatSpec<Args...>& format, const Args&... args) {
  Log(LogLevel::kError, format, args...);
}
template <typename... Args>
void Info(const absl::FormatSpec<Args...>& format, const Args&... args) {
  Log(LogLevel::kInfo, format, args...);
}

}  // namespace weir::cni::log
