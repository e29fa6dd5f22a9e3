#include "proxy/agent/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "proxy/agent/metrics.h"

namespace weir::agent {
namespace {

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::optional<double> BootTime() {
  for (absl::string_view line : absl::StrSplit(ReadFile("/proc/stat"), '\n')) {
    double value = 0;
    if (absl::ConsumePrefix(&line, "btime ") && absl::SimpleAtod(line, &value)) return value;
  }
  return std::nullopt;
}

double CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the directory stream's own descriptor
}

void Family(std::string& out, const char* name, const char* type, const char* help, double value) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
         FormatMetricValue(value) + "\n";
}

}  // namespace

std::optional<ProcessStats> ParseProcStat(const std::string& stat, long ticks, long page, double boot_time) {
  // The command name (field 2) is parenthesised and may hold spaces and parentheses: the fields
  // that follow start after its last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || ticks <= 0) return std::nullopt;
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(stat).substr(close + 1), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state): field N is fields[N - 3].
  auto field = [&](size_t n, double& value) {
    return n - 3 < fields.size() && absl::SimpleAtod(absl::StripAsciiWhitespace(fields[n - 3]), &value);
  };
  double utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
  if (!field(14, utime) || !field(15, stime) || !field(22, start) || !field(23, vsize) || !field(24, rss)) {
    return std::nullopt;
  }
  ProcessStats stats;
  stats.cpu_seconds = (utime + stime) / static_cast<double>(ticks);
  stats.start_time_seconds = boot_time + start / static_cast<double>(ticks);
  stats.virtual_bytes = vsize;
  stats.resident_bytes = rss * static_cast<double>(page);
  return stats;
}

std::string ProcessMetricsText() {
  std::optional<double> boot_time = BootTime();
  if (!boot_time) return "";
  std::optional<ProcessStats> stats =
      ParseProcStat(ReadFile("/proc/self/stat"), sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), *boot_time);
  if (!stats) return "";
  stats->open_fds = CountOpenFds();
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) stats->max_fds = static_cast<double>(limit.rlim_cur);
  std::string out;
  Family(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
         stats->cpu_seconds);
  Family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.", stats->max_fds);
  Family(out, "process_open_fds", "gauge", "Number of open file descriptors.", stats->open_fds);
  Family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
         stats->resident_bytes);
  Family(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
         stats->start_time_seconds);
  Family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", stats->virtual_bytes);
  return out;
}

}  // namespace weir::agent
