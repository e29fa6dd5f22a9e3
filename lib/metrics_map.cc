#include "lib/metrics_map.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
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
    default: return nullptr;
  }
}

namespace {

bool IsDrop(uint32_t id) {
  return id == WEIR_METRIC_NO_BACKEND || id == WEIR_METRIC_TRANSLATION_ERROR || id == WEIR_METRIC_PARSE_ERROR ||
         id == WEIR_METRIC_TTL_EXCEEDED;
}

bool IsSocketLb(uint32_t id) {
  return id >= WEIR_METRIC_SOCK_CONNECT4_TRANSLATED && id <= WEIR_METRIC_SOCK_RECVMSG_TRANSLATED;
}

}  // namespace

absl::StatusOr<std::vector<MetricTotal>> ReadMetrics(const std::string& pinned_path) {
  UniqueFd fd(bpf_obj_get(pinned_path.c_str()));
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("open ", pinned_path));
  return ReadMetricsFromFd(fd.get());
}

absl::StatusOr<std::vector<MetricTotal>> ReadMetricsFromFd(int map_fd) {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return ErrnoStatus(-cpus, "count possible CPUs");
  std::vector<weir_metric_value> per_cpu(cpus);
  std::vector<MetricTotal> totals;
  for (uint32_t id = 0; id < WEIR_METRIC_MAX; ++id) {
    const char* name = MetricName(id);
    if (name == nullptr || bpf_map_lookup_elem(map_fd, &id, per_cpu.data()) != 0) continue;
    MetricTotal total{.id = id, .name = name, .drop = IsDrop(id), .socket_lb = IsSocketLb(id)};
    for (const weir_metric_value& v : per_cpu) {
      total.packets += v.packets;
      total.bytes += v.bytes;
    }
    totals.push_back(total);
  }
  return totals;
}

}  // namespace weir
