#include "cni/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"

namespace weir::cni::log {
namespace {

struct State {
  const char* name = "weir-early";
  LogLevel level = LogLevel::kInfo;
  int file_fd = -1;
};

State& state() {
  static State s;
  return s;
}

void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// The level names spdlog wrote, so that the log reads as before.
const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarn: return "warning";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
  }
  return "info";
}

}  // namespace

void Configure(LogLevel level, const std::string& log_file) {
  State& s = state();
  s.name = "weir";
  s.level = level;
  if (log_file.empty() || s.file_fd >= 0) return;
  s.file_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (s.file_fd < 0) {
    WriteAll(STDERR_FILENO,
             absl::StrCat("weir: cannot open logFile ", log_file, ": ", std::strerror(errno), "\n"));
  }
}

// The enum runs from the most to the least severe.
bool Enabled(LogLevel level) { return static_cast<int>(level) <= static_cast<int>(state().level); }

void Write(LogLevel level, const std::string& message) {
  const State& s = state();
  timeval now{};
  gettimeofday(&now, nullptr);
  tm local{};
  localtime_r(&now.tv_sec, &local);
  char stamp[32];
  strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &local);
  // One write per line and sink: O_APPEND keeps lines of concurrent plugin processes whole.
  std::string line = absl::StrFormat("[%s.%03d] [%s] [%s] %s\n", stamp, static_cast<int>(now.tv_usec / 1000),
                                     s.name, LevelName(level), message);
  WriteAll(STDERR_FILENO, line);
  if (s.file_fd >= 0) WriteAll(s.file_fd, line);
}

}  // namespace weir::cni::log
