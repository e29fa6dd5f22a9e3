#include "proxy/agent/node_sync.h"

#include "proxy/agent/masquerade.h"
#include "proxy/agent/node_routes.h"
#include "spdlog/spdlog.h"

namespace weir::agent {

CniConfigSettings CniSettingsFrom(const AgentConfig& config, std::vector<IpPrefix> pod_cidrs) {
  CniConfigSettings settings{.conf_dir = config.cni_conf_dir,
                             .pod_cidrs = std::move(pod_cidrs),
                             .bpf_root = config.bpf_root,
                             .data_dir = config.cni_data_dir,
                             .policy = config.network_policy,
                             .policy_socket = config.policy_socket,
                             .policy_timeout_ms = config.policy_cni_timeout_ms,

                             .device_mode = config.pod_device_mode};
  if (config.mtu > 0) settings.mtu = static_cast<int>(config.mtu);
  return settings;
}

bool NodeSync::Sync(const std::vector<k8s::Node>& nodes) {
  bool ok = true;
  auto cidrs = non_masquerade_.Sync(NonMasqueradeCidrs({.nodes = nodes,
                                                        .own_pod_cidrs = config_.pod_cidrs,
                                                        .own_addresses = config_.node_addresses,
                                                        .configured = config_.non_masquerade_cidrs}));
  if (!cidrs.ok()) {
    spdlog::error("non-masquerade CIDRs: {}", cidrs.status().ToString());
    ok = false;
  } else if (cidrs->added + cidrs->removed > 0) {
    spdlog::info("non-masquerade CIDRs: {} added, {} removed ({} in all)", cidrs->added, cidrs->removed,
                 non_masquerade_.size());
  }
  if (config_.manage_node_routes) {
    auto changes = SyncNodeRoutes(netlink_, DesiredNodeRoutes(nodes, config_.node_name));
    if (!changes.ok()) {
      spdlog::error("node routes: {}", changes.status().ToString());
      ok = false;
    } else if (changes->added + changes->removed > 0) {
      spdlog::info("node routes: {} added, {} removed", changes->added, changes->removed);
    }
  }
  if (!config_.cni_conf_dir.empty()) {
    std::vector<IpPrefix> pod_cidrs = PodCidrsOf(nodes, config_.node_name);
    if (pod_cidrs.empty()) pod_cidrs = config_.pod_cidrs;
    if (pod_cidrs.empty()) {
      spdlog::warn("no pod CIDR known for {} yet: CNI configuration not installed", config_.node_name);
    } else if (absl::Status s = InstallCniConfig(CniSettingsFrom(config_, pod_cidrs)); !s.ok()) {
      spdlog::error("CNI configuration: {}", s.ToString());
      ok = false;
    }
  }
  return ok;
}

}  // namespace weir::agent
