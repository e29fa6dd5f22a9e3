// weir-agent: loads and pins weir's datapath, attaches the node-level programs, and keeps the
// service maps in sync with its source of truth. On exit it removes nothing: running pods and
// established connections keep their programs, maps and links, and the next agent adopts them.
#include <malloc.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <string>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include <atomic>
#include <set>

#include "absl/strings/str_cat.h"
#include "lib/datapath.h"
#include "lib/map_fill.h"
#include "lib/metrics_map.h"
#include "lib/service_maps.h"
#include "proxy/agent/agent_config.h"
#include "proxy/agent/agent_facts.h"
#include "proxy/agent/cni_config_writer.h"
#include "proxy/agent/conntrack_collection.h"
#include "proxy/agent/health_check_ports.h"
#include "proxy/agent/http_server.h"
#include "proxy/agent/kube_proxy_endpoints.h"
#include "proxy/agent/masquerade.h"
#include "proxy/agent/metrics.h"
#include "proxy/agent/netfilter_conntrack.h"
#include "proxy/agent/node_facts.h"
#include "proxy/agent/node_forwarding.h"
#include "proxy/agent/node_routes.h"
#include "proxy/agent/node_sync.h"
#include "proxy/agent/orphan_collector.h"
#include "proxy/agent/policy_socket.h"
#include "proxy/agent/policy_step.h"
#include "proxy/agent/service_sync.h"
#include "proxy/agent/sync_metrics.h"
#include "proxy/agent/sync_step.h"
#include "proxy/policy/policy_counters.h"
#include "proxy/policy/policy_writer.h"
#include "proxy/policy_sync/bpf_policy_counters.h"
#include "proxy/policy_sync/bpf_policy_maps.h"
#include "proxy/policy_sync/bpf_policy_writer.h"
#include "proxy/source/object_source.h"
#include "proxy/sync/bpf_map_writer.h"
#include "proxy/sync/conntrack_gc.h"
#include "proxy/sync/nonmasq_table.h"
#include "proxy/sync/reconciler.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, config, "", "agent configuration YAML file");
ABSL_FLAG(std::string, bpf_root, "", "bpffs directory for weir's pinned maps, programs and links");
ABSL_FLAG(std::string, manifests, "", "standalone mode: directory of Service/EndpointSlice manifests");
ABSL_FLAG(std::string, kubeconfig, "",
          "kubeconfig of the API server (default: in-cluster, then $KUBECONFIG)");
ABSL_FLAG(bool, datapath_only, false, "no source of Services: only load, pin and attach the datapath");
ABSL_FLAG(std::string, node_name, "", "this node's name (endpoints with this nodeName are local)");
ABSL_FLAG(std::string, node_addresses, "", "comma-separated node addresses (NodePorts, SNAT source)");
ABSL_FLAG(std::string, uplinks, "", "comma-separated uplink devices for the from-uplink program");
ABSL_FLAG(std::string, cgroup, "", "cgroup v2 directory for socket load balancing (empty: off)");
ABSL_FLAG(std::string, lb_mode, "", "snat, dsr or hybrid");
ABSL_FLAG(std::string, node_port_acceleration, "", "XDP on the uplinks: native, generic or disabled");
ABSL_FLAG(std::string, dsr_dispatch, "", "ipip or option");
ABSL_FLAG(std::string, cni_conf_dir, "", "install the CNI conflist here once ready");
ABSL_FLAG(std::string, pod_cidrs, "", "comma-separated pod CIDRs of this node (when no Node object says)");
ABSL_FLAG(bool, uninstall, false, "remove the CNI conflist and every pinned object of weir, then exit");
ABSL_FLAG(int, health_port, -1, "port of /healthz and /metrics (0: off)");
ABSL_FLAG(std::string, daemonset, "",
          "namespace/name of the agent's DaemonSet: its deletion uninstalls on exit");
ABSL_FLAG(std::string, k8s_service_host, "",
          "in-cluster: API server host to dial instead of the kubernetes Service");
ABSL_FLAG(int, k8s_service_port, 0, "in-cluster: API server port (with --k8s_service_host)");
ABSL_FLAG(int, mtu, 0, "pods' MTU (0: the uplink's)");
ABSL_FLAG(std::optional<bool>, manage_forwarding, std::nullopt,
          "turn on IP forwarding in the node's namespace");
ABSL_FLAG(std::string, masquerade, "",
          "true or false: pods' traffic out of the cluster leaves with the node's address");
