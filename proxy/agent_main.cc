// weir-agent: loads and pins weir's datapath, attaches the node-level programs, and keeps the
// service maps in sync with its source of truth. On exit it removes nothing: running pods and
// established connections keep their programs, maps and links, and the next agent adopts them.
#include <signal.h>

#include <chrono>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "lib/datapath.h"
#include "proxy/agent/agent_config.h"
#include "proxy/agent/service_sync.h"
#include "proxy/standalone/manifest_dir.h"
#include "proxy/sync/bpf_map_writer.h"
#include "proxy/sync/reconciler.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, config, "", "agent configuration YAML file");
ABSL_FLAG(std::string, bpf_root, "", "bpffs directory for weir's pinned maps, programs and links");
ABSL_FLAG(std::string, manifests, "", "standalone mode: directory of Service/EndpointSlice manifests");
ABSL_FLAG(std::string, node_name, "", "this node's name (endpoints with this nodeName are local)");
ABSL_FLAG(std::string, node_addresses, "", "comma-separated node addresses (NodePorts, SNAT source)");
ABSL_FLAG(std::string, uplinks, "", "comma-separated uplink devices for the from-uplink program");
ABSL_FLAG(std::string, cgroup, "", "cgroup v2 directory for socket load balancing (empty: off)");
ABSL_FLAG(std::string, lb_mode, "", "snat, dsr or hybrid");
ABSL_FLAG(int, health_port, -1, "port of /healthz and /metrics (0: off)");

namespace {

std::vector<std::string> SplitList(const std::string& text) {
  return absl::StrSplit(text, ',', absl::SkipEmpty());
}

absl::StatusOr<weir::agent::AgentConfig> Configure() {
  weir::agent::AgentConfig config;
  if (std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    auto loaded = weir::agent::LoadAgentConfig(path);
    if (!loaded.ok()) return loaded.status();
    config = *loaded;
  }
  if (auto v = absl::GetFlag(FLAGS_bpf_root); !v.empty()) config.bpf_root = v;
  if (auto v = absl::GetFlag(FLAGS_manifests); !v.empty()) config.manifests_dir = v;
  if (auto v = absl::GetFlag(FLAGS_node_name); !v.empty()) config.node_name = v;
  if (auto v = absl::GetFlag(FLAGS_uplinks); !v.empty()) config.uplinks = SplitList(v);
  if (auto v = absl::GetFlag(FLAGS_cgroup); !v.empty()) config.cgroup_path = v;
  if (auto v = absl::GetFlag(FLAGS_health_port); v >= 0) config.health_port = v;
  if (auto v = absl::GetFlag(FLAGS_lb_mode); !v.empty()) {
    auto mode = weir::agent::ParseLbMode(v);
    if (!mode.ok()) return mode.status();
    config.lb_mode = *mode;
  }
  if (auto v = absl::GetFlag(FLAGS_node_addresses); !v.empty()) {
    config.node_addresses.clear();
    for (const std::string& text : SplitList(v)) {
      auto address = weir::IpAddress::Parse(text);
      if (!address.ok()) return address.status();
      config.node_addresses.push_back(*address);
    }
  }
  return config;
}

weir::DatapathOptions DatapathOptionsFrom(const weir::agent::AgentConfig& config) {
  weir::DatapathOptions options{.bpf_root = config.bpf_root,
                                .services_max = config.services_max,
                                .backends_max = config.backends_max,
                                .conntrack_max = config.conntrack_max,
                                .maglev_table_size = config.maglev_table_size,
                                .socket_lb_host_only = config.socket_lb_host_only};
  for (const weir::IpAddress& address : config.node_addresses) {
    if (address.is_v4() && !options.node_ipv4) options.node_ipv4 = address;
    if (!address.is_v4() && !options.node_ipv6) options.node_ipv6 = address;
  }
  return options;
}

bool StopRequested(const sigset_t& signals) {
  timespec no_wait{0, 0};
  int signal_number = sigtimedwait(&signals, nullptr, &no_wait);
  if (signal_number > 0) spdlog::info("signal {}: exiting; pinned state stays for running pods", signal_number);
  return signal_number > 0;
}

int Run(const weir::agent::AgentConfig& config, const sigset_t& stop_signals) {
  auto datapath = weir::Datapath::Load(DatapathOptionsFrom(config));
  if (!datapath.ok()) {
    spdlog::critical("loading the datapath: {}", datapath.status().ToString());
    return 1;
  }
  if (absl::Status s = (*datapath)->Attach({config.uplinks, config.cgroup_path}); !s.ok()) {
    spdlog::critical("attaching: {}", s.ToString());
    return 1;
  }
  weir::PinLayout layout{config.bpf_root};
  auto writer = weir::sync::BpfMapWriter::OpenPinned(layout);
  if (!writer.ok()) {
    spdlog::critical("opening the service maps: {}", writer.status().ToString());
    return 1;
  }
  weir::sync::Reconciler reconciler(*writer, {.maglev_table_size = writer->maglev_table_size()});
  if (absl::Status s = reconciler.Adopt(); !s.ok()) {
    spdlog::critical("adopting the pinned service maps: {}", s.ToString());
    return 1;
  }
  spdlog::info("datapath pinned under {}; adopted {} frontends, {} backends", config.bpf_root,
               reconciler.frontend_count(), reconciler.backend_count());

  std::optional<weir::standalone::ManifestDirectory> manifests;
  if (!config.manifests_dir.empty()) {
    auto opened = weir::standalone::ManifestDirectory::Open(config.manifests_dir);
    if (!opened.ok()) {
      spdlog::critical("standalone mode: {}", opened.status().ToString());
      return 1;
    }
    manifests.emplace(std::move(*opened));
  }
  weir::lb::NodeContext node = weir::agent::NodeContextFrom(config);
  bool dirty = true;
  while (!StopRequested(stop_signals)) {
    if (manifests && dirty) {
      weir::standalone::ObjectSet objects = manifests->Load();
      auto synced = weir::agent::SyncServices(objects.services, objects.slices, node, reconciler);
      if (!synced.ok()) {
        spdlog::error("sync: {}", synced.status().ToString());
      } else {
        spdlog::info("synced {} frontends, {} backends ({} writes, {} deletes) in {} us", synced->frontends,
                     synced->backends, synced->stats.writes(), synced->stats.deletes(),
                     (synced->translate_time + synced->apply_time).count());
      }
      dirty = false;
    }
    if (manifests) {
      dirty = manifests->WaitForChange(std::chrono::milliseconds(500));
    } else {
      timespec wait{0, 500'000'000};
      int signal_number = sigtimedwait(&stop_signals, nullptr, &wait);
      if (signal_number > 0) break;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("weir node agent: loads weir's eBPF datapath and keeps it in sync");
  absl::ParseCommandLine(argc, argv);

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto config = Configure();
  if (!config.ok()) {
    spdlog::critical("configuration: {}", config.status().ToString());
    return 2;
  }
  return Run(*config, stop_signals);
}
