// weirctl: reads weir's pinned maps.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "lib/endpoint_map.h"
#include "lib/pin_layout.h"
#include "lib/unique_fd.h"

ABSL_FLAG(std::string, bpf_root, "/sys/fs/bpf/weir", "bpffs directory where weir-agent pinned the datapath");

namespace {

const char* MetricName(int metric) {
  switch (metric) {
    case WEIR_METRIC_LOCAL_DELIVERY: return "local_delivery";
    case WEIR_METRIC_TO_STACK: return "to_stack";
    case WEIR_METRIC_ARP_REPLY: return "arp_reply";
    case WEIR_METRIC_ND_REPLY: return "nd_reply";
    case WEIR_METRIC_TTL_EXCEEDED: return "ttl_exceeded";
    case WEIR_METRIC_PARSE_ERROR: return "parse_error";
    default: return nullptr;
  }
}

int ListEndpoints(const weir::PinLayout& layout) {
  auto map = weir::EndpointMap::OpenPinned(layout.endpoints_map());
  if (!map.ok()) {
    absl::FPrintF(stderr, "weirctl: %s\n", map.status().ToString());
    return 1;
  }
  auto endpoints = map->List();
  if (!endpoints.ok()) {
    absl::FPrintF(stderr, "weirctl: %s\n", endpoints.status().ToString());
    return 1;
  }
  absl::PrintF("%-40s %-8s %-18s %s\n", "ADDRESS", "IFINDEX", "MAC", "KIND");
  for (const weir::Endpoint& ep : *endpoints) {
    absl::PrintF("%-40s %-8d %-18s %s\n", ep.address.ToString(), ep.host_ifindex, weir::FormatMac(ep.pod_mac),
                 (ep.flags & WEIR_ENDPOINT_LOCAL_POD) ? "pod" : "host");
  }
  return 0;
}

int ShowMetrics(const weir::PinLayout& layout) {
  weir::UniqueFd fd(bpf_obj_get(layout.metrics_map().c_str()));
  if (!fd.valid()) {
    absl::FPrintF(stderr, "weirctl: open %s: %s\n", layout.metrics_map(), strerror(errno));
    return 1;
  }
  int cpus = libbpf_num_possible_cpus();
  std::vector<weir_metric_value> per_cpu(cpus);
  absl::PrintF("%-16s %12s %14s\n", "COUNTER", "PACKETS", "BYTES");
  for (uint32_t metric = 0; metric < WEIR_METRIC_MAX; ++metric) {
    const char* name = MetricName(metric);
    if (name == nullptr || bpf_map_lookup_elem(fd.get(), &metric, per_cpu.data()) != 0) continue;
    weir_metric_value total{};
    for (const auto& v : per_cpu) {
      total.packets += v.packets;
      total.bytes += v.bytes;
    }
    absl::PrintF("%-16s %12d %14d\n", name, total.packets, total.bytes);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("weirctl [--bpf_root DIR] endpoints|metrics");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  weir::PinLayout layout{absl::GetFlag(FLAGS_bpf_root)};
  std::string command = args.size() > 1 ? args[1] : "";
  if (command == "endpoints") return ListEndpoints(layout);
  if (command == "metrics") return ShowMetrics(layout);
  absl::FPrintF(stderr, "usage: weirctl [--bpf_root DIR] endpoints|metrics\n");
  return 2;
}
