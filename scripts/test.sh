#!/usr/bin/env bash
# Builds weir and runs every test: unit (no root), privileged (BPF_PROG_TEST_RUN, netlink in
# namespaces the tests make) and end-to-end (a namespace lab driven by the real binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
export WEIR_BUILD_DIR="${WEIR_BUILD_DIR:-$PWD/build}"
scripts/build.sh

echo "== source layers (no upward include) and style"
python3 scripts/check_layers.py
scripts/check_style.sh

echo "== unit and privileged tests (ctest)"
ctest --test-dir "$WEIR_BUILD_DIR" --output-on-failure

echo "== end-to-end tests (pytest)"
python3 -m pytest -q e2e "$@"
