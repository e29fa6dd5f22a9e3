#include "proxy/agent/agent_config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace weir::agent {
namespace {

const std::set<std::string> kKnownKeys = {"nodeName",
                                          "bpfRoot",
                                          "manifestsDir",
                                          "kubeconfig",
                                          "nodeAddresses",
                                          "zone",
                                          "uplinks",
                                          "cgroupPath",
                                          "socketLBHostOnly",
                                          "lbMode",
                                          "dsrDispatch",
                                          "nodePortAcceleration",
                                          "maglev",
                                          "maglevTableSize",
                                          "conntrackMax",
                                          "servicesMax",
                                          "backendsMax",
                                          "conntrackGCIntervalSeconds",
                                          "healthHost",
                                          "healthPort",
                                          "manageNodeRoutes",
                                          "cniConfDir",
                                          "podCIDRs",
                                          "cniDataDir",
                                          "cniGCIntervalSeconds",
                                          "manageForwarding",
                                          "conntrackTCPCloseWaitTimeoutSeconds",
                                          "conntrackTCPEstablishedTimeoutSeconds",
                                          "k8sServiceHost",
                                          "k8sServicePort",
                                          "mtu",
                                          "podDeviceMode",
                                          "daemonSet",
                                          "logLevel",
                                          "kubeProxyHealthzBindAddress",
                                          "kubeProxyMetricsBindAddress",
                                          "socketLBTranslationEvents",
                                          "masquerade",
                                          "nonMasqueradeCIDRs",
                                          "nonMasqueradeCIDRsMax",
                                          "policyPeersMax",
                                          "policyRulesMax",
                                          "policyCIDRsMax",
                                          "policyConntrackMax",
                                          "networkPolicy",
                                          "policyAudit",
                                          "policySocket",
                                          "policyCNITimeoutMs"};

const std::set<std::string> kLogLevels = {"debug", "info", "warn", "error"};

template <typename T>
void Read(const YAML::Node& root, const char* key, T& out) {
  if (root[key]) out = root[key].as<T>();
}

}  // namespace

absl::StatusOr<lb::LbMode> ParseLbMode(const std::string& text) {
  if (text == "snat") return lb::LbMode::kSnat;
  if (text == "dsr") return lb::LbMode::kDsr;
  if (text == "hybrid") return lb::LbMode::kHybrid;
  return absl::InvalidArgumentError(absl::StrCat("lbMode \"", text, "\": expected snat, dsr or hybrid"));
}

absl::StatusOr<std::vector<IpPrefix>> ParseCidrList(const std::vector<std::string>& texts,
                                                    const std::string& what) {
  std::vector<IpPrefix> cidrs;
  for (const std::string& text : texts) {
    auto cidr = IpPrefix::Parse(text);
    if (!cidr.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", cidr.status().message()));
    cidrs.push_back(cidr->Network());
  }
  return cidrs;
}

absl::Status CheckNodePortAcceleration(const std::string& mode) {
  if (mode == "native" || mode == "generic" || mode == "disabled") return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("nodePortAcceleration \"", mode, "\": expected native, generic or disabled"));
}

