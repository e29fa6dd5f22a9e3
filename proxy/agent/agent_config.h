// weir-agent's configuration: one YAML file (a ConfigMap in a cluster), with command-line flags
// overriding single fields. Every attach point is a setting, so a lab can point them at what it made.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bpf/abi/constants.h"
#include "lib/ip.h"
#include "proxy/agent/netfilter_conntrack.h"
#include "proxy/lb/translate.h"

namespace weir::agent {

struct AgentConfig {
  std::string node_name;
  std::string bpf_root = "/sys/fs/bpf/weir";
  // Standalone mode: Services and EndpointSlices from this directory instead of the API server.
  std::string manifests_dir;
  // Otherwise the API server, reached with this kubeconfig (empty: in-cluster, then $KUBECONFIG).
  std::string kubeconfig;
  // In-cluster: the API server to dial instead of the `kubernetes` Service, which nothing serves
  // before weir does (Cilium's k8sServiceHost/k8sServicePort).
  std::string api_server_host;
  int api_server_port = 0;
  // "namespace/name" of the DaemonSet running this agent: when it is deleted (helm uninstall), the
  // agent removes the conflist and its pinned state on the way out. Empty: never.
  std::string owner_daemon_set;
  // Empty (addresses, uplinks) or 0 (mtu): found from this node's Node object and interfaces.
  std::vector<IpAddress> node_addresses;  // NodePorts are served on these; the first of each family SNATs
  std::string zone;
  std::vector<std::string> uplinks;  // devices that get the from-uplink program
  uint32_t mtu = 0;                  // pods' MTU (0: the uplink's)
  // podDeviceMode: the device pair pods are wired with, written into the conflist's "deviceMode":
  // "veth", or "netkit" (Linux 6.7+ built with CONFIG_NETKIT; ADD fails on a kernel without it).
  std::string pod_device_mode = "veth";
  std::string cgroup_path;  // cgroup v2 for socket LB; empty: socket LB off
  bool socket_lb_host_only = false;
  // An event per connect() the socket LB translates, not only per refusal (one record per connection).
  bool socket_lb_translation_events = false;
  lb::LbMode lb_mode = lb::LbMode::kSnat;
  bool dsr_ip_option = false;  // dsrDispatch: "ipip" (default) or "option"
  // XDP on the uplinks in front of the tc program: "native" (the driver's hook), "generic" (any
  // device), "disabled" (the default).
  std::string node_port_acceleration = "disabled";
  bool maglev = true;
  uint32_t maglev_table_size = WEIR_MAGLEV_DEFAULT_SIZE;
  uint32_t conntrack_max = WEIR_CONNTRACK_DEFAULT_SIZE;
  uint32_t services_max = WEIR_SERVICES_DEFAULT_SIZE;
  uint32_t backends_max = WEIR_BACKENDS_DEFAULT_SIZE;
  uint32_t conntrack_gc_interval_seconds = 10;
  // Routes to other nodes' pod CIDRs (from Node objects) in the agent's namespace.
  bool manage_node_routes = true;
  // Where the CNI conflist is installed once the datapath is ready; empty: not written.
  std::string cni_conf_dir;
  // The plugin's IPAM dataDir, written into the conflist; with cni_conf_dir set the agent collects
  // allocations there whose pod is gone without a DEL (proxy/agent/orphan_collector.h).
  std::string cni_data_dir = "/var/lib/cni/weir";
  // Seconds between passes over what pods left without a DEL (0: never).
  uint32_t cni_gc_interval_seconds = 60;
  // net.ipv4.ip_forward / net.ipv6.conf.all.forwarding on in the agent's (the node's) namespace.
  bool manage_forwarding = true;
  // Netfilter's TCP conntrack timeouts in the node's namespace, as kube-proxy sets them; 0 leaves one
  // alone (proxy/agent/netfilter_conntrack.h).
  ConntrackTimeouts netfilter_conntrack;
  // This node's pod CIDRs when no Node object names them (standalone mode without Nodes).
  std::vector<IpPrefix> pod_cidrs;
  // Egress masquerade: pods' flows to destinations outside the cluster (every node's pod CIDRs and
  // addresses, and these CIDRs) leave with the node's address.
  bool masquerade = true;
  std::vector<IpPrefix> non_masquerade_cidrs;
  uint32_t non_masquerade_cidrs_max = 16384;  // size of the datapath's set of in-cluster CIDRs
  // Sizes of the NetworkPolicy maps (bpf/abi/policy.h); a write into a full one names its setting.
  uint32_t policy_peers_max = WEIR_POLICY_PEERS_DEFAULT_SIZE;
  uint32_t policy_rules_max = WEIR_POLICY_RULES_DEFAULT_SIZE;
  uint32_t policy_cidrs_max = WEIR_POLICY_CIDRS_DEFAULT_SIZE;
  uint32_t policy_conntrack_max = WEIR_POLICY_CT_DEFAULT_SIZE;
  std::string log_level = "info";  // debug, info, warn or error
  // kube-proxy's endpoints ("host:port"; empty: not served): its health check, which load balancers
  // and operators poll, and /proxyMode and /metrics.
  std::string kube_proxy_healthz_address = "0.0.0.0:10256";
  std::string kube_proxy_metrics_address = "127.0.0.1:10249";
  // NetworkPolicy enforcement: the agent watches Pods, Namespaces and NetworkPolicies, writes each
  // local endpoint's policy, and the CNI conflist asks CNI ADD to start every pod denied until the
  // agent has answered for it (docs/network-policy.md).
  bool network_policy = false;
  // Every endpoint of this node in audit mode: drops are reported, not made.
  bool policy_audit = false;
  // Where CNI ADD (and weirctl policy) reach the agent: "@name" for an abstract socket in the node's
  // network namespace (lib/agent_socket.h), or a filesystem path.
  std::string policy_socket = "@weir-policy";
  // How long CNI ADD waits for the agent's answer before it returns with the pod still denied.
  uint32_t policy_cni_timeout_ms = 3000;
  std::string health_host = "0.0.0.0";
  int health_port = 9876;  // 0: no health/metrics server
};

// Reads the YAML file; unknown keys are an error (a typo must not silently change behaviour).
absl::StatusOr<AgentConfig> LoadAgentConfig(const std::string& path);
absl::StatusOr<AgentConfig> ParseAgentConfig(const std::string& yaml_text);
absl::StatusOr<lb::LbMode> ParseLbMode(const std::string& text);
// nodePortAcceleration: "native", "generic" or "disabled".
absl::Status CheckNodePortAcceleration(const std::string& mode);
// A list of CIDRs of either family (a setting's value); `what` names the setting in errors.
absl::StatusOr<std::vector<IpPrefix>> ParseCidrList(const std::vector<std::string>& texts,
                                                    const std::string& what);

}  // namespace weir::agent
