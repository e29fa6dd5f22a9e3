#!/usr/bin/env bash
# Upstream Kubernetes' [sig-network] e2e suite against weir on the two-node cluster.
#   scripts/conformance.sh [--focus RE] [--skip RE] [--quick] [--nodes N]
# Brings the cluster up if it is not (and down again after), writes build/conformance/junit.xml and
# results.md, and prints `N passed, N failed, N skipped` last. See docs/conformance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 -m e2e.kcluster.conformance "$@"