absl::StatusOr<AgentConfig> ParseAgentConfig(const std::string& yaml_text) {
  AgentConfig config;
  try {
    YAML::Node root = YAML::Load(yaml_text);
    if (!root || root.IsNull()) return config;
    if (!root.IsMap()) return absl::InvalidArgumentError("agent config must be a YAML mapping");
    for (const auto& entry : root) {
      std::string key = entry.first.as<std::string>();
      if (!kKnownKeys.count(key))
        return absl::InvalidArgumentError(absl::StrCat("unknown agent config key ", key));
    }
    Read(root, "nodeName", config.node_name);
    Read(root, "bpfRoot", config.bpf_root);
    Read(root, "manifestsDir", config.manifests_dir);
    Read(root, "kubeconfig", config.kubeconfig);
    Read(root, "zone", config.zone);
    Read(root, "uplinks", config.uplinks);
    Read(root, "cgroupPath", config.cgroup_path);
    Read(root, "socketLBHostOnly", config.socket_lb_host_only);
    Read(root, "socketLBTranslationEvents", config.socket_lb_translation_events);
    Read(root, "maglev", config.maglev);
    Read(root, "maglevTableSize", config.maglev_table_size);
    Read(root, "conntrackMax", config.conntrack_max);
    Read(root, "servicesMax", config.services_max);
    Read(root, "backendsMax", config.backends_max);
    Read(root, "conntrackGCIntervalSeconds", config.conntrack_gc_interval_seconds);
    Read(root, "healthHost", config.health_host);
    Read(root, "healthPort", config.health_port);
    Read(root, "manageNodeRoutes", config.manage_node_routes);
    Read(root, "cniConfDir", config.cni_conf_dir);
    Read(root, "cniDataDir", config.cni_data_dir);
    Read(root, "cniGCIntervalSeconds", config.cni_gc_interval_seconds);
    Read(root, "manageForwarding", config.manage_forwarding);
    Read(root, "conntrackTCPCloseWaitTimeoutSeconds", config.netfilter_conntrack.tcp_close_wait_seconds);
    Read(root, "conntrackTCPEstablishedTimeoutSeconds", config.netfilter_conntrack.tcp_established_seconds);
    Read(root, "k8sServiceHost", config.api_server_host);
    // A chart renders an unset port as "" and a set one as a number or a string.
    std::string port_text;
    Read(root, "k8sServicePort", port_text);
    if (!port_text.empty() && !absl::SimpleAtoi(port_text, &config.api_server_port)) {
      return absl::InvalidArgumentError(absl::StrCat("k8sServicePort \"", port_text, "\": not a number"));
    }
    Read(root, "mtu", config.mtu);
    Read(root, "podDeviceMode", config.pod_device_mode);
    if (config.pod_device_mode != "veth" && config.pod_device_mode != "netkit") {
      return absl::InvalidArgumentError(
          absl::StrCat("podDeviceMode \"", config.pod_device_mode, "\": expected veth or netkit"));
    }
    Read(root, "daemonSet", config.owner_daemon_set);
    Read(root, "logLevel", config.log_level);
    Read(root, "kubeProxyHealthzBindAddress", config.kube_proxy_healthz_address);
    Read(root, "kubeProxyMetricsBindAddress", config.kube_proxy_metrics_address);
    if (!kLogLevels.count(config.log_level)) {
      return absl::InvalidArgumentError(
          absl::StrCat("logLevel \"", config.log_level, "\": expected debug, info, warn or error"));
    }
    if (!config.owner_daemon_set.empty() && config.owner_daemon_set.find('/') == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("daemonSet \"", config.owner_daemon_set, "\": expected namespace/name"));
    }
    if (config.api_server_port < 0 || config.api_server_port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("k8sServicePort ", config.api_server_port, ": not a port"));
    }
    std::vector<std::string> cidrs;
    Read(root, "podCIDRs", cidrs);
    for (const std::string& text : cidrs) {
      auto cidr = IpPrefix::Parse(text);
      if (!cidr.ok()) return cidr.status();
      config.pod_cidrs.push_back(*cidr);
    }
    Read(root, "masquerade", config.masquerade);
    Read(root, "networkPolicy", config.network_policy);
    Read(root, "policyAudit", config.policy_audit);
    Read(root, "policySocket", config.policy_socket);
    Read(root, "policyCNITimeoutMs", config.policy_cni_timeout_ms);
    if (config.network_policy && config.policy_socket.empty())
      return absl::InvalidArgumentError("policySocket must be set with networkPolicy");
    Read(root, "nonMasqueradeCIDRsMax", config.non_masquerade_cidrs_max);
    Read(root, "policyPeersMax", config.policy_peers_max);
    Read(root, "policyRulesMax", config.policy_rules_max);
    Read(root, "policyCIDRsMax", config.policy_cidrs_max);
    Read(root, "policyConntrackMax", config.policy_conntrack_max);
    for (const auto& [key, value] : {std::pair{"policyPeersMax", config.policy_peers_max},
                                     {"policyRulesMax", config.policy_rules_max},
                                     {"policyCIDRsMax", config.policy_cidrs_max},
                                     {"policyConntrackMax", config.policy_conntrack_max}}) {
      if (value == 0) return absl::InvalidArgumentError(absl::StrCat(key, " must be at least 1"));
    }
    if (config.non_masquerade_cidrs_max == 0)
      return absl::InvalidArgumentError("nonMasqueradeCIDRsMax must be at least 1");
    std::vector<std::string> non_masquerade;
    Read(root, "nonMasqueradeCIDRs", non_masquerade);
    auto non_masquerade_cidrs = ParseCidrList(non_masquerade, "nonMasqueradeCIDRs");
    if (!non_masquerade_cidrs.ok()) return non_masquerade_cidrs.status();
    config.non_masquerade_cidrs = *std::move(non_masquerade_cidrs);
    std::vector<std::string> addresses;
    Read(root, "nodeAddresses", addresses);
    for (const std::string& text : addresses) {
      auto address = IpAddress::Parse(text);
      if (!address.ok()) return address.status();
      config.node_addresses.push_back(*address);
    }
    if (root["nodePortAcceleration"]) {
      std::string acceleration = root["nodePortAcceleration"].as<std::string>();
      if (absl::Status status = CheckNodePortAcceleration(acceleration); !status.ok()) return status;
      config.node_port_acceleration = acceleration;
    }
    if (root["dsrDispatch"]) {
      std::string dispatch = root["dsrDispatch"].as<std::string>();
      if (dispatch != "ipip" && dispatch != "option") {
        return absl::InvalidArgumentError(
            absl::StrCat("dsrDispatch \"", dispatch, "\": expected ipip or option"));
      }
      config.dsr_ip_option = dispatch == "option";
    }
    if (root["lbMode"]) {
      auto mode = ParseLbMode(root["lbMode"].as<std::string>());
      if (!mode.ok()) return mode.status();
      config.lb_mode = *mode;
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("agent config: ", e.what()));
  }
  return config;
}

absl::StatusOr<AgentConfig> LoadAgentConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read agent config ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseAgentConfig(text.str());
}

}  // namespace weir::agent