ABSL_FLAG(std::string, non_masquerade_cidrs, "", "comma-separated CIDRs pods reach with their own address");
ABSL_FLAG(bool, network_policy, false,
          "enforce NetworkPolicy (watch Pods, Namespaces and NetworkPolicies; new pods start denied); "
          "the config's networkPolicy turns it on too");
ABSL_FLAG(bool, policy_audit, false,
          "network policy in audit mode on this node: report what would be dropped, drop nothing");
ABSL_FLAG(std::string, policy_socket, "",
          "socket for CNI ADD's and weirctl's policy requests (@name: abstract; default @weir-policy)");

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
  if (auto v = absl::GetFlag(FLAGS_kubeconfig); !v.empty()) config.kubeconfig = v;
  if (auto v = absl::GetFlag(FLAGS_node_name); !v.empty()) config.node_name = v;
  if (auto v = absl::GetFlag(FLAGS_uplinks); !v.empty()) config.uplinks = SplitList(v);
  if (auto v = absl::GetFlag(FLAGS_cgroup); !v.empty()) config.cgroup_path = v;
  if (auto v = absl::GetFlag(FLAGS_health_port); v >= 0) config.health_port = v;
  if (auto v = absl::GetFlag(FLAGS_cni_conf_dir); !v.empty()) config.cni_conf_dir = v;
  if (auto v = absl::GetFlag(FLAGS_daemonset); !v.empty()) config.owner_daemon_set = v;
  if (auto v = absl::GetFlag(FLAGS_k8s_service_host); !v.empty()) config.api_server_host = v;
  if (auto v = absl::GetFlag(FLAGS_k8s_service_port); v > 0) config.api_server_port = v;
  if (auto v = absl::GetFlag(FLAGS_mtu); v > 0) config.mtu = static_cast<uint32_t>(v);
  if (auto v = absl::GetFlag(FLAGS_manage_forwarding)) config.manage_forwarding = *v;
  if (absl::GetFlag(FLAGS_network_policy)) config.network_policy = true;
  if (absl::GetFlag(FLAGS_policy_audit)) config.policy_audit = true;
  if (auto v = absl::GetFlag(FLAGS_policy_socket); !v.empty()) config.policy_socket = v;
  if (auto v = absl::GetFlag(FLAGS_pod_cidrs); !v.empty()) {
    config.pod_cidrs.clear();
    for (const std::string& text : SplitList(v)) {
      auto cidr = weir::IpPrefix::Parse(text);
      if (!cidr.ok()) return cidr.status();
      config.pod_cidrs.push_back(*cidr);
    }
  }
  if (auto v = absl::GetFlag(FLAGS_dsr_dispatch); !v.empty()) {
    if (v != "ipip" && v != "option") return absl::InvalidArgumentError("--dsr_dispatch: ipip or option");
    config.dsr_ip_option = v == "option";
  }
  if (auto v = absl::GetFlag(FLAGS_node_port_acceleration); !v.empty()) {
    if (absl::Status status = weir::agent::CheckNodePortAcceleration(v); !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--node_port_acceleration: ", status.message()));
    }
    config.node_port_acceleration = v;
  }
  if (auto v = absl::GetFlag(FLAGS_lb_mode); !v.empty()) {
    auto mode = weir::agent::ParseLbMode(v);
    if (!mode.ok()) return mode.status();
    config.lb_mode = *mode;
  }
  if (auto v = absl::GetFlag(FLAGS_masquerade); !v.empty()) {
    if (v != "true" && v != "false") return absl::InvalidArgumentError("--masquerade: true or false");
    config.masquerade = v == "true";
  }
  if (auto v = absl::GetFlag(FLAGS_non_masquerade_cidrs); !v.empty()) {
    auto cidrs = weir::agent::ParseCidrList(SplitList(v), "--non_masquerade_cidrs");
    if (!cidrs.ok()) return cidrs.status();
    config.non_masquerade_cidrs = *std::move(cidrs);
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
                                .dsr_ip_option = config.dsr_ip_option,
                                .socket_lb_host_only = config.socket_lb_host_only,
                                .socket_lb_translation_events = config.socket_lb_translation_events,
                                .masquerade = config.masquerade,
                                .nonmasq_max = config.non_masquerade_cidrs_max,
                                .policy_peers_max = config.policy_peers_max,
                                .policy_rules_max = config.policy_rules_max,
                                .policy_cidrs_max = config.policy_cidrs_max,
                                .policy_conntrack_max = config.policy_conntrack_max};
  for (const weir::IpAddress& address : config.node_addresses) {
    if (address.is_v4() && !options.node_ipv4) options.node_ipv4 = address;
    if (!address.is_v4() && !options.node_ipv6) options.node_ipv6 = address;
  }
  return options;
}

