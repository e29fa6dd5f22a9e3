"""A two-node Kubernetes cluster from upstream sources on one machine, with weir installed by helm.

scripts/cluster.sh up|down|status|kubectl|helm drives it; see e2e/kcluster/cluster.py."""
