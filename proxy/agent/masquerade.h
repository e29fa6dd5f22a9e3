// Which destinations pods reach with their own source address: everything inside the cluster. The
// rest is masqueraded to the node's address by the datapath (bpf/lib/masquerade.h).
#pragma once

#include <vector>

#include "lib/ip.h"
#include "proxy/k8s/objects.h"
#include "proxy/sync/nonmasq_table.h"

namespace weir::agent {

struct NonMasqueradeInputs {
  const std::vector<k8s::Node>& nodes;          // every Node the source knows (with this one)
  const std::vector<IpPrefix>& own_pod_cidrs;   // podCIDRs setting: standalone mode without a Node
  const std::vector<IpAddress>& own_addresses;  // nodeAddresses setting
  const std::vector<IpPrefix>& configured;      // nonMasqueradeCIDRs setting
};

// Every node's pod CIDRs (kPods) and addresses (InternalIP and ExternalIP, as host prefixes, kNode),
// this node's configured pod CIDRs (kPods) and addresses (kNode), and the configured
// nonMasqueradeCIDRs (kInCluster); both families, host bits cleared. A prefix listed as more than one
// kind keeps the strongest (sync::StrongerKind).
sync::CidrKinds NonMasqueradeCidrs(const NonMasqueradeInputs& inputs);

}  // namespace weir::agent