// The datapath's per-CPU counters, summed, as Prometheus text.
std::string DatapathCounters(const weir::PinLayout& layout) {
  auto totals = weir::ReadMetrics(layout.metrics_map());
  if (!totals.ok()) return "";
  std::string decisions, drops, socket_lb;
  for (const weir::MetricTotal& total : *totals) {
    if (total.socket_lb) {
      // "sock_connect_refused" -> outcome="connect_refused": the family already says socket LB.
      absl::StrAppend(&socket_lb, "weir_socket_lb_calls_total{outcome=\"",
                      absl::StripPrefix(total.name, "sock_"), "\"} ", total.packets, "\n");
      continue;
    }
    absl::StrAppend(total.drop ? &drops : &decisions,
                    total.drop ? "weir_drops_total{reason=\"" : "weir_datapath_packets_total{decision=\"",
                    total.name, "\"} ", total.packets, "\n");
  }
  return absl::StrCat(
      "# HELP weir_datapath_packets_total Packets by datapath decision.\n",
      "# TYPE weir_datapath_packets_total counter\n", decisions,
      "# HELP weir_drops_total Packets dropped or rejected by reason.\n", "# TYPE weir_drops_total counter\n",
      drops, "# HELP weir_socket_lb_calls_total connect(), sendmsg() and recvmsg() calls the socket LB saw, ",
      "by outcome (connect_refused: a Service without endpoints, ECONNREFUSED).\n",
      "# TYPE weir_socket_lb_calls_total counter\n", socket_lb);
}

