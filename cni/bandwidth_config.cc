#include "cni/bandwidth_config.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "cni/error.h"
#include "cni/json_util.h"

namespace weir::cni {
namespace {

absl::Status Invalid(absl::string_view message) { return CniError(CniCode::kInvalidNetworkConfig, message); }

// One direction: "ingress" or "egress". Returns the rate, 0 when the direction is not limited.
struct Direction {
  uint64_t rate = 0;
  uint64_t burst = 0;
};

absl::StatusOr<Direction> ParseDirection(JsonFields& fields, const std::string& direction) {
  const std::string rate_key = direction + "Rate", burst_key = direction + "Burst";
  int64_t rate = 0, burst = 0;
  fields.Int(rate_key.c_str(), rate);
  fields.Int(burst_key.c_str(), burst);
  if (!fields.status().ok()) return fields.status();
  const std::string rate_path = fields.PathOf(rate_key), burst_path = fields.PathOf(burst_key);
  if (rate < 0 || burst < 0)
    return Invalid(absl::StrCat(rate_path, " and ", burst_path, " must not be negative"));
  if (rate == 0 && burst != 0) return Invalid(absl::StrCat(burst_path, " is set but ", rate_path, " is not"));
  if (rate != 0 && burst == 0) return Invalid(absl::StrCat(rate_path, " is set but ", burst_path, " is not"));
  if (burst / 8 >= (int64_t{1} << 32))
    return Invalid(absl::StrCat(burst_path, " ", burst, " is 4 GB or more"));
  if (rate != 0 && (rate < kMinBandwidthBps || rate > kMaxBandwidthBps)) {
    return Invalid(absl::StrCat(rate_path, " ", rate, " bit/s is out of range [", kMinBandwidthBps, ", ",
                                kMaxBandwidthBps, "]"));
  }
  return Direction{static_cast<uint64_t>(rate), static_cast<uint64_t>(burst)};
}

}  // namespace

absl::StatusOr<BandwidthLimit> ParseBandwidth(absl::string_view runtime_config_raw) {
  if (runtime_config_raw.empty()) return BandwidthLimit{};
  rapidjson::Document document;
  if (absl::Status s = ParseJsonObject(runtime_config_raw, "runtimeConfig", document); !s.ok()) return s;
  JsonFields runtime_fields(document, "runtimeConfig");
  const rapidjson::Value* bandwidth = runtime_fields.Object("bandwidth");
  if (!runtime_fields.status().ok()) return runtime_fields.status();
  if (bandwidth == nullptr) return BandwidthLimit{};
  JsonFields fields(*bandwidth, "runtimeConfig.bandwidth");
  absl::StatusOr<Direction> ingress = ParseDirection(fields, "ingress");
  if (!ingress.ok()) return ingress.status();
  absl::StatusOr<Direction> egress = ParseDirection(fields, "egress");
  if (!egress.ok()) return egress.status();
  return BandwidthLimit{.ingress_bps = ingress->rate,
                        .ingress_burst_bits = ingress->burst,
                        .egress_bps = egress->rate,
                        .egress_burst_bits = egress->burst};
}

std::string Describe(const BandwidthLimit& limit) {
  auto rate = [](uint64_t bps) { return bps == 0 ? std::string("unlimited") : absl::StrCat(bps, " bit/s"); };
  return absl::StrCat("ingress ", rate(limit.ingress_bps), ", egress ", rate(limit.egress_bps));
}

TbfSpec TbfFor(uint64_t rate_bps, uint64_t burst_bits, uint32_t mtu) {
  constexpr uint64_t kU32Max = 0xffffffff;
  const uint64_t rate_bytes = rate_bps / 8;
  const uint64_t frames = 2 * (uint64_t{mtu} + 14);  // 14: the Ethernet header tbf counts
  const uint64_t burst = std::max(std::min(burst_bits / 8, rate_bytes / 100), frames);
  const uint64_t limit = burst + rate_bytes / 40;
  return TbfSpec{.rate_bytes_per_s = rate_bytes,
                 .burst_bytes = static_cast<uint32_t>(std::min(burst, kU32Max)),
                 .limit_bytes = static_cast<uint32_t>(std::min(limit, kU32Max))};
}

}  // namespace weir::cni
