"""weir's namespace lab, shared by the end-to-end tests (e2e/), the demo and the benchmarks (bench/):
simulated nodes as network namespaces running the real agent and CNI plugin (lab.py, cluster.py), a
probe program run inside them (netcheck.py), and an upstream control plane (kube/)."""
