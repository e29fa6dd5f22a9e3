#include "proxy/weirctl/format.h"

#include <arpa/inet.h>

#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bpf/abi/conntrack.h"
#include "bpf/abi/service.h"
#include "lib/abi_codec.h"

namespace weir::weirctl {
namespace {

uint64_t ClockNs(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(now.tv_nsec);
}

}  // namespace

void WriteAddressPort(Json& json, const weir_addr& addr, uint8_t family, uint16_t port_be) {
  json.StartObject();
  json.Key("address");
  json.String(abi::RenderAddress(addr, family));
  json.Key("port");
  json.Uint(ntohs(port_be));
  json.EndObject();
}

uint64_t SecondsSince(uint64_t stamp_ns, uint64_t now_ns) {
  return now_ns > stamp_ns ? (now_ns - stamp_ns) / 1'000'000'000ull : 0;
}

std::string FormatUnixTime(uint64_t unix_ns) {
  const time_t seconds = static_cast<time_t>(unix_ns / 1'000'000'000ull);
  tm utc{};
  gmtime_r(&seconds, &utc);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                         utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                         static_cast<int>(unix_ns % 1'000'000'000ull));
}

uint64_t MonotonicToUnixNs(uint64_t monotonic_ns) {
  // Read once: the offset between the clocks only moves when the wall clock is set.
  static const int64_t offset =
      static_cast<int64_t>(ClockNs(CLOCK_REALTIME)) - static_cast<int64_t>(ClockNs(CLOCK_MONOTONIC));
  return static_cast<uint64_t>(static_cast<int64_t>(monotonic_ns) + offset);
}

std::string JoinFlags(const std::vector<std::string>& flags) {
  return flags.empty() ? "-" : absl::StrJoin(flags, ",");
}

}  // namespace weir::weirctl
