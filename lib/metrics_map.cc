#include "lib/metrics_map.h"

#include <unistd.h>

#include <cerrno>

#include "lib/bpf_map.h"
#include "lib/errno_status.h"
#include "lib/unique_fd.h"

namespace weir {

const char* MetricName(uint32_t id) {
  switch (id) {
    case WEIR_METRIC_LOCAL_DELIVERY: return "local_delivery";
    case WEIR_METRIC_TO_STACK: return "to_stack";
    case WEIR_METRIC_ARP_REPLY: return "arp_reply";
    case WEIR_METRIC_ND_REPLY: return "nd_reply";
    case WEIR_METRIC_TTL_EXCEEDED: return "ttl_exceeded";
    case WEIR_METRIC_PARSE_ERROR: return "parse_error";
    case WEIR_METRIC_SERVICE_TRANSLATED: return "service_translated";
    case WEIR_METRIC_REPLY_TRANSLATED: return "reply_translated";
    case WEIR_METRIC_NO_BACKEND: return "no_backend";
    case WEIR_METRIC_TRANSLATION_ERROR: return "translation_error";
    case WEIR_METRIC_MASQUERADED: return "masqueraded";
    case WEIR_METRIC_SOCK_CONNECT4_TRANSLATED: return "sock_connect4_translated";
    case WEIR_METRIC_SOCK_CONNECT6_TRANSLATED: return "sock_connect6_translated";
    case WEIR_METRIC_SOCK_CONNECT_REFUSED: return "sock_connect_refused";
    case WEIR_METRIC_SOCK_CONNECT_PASSTHROUGH: return "sock_connect_passthrough";
    case WEIR_METRIC_SOCK_AFFINITY_HIT: return "sock_affinity_hit";
    case WEIR_METRIC_SOCK_SENDMSG_TRANSLATED: return "sock_sendmsg_translated";
    case WEIR_METRIC_SOCK_SENDMSG_REFUSED: return "sock_sendmsg_refused";
    case WEIR_METRIC_SOCK_RECVMSG_TRANSLATED: return "sock_recvmsg_translated";
    case WEIR_METRIC_HELD_AT_UPGRADE: return "held_at_upgrade";
    case WEIR_METRIC_DSR_REFUSED: return "dsr_refused";
    case WEIR_METRIC_XDP_SENT: return "xdp_sent";
    default: return nullptr;
  }
}

namespace {

bool IsDrop(uint32_t id) {
  return id == WEIR_METRIC_NO_BACKEND || id == WEIR_METRIC_TRANSLATION_ERROR ||
         id == WEIR_METRIC_PARSE_ERROR || id == WEIR_METRIC_TTL_EXCEEDED ||
         id == WEIR_METRIC_HELD_AT_UPGRADE || id == WEIR_METRIC_DSR_REFUSED;
}

bool IsSocketLb(uint32_t id) {
  return id >= WEIR_METRIC_SOCK_CONNECT4_TRANSLATED && id <= WEIR_METRIC_SOCK_RECVMSG_TRANSLATED;
}

}  // namespace

namespace {

using MetricsMap = BpfMap<uint32_t, weir_metric_value>;

absl::StatusOr<std::vector<MetricTotal>> Totals(const MetricsMap& map) {
  std::vector<MetricTotal> totals;
  for (uint32_t id = 0; id < WEIR_METRIC_MAX; ++id) {
    const char* name = MetricName(id);
    if (name == nullptr) continue;
    absl::StatusOr<std::optional<std::vector<weir_metric_value>>> per_cpu = map.LookupPerCpu(id);
    if (!per_cpu.ok()) return per_cpu.status();
    if (!per_cpu->has_value()) continue;
    MetricTotal total{.id = id, .name = name, .drop = IsDrop(id), .socket_lb = IsSocketLb(id)};
    for (const weir_metric_value& v : **per_cpu) {
      total.packets += v.packets;
      total.bytes += v.bytes;
    }
    totals.push_back(total);
  }
  return totals;
}

}  // namespace

absl::StatusOr<std::vector<MetricTotal>> ReadMetrics(const std::string& pinned_path) {
  absl::StatusOr<MetricsMap> map = MetricsMap::OpenPinned(pinned_path);
  if (!map.ok()) return map.status();
  return Totals(*map);
}

absl::StatusOr<std::vector<MetricTotal>> ReadMetricsFromFd(int map_fd) {
  UniqueFd fd(dup(map_fd));
  if (!fd.valid()) return ErrnoStatus(errno, "duplicate the metrics map's fd");
  absl::StatusOr<MetricsMap> map = MetricsMap::FromFd(std::move(fd), WEIR_METRICS_MAP_NAME);
  if (!map.ok()) return map.status();
  return Totals(*map);
}

}  // namespace weir