// Uninstall: what kubelet must stop using first (the conflist), then every pinned object.
int Uninstall(const weir::agent::AgentConfig& config) {
  if (!config.cni_conf_dir.empty()) {
    if (absl::Status s = weir::agent::RemoveCniConfig(weir::agent::CniSettingsFrom(config, {})); !s.ok()) {
      spdlog::error("{}", s.ToString());
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(config.bpf_root, ec);
  if (ec) {
    spdlog::error("remove {}: {}", config.bpf_root, ec.message());
    return 1;
  }
  spdlog::info("uninstalled: {} and the CNI configuration removed", config.bpf_root);
  return 0;
}

bool StopRequested(const sigset_t& signals) {
  timespec no_wait{0, 0};
  int signal_number = sigtimedwait(&signals, nullptr, &no_wait);
  if (signal_number > 0)
    spdlog::info("signal {}: exiting; pinned state stays for running pods", signal_number);
  return signal_number > 0;
}

// Opens the source of Services: the manifest directory, the API server, or none (--datapath_only).
absl::StatusOr<std::unique_ptr<weir::agent::ObjectSource>> OpenSource(
    const weir::agent::AgentConfig& config) {
  if (config.manifests_dir.empty() && absl::GetFlag(FLAGS_datapath_only)) return nullptr;
  if (!config.manifests_dir.empty()) return weir::agent::OpenManifestSource(config.manifests_dir);
  return weir::agent::OpenApiSource({.kubeconfig = config.kubeconfig,
                                     .api_server_host = config.api_server_host,
                                     .api_server_port = config.api_server_port,
                                     .owner_daemon_set = config.owner_daemon_set,
                                     .network_policy = config.network_policy});
}

// NetworkPolicy's datapath side: the maps, the writer the policy step drives, the counters the
// metrics read. The writer keeps a reference to the maps, so they live here together.
struct PolicyDatapath {
  std::unique_ptr<weir::policy_sync::BpfPolicyMaps> maps;
  std::unique_ptr<weir::policy::PolicyWriter> writer;
  std::unique_ptr<weir::policy::PolicyCounters> counters;
};

absl::StatusOr<PolicyDatapath> OpenPolicyDatapath(const weir::Datapath& datapath) {
  auto maps = weir::policy_sync::BpfPolicyMaps::Open(datapath);
  if (!maps.ok()) return maps.status();
  auto counters = weir::policy_sync::BpfPolicyCounters::Open(datapath);
  if (!counters.ok()) return counters.status();
  PolicyDatapath opened;
  opened.maps = std::make_unique<weir::policy_sync::BpfPolicyMaps>(*std::move(maps));
  auto writer = std::make_unique<weir::policy_sync::BpfPolicyWriter>(*opened.maps);
  // What an earlier agent wrote becomes known, so the first writes replace it instead of leaving it.
  if (absl::Status s = writer->Adopt(); !s.ok()) return s;
  opened.writer = std::move(writer);
  opened.counters = std::make_unique<weir::policy_sync::BpfPolicyCounters>(*std::move(counters));
  return opened;
}

// Fills the node facts the configuration leaves open (addresses, uplinks, MTU, pod CIDRs) from this
// node's Node object and interfaces, waiting for the source's first complete view when a Node is
// needed. False when stopped meanwhile.
bool CompleteNodeFacts(weir::agent::AgentConfig& config, weir::agent::ObjectSource* source,
                       const sigset_t& stop_signals, weir::agent::SyncProgress& progress) {
  const bool needs_node = config.node_addresses.empty() || config.uplinks.empty();
  std::vector<weir::k8s::Node> nodes;
  if (source != nullptr && needs_node) {
    auto waited_since = std::chrono::steady_clock::now();
    while (!source->Ready()) {
      progress.Alive();
      if (StopRequested(stop_signals)) return false;
      if (std::chrono::steady_clock::now() - waited_since > std::chrono::seconds(30)) {
        spdlog::warn("still waiting for the first complete list of Services, EndpointSlices and Nodes");
        waited_since = std::chrono::steady_clock::now();
      }
      source->WaitForChange(std::chrono::milliseconds(200));
    }
    nodes = source->Nodes();
  }
  const weir::k8s::Node* self = nullptr;
  for (const weir::k8s::Node& node : nodes) {
    if (node.metadata.name == config.node_name) self = &node;
  }
  auto netlink = weir::Netlink::Open();
  absl::StatusOr<weir::agent::InterfaceView> view =
      netlink.ok() ? weir::agent::ReadInterfaces(*netlink)
                   : absl::StatusOr<weir::agent::InterfaceView>(netlink.status());
  weir::agent::NodeFacts configured{.addresses = config.node_addresses,
                                    .uplinks = config.uplinks,
                                    .mtu = config.mtu,
                                    .pod_cidrs = config.pod_cidrs};
  absl::StatusOr<weir::agent::NodeFacts> facts =
      view.ok() ? weir::agent::DiscoverNodeFacts(configured, self, nodes, *view) : view.status();
  if (!facts.ok()) {
    // Without them the agent still balances ClusterIPs; it says what it could not serve.
    if (source != nullptr || !config.uplinks.empty() || !config.node_addresses.empty()) {
      spdlog::warn("node facts: {}", facts.status().ToString());
    }
    return true;
  }
  const bool discovered = facts->addresses != config.node_addresses || facts->uplinks != config.uplinks ||
                          facts->mtu != config.mtu;
  config.node_addresses = facts->addresses;
  config.uplinks = facts->uplinks;
  config.mtu = facts->mtu;
  if (discovered) {
    std::vector<std::string> addresses;
    for (const weir::IpAddress& a : config.node_addresses) addresses.push_back(a.ToString());
    spdlog::info("node {}: addresses {}, uplink {}, mtu {}", config.node_name, absl::StrJoin(addresses, ","),
                 absl::StrJoin(config.uplinks, ","), config.mtu);
  }
  return true;
}

int Run(weir::agent::AgentConfig config, const sigset_t& stop_signals) {
  weir::PinLayout layout{config.bpf_root};
  // Health and metrics first: an agent that waits for the API server, or for its first sync, is
  // alive (its loop turns) and unready, rather than restarted by a startup probe that finds no port.
  weir::agent::Metrics metrics;
  weir::agent::SyncMetrics sync_metrics(metrics);
  std::atomic<bool> ready{false};
  // Set once the policy step exists; read by the metrics thread.
  std::atomic<weir::agent::PolicyStep*> policy_step_for_metrics{nullptr};
  std::atomic<weir::policy::PolicyCounters*> policy_counters{nullptr};
  auto extra_metrics = [&] {
    std::string text = DatapathCounters(layout);
    weir::agent::PolicyStep* step = policy_step_for_metrics.load();
    weir::policy::PolicyCounters* counters = policy_counters.load();
    if (step != nullptr && counters != nullptr) absl::StrAppend(&text, step->CountersText(*counters));
    return text;
  };
  weir::agent::SyncProgress progress;
  progress.Alive();
  weir::agent::AgentHttpServer http;
  // Live while the loop turns: a loop stuck for a minute (a hung sync, a deadlock) gets the agent
  // restarted by its liveness probe; a datapath not yet in sync only keeps it unready.
  http.SetLiveness([&progress] {
    return weir::agent::SyncProgress::Clock::now() - progress.last_alive() < std::chrono::seconds(60);
  });
  if (config.health_port > 0) {
    absl::Status started = http.Start(
        config.health_host, config.health_port, metrics, [&] { return ready.load(); }, extra_metrics);
    if (!started.ok()) spdlog::error("health server: {}", started.ToString());
  }
  weir::agent::KubeProxyEndpoints kube_proxy_endpoints;
  if (absl::Status s =
          kube_proxy_endpoints.Start(config.kube_proxy_healthz_address, config.kube_proxy_metrics_address,
                                     progress, metrics, [&] { return DatapathCounters(layout); });
      !s.ok()) {
    spdlog::error("kube-proxy endpoints: {}", s.ToString());
  }

  // The source opens first: in a cluster the node's own facts come from its Node object.
  std::unique_ptr<weir::agent::ObjectSource> source;
  if (auto opened = OpenSource(config); !opened.ok()) {
    spdlog::critical("source of Services: {}", opened.status().ToString());
    return 1;
  } else {
    source = std::move(*opened);
  }
  if (!CompleteNodeFacts(config, source.get(), stop_signals, progress)) {
    if (source) source->Stop();
    return 0;
  }
  if (config.manage_forwarding) weir::agent::ManageForwarding();
  weir::agent::ManageConntrackTimeouts(config.netfilter_conntrack);
  auto datapath = weir::Datapath::Load(DatapathOptionsFrom(config));
  if (!datapath.ok()) {
    spdlog::critical("loading the datapath: {}", datapath.status().ToString());
    return 1;
  }
  for (const std::string& migrated : (*datapath)->migrations()) spdlog::info("{}", migrated);
  const weir::DatapathAttachments attachments{.uplinks = config.uplinks,
                                              .cgroup_path = config.cgroup_path,
                                              .xdp_mode = *weir::ParseXdpMode(config.node_port_acceleration)};
  if (absl::Status s = (*datapath)->Attach(attachments); !s.ok()) {
    spdlog::critical("attaching: {}", s.ToString());
    return 1;
  }
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

  auto nonmasq_table = weir::sync::BpfNonMasqTable::OpenPinned(layout);
  if (!nonmasq_table.ok()) {
    spdlog::critical("opening the non-masquerade map: {}", nonmasq_table.status().ToString());
    return 1;
  }
  weir::sync::NonMasqueradeSync non_masquerade(**nonmasq_table);

  // What weirctl shows beside the datapath's maps: the Service behind each service id, and this
  // agent's facts (lib/agent_state_maps.h says why pinned maps).
  auto names_map = weir::ServiceNamesMap::OpenOrCreate(layout.service_names_map(), config.services_max);
  if (!names_map.ok()) {
    spdlog::critical("the service names map: {}", names_map.status().ToString());
    return 1;
  }
  weir::sync::PinnedServiceNameStore name_store(*std::move(names_map));
  weir::sync::ServiceNamePublisher service_names(name_store);
  weir::agent::AgentFactsPublisher facts(
      layout,
      weir::agent::AgentInfoFrom(config, !source                         ? weir::SyncSource::kNone
                                         : !config.manifests_dir.empty() ? weir::SyncSource::kManifests
                                                                         : weir::SyncSource::kKubernetes));

  weir::agent::HealthCheckPorts health_check_ports(config.health_host);
  weir::lb::NodeContext node = weir::agent::NodeContextFrom(config);
  auto host_netlink = weir::Netlink::Open();
  if (!host_netlink.ok()) {
    spdlog::critical("netlink: {}", host_netlink.status().ToString());
    return 1;
  }
  weir::agent::OrphanCollector orphans(
      *host_netlink,
      {.bpf_root = config.bpf_root,
       .cni_data_dir = config.cni_conf_dir.empty() ? "" : config.cni_data_dir,
       .interval = std::chrono::seconds(config.cni_gc_interval_seconds)},
      metrics);

  // The loop's steps, each an object of its own: the service sync (with the node step after it),
  // conntrack collection, orphan collection.
  weir::agent::NodeSync node_sync(config, non_masquerade, *host_netlink);
  weir::agent::ServiceSync service_sync(node, reconciler, &service_names);
  std::optional<weir::sync::ConntrackGc> gc;
  if (auto opened = weir::sync::ConntrackGc::OpenPinned(layout); opened.ok()) {
    gc = std::move(*opened);
  } else {
    spdlog::error("conntrack gc: {}", opened.status().ToString());
  }
  weir::agent::ConntrackCollection conntrack(
      std::move(gc), config.bpf_root, std::chrono::seconds(config.conntrack_gc_interval_seconds),
      [&reconciler](uint32_t id) { return reconciler.HasBackend(id); }, metrics, sync_metrics);
  // NetworkPolicy: the policy step follows the source; CNI ADD and weirctl reach it on its socket.
  std::optional<PolicyDatapath> policy_datapath;
  std::optional<weir::agent::PolicyStep> policy_step;
  std::optional<weir::agent::PolicySocket> policy_socket;
  if (config.network_policy && source) {
    auto opened = OpenPolicyDatapath(**datapath);
    if (!opened.ok()) {
      spdlog::critical("network policy datapath: {}", opened.status().ToString());
      return 1;
    }
    policy_datapath = std::move(*opened);
    policy_step.emplace(weir::agent::PolicyStepSettings{.node_name = config.node_name,
                                                        .audit = config.policy_audit,
                                                        .node_addresses = config.node_addresses},
                        *policy_datapath->writer, metrics);
    // The agent answers before the plugin gives up, so that the plugin logs why.
    policy_socket.emplace(*policy_step, metrics,
                          std::chrono::milliseconds(config.policy_cni_timeout_ms * 3 / 4));
    if (absl::Status s = policy_socket->Start(config.policy_socket); !s.ok()) {
      spdlog::critical("policy socket: {}", s.ToString());
      return 1;
    }
    policy_counters = policy_datapath->counters.get();
    policy_step_for_metrics = &*policy_step;  // from here on Run() ends through http.Stop()
    spdlog::info("network policy on{}; CNI ADD and weirctl reach the agent on {}",
                 config.policy_audit ? " (audit mode: nothing dropped)" : "", config.policy_socket);
  }
  std::optional<weir::agent::SyncStep> sync_step;
  if (source) {
    sync_step.emplace(
        *source, service_sync, sync_metrics,
        weir::agent::SyncStep::Followers{
            .synced =
                [&](const weir::agent::SyncResult& result, bool complete) {
                  progress.Synced();
                  facts.Synced(result, complete);
                  health_check_ports.Update(service_sync.HealthChecks());
                },
            .failed = [&] { facts.SyncFailed(); },
            .sync_node = [&](const std::vector<weir::k8s::Node>& nodes) { return node_sync.Sync(nodes); },
            .sync_policy =
                [&](const weir::k8s::ObjectSet* complete, const weir::agent::SourceChanges* changes) {
                  if (!policy_step) return true;
                  return complete != nullptr ? policy_step->SyncAll(*complete)
                                             : policy_step->SyncChanged(*changes);
                },
        });
  }
  while (!StopRequested(stop_signals)) {
    progress.Alive();
    const auto now = std::chrono::steady_clock::now();
    if (sync_step) {
      sync_step->Run(now);
      ready = sync_step->in_sync();
    } else if (!ready) {
      ready = true;  // nothing to sync from: the datapath itself is what is ready
      progress.Synced();
      node_sync.Sync({});
    }
    if (progress.ever_synced()) conntrack.RunIfDue(now);
    orphans.Tick(now);
    if (source) {
      if (source->WaitForChange(std::chrono::milliseconds(500))) sync_step->MarkDirty();
    } else {
      timespec wait{0, 500'000'000};
      int signal_number = sigtimedwait(&stop_signals, nullptr, &wait);
      if (signal_number > 0) break;
    }
  }
  const bool uninstalling = source && source->Uninstalling();
  if (source) source->Stop();
  if (policy_socket) policy_socket->Stop();
  policy_step_for_metrics = nullptr;
  http.Stop();
  kube_proxy_endpoints.Stop();
  // helm uninstall deleted the DaemonSet: leave the node as it was before weir (a rolling update
  // keeps the DaemonSet, and with it everything running pods need).
  if (uninstalling) {
    spdlog::info("the agent's DaemonSet {} was deleted: uninstalling from this node",
                 config.owner_daemon_set);
    return Uninstall(config);
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
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  if (absl::GetFlag(FLAGS_uninstall)) return Uninstall(*config);
  return Run(*config, stop_signals);
}
