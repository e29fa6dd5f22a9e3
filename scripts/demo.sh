#!/usr/bin/env bash
# The lab demo: a node in a network namespace, pods wired by the weir CNI plugin, traffic between
# them delivered by weir's eBPF datapath. Everything it makes is removed when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
export WEIR_BUILD_DIR="${WEIR_BUILD_DIR:-$PWD/build}"
scripts/build.sh
exec python3 -m e2e.demo "$@"
