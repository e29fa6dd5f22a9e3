// The node step of the agent's loop, after each sync that brought Nodes: the in-cluster CIDRs that
// egress masquerade leaves alone, the routes to other nodes' pod CIDRs, then the CNI conflist
// (written once this node's pod CIDR is known, so that kubelet sees the network ready only then).
#pragma once

#include <vector>

#include "lib/ip.h"
#include "lib/netlink.h"
#include "proxy/agent/agent_config.h"
#include "proxy/agent/cni_config_writer.h"
#include "proxy/k8s/objects.h"
#include "proxy/sync/nonmasq_table.h"

namespace weir::agent {

CniConfigSettings CniSettingsFrom(const AgentConfig& config, std::vector<IpPrefix> pod_cidrs);

class NodeSync {
 public:
  // Each outlives this.
  NodeSync(const AgentConfig& config, sync::NonMasqueradeSync& non_masquerade, Netlink& netlink)
      : config_(config), non_masquerade_(non_masquerade), netlink_(netlink) {}

  // False when a part failed and needs another try (each part is logged); the others still ran.
  bool Sync(const std::vector<k8s::Node>& nodes);

 private:
  const AgentConfig& config_;
  sync::NonMasqueradeSync& non_masquerade_;
  Netlink& netlink_;
};

}  // namespace weir::agent
