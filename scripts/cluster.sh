#!/usr/bin/env bash
# A two-node Kubernetes cluster (upstream v1.37 control plane, containerd and kubelet per node, no
# kube-proxy, CoreDNS) on this machine, with weir installed by `helm install` from charts/weir.
#   scripts/cluster.sh up        build what is missing, bring it up; prints the admin kubeconfig last
#   scripts/cluster.sh down      remove everything up made (also after a failed up)
#   scripts/cluster.sh status | kubectl ARGS | helm ARGS   (run inside the cluster's network)
# Run as root after scripts/setup.sh. Everything lives in network namespaces wc-*, node mount
# namespaces and /var/lib/weir-cluster; nothing touches the machine's own network.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 -m e2e.kcluster.cluster "$@"
