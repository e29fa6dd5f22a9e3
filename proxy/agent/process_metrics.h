// The process metrics every Prometheus client library exports (process_cpu_seconds_total,
// process_resident_memory_bytes, ...), read from /proc at scrape time, so that the dashboards and
// alerts operators keep for kube-proxy and other Go components work on weir-agent unchanged.
#pragma once

#include <optional>
#include <string>

namespace weir::agent {

struct ProcessStats {
  double cpu_seconds = 0;         // user + system
  double start_time_seconds = 0;  // since the Unix epoch
  double virtual_bytes = 0;
  double resident_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;
};

// Parses the fields of /proc/<pid>/stat that the metrics use; nullopt when malformed. `ticks` is
// sysconf(_SC_CLK_TCK), `page` the page size, `boot_time` the btime of /proc/stat.
std::optional<ProcessStats> ParseProcStat(const std::string& stat, long ticks, long page, double boot_time);

// The families in text exposition format; empty when /proc cannot be read.
std::string ProcessMetricsText();

}  // namespace weir::agent
