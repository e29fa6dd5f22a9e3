#include "proxy/agent/process_metrics.h"

#include <gtest/gtest.h>

namespace weir::agent {
namespace {

// A real line of /proc/self/stat, with a command name that holds a space and a parenthesis.
constexpr char kStat[] =
    "4242 (weir agent) ) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 50 0 0 20 0 9 0 1000 "
    "123456789 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";

TEST(ProcessMetrics, ParsesTheFieldsAfterTheCommandName) {
  std::optional<ProcessStats> stats = ParseProcStat(kStat, /*ticks=*/100, /*page=*/4096, /*boot_time=*/1e9);
  ASSERT_TRUE(stats.has_value());
  EXPECT_DOUBLE_EQ(stats->cpu_seconds, 3.0);  // (250 + 50) ticks
  EXPECT_DOUBLE_EQ(stats->start_time_seconds, 1e9 + 10);
  EXPECT_DOUBLE_EQ(stats->virtual_bytes, 123456789);
  EXPECT_DOUBLE_EQ(stats->resident_bytes, 2048.0 * 4096);
}

TEST(ProcessMetrics, RefusesATruncatedLine) {
  EXPECT_FALSE(ParseProcStat("4242 (weir) S 1 2 3", 100, 4096, 0).has_value());
  EXPECT_FALSE(ParseProcStat("no parenthesis", 100, 4096, 0).has_value());
}

TEST(ProcessMetrics, RendersTheStandardFamiliesOfThisProcess) {
  const std::string text = ProcessMetricsText();
  for (const char* name :
       {"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
        "process_max_fds ", "process_start_time_seconds ", "process_virtual_memory_bytes "}) {
    EXPECT_NE(text.find(std::string("\n") + name), std::string::npos) << name << " in\n" << text;
  }
}

}  // namespace
}  // namespace weir::agent
