#!/usr/bin/env bash
# Configures and builds weir into ./build (or $WEIR_BUILD_DIR).
#   scripts/build.sh [TARGET...]   builds only the named targets (e.g. weir weir-agent weirctl);
#                                  WEIR_BUILD_TYPE picks the CMake build type (default RelWithDebInfo).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${WEIR_BUILD_DIR:-build}"
launcher=()
if command -v ccache >/dev/null; then
  # No CCACHE_BASEDIR: it would make __FILE__ relative, and tests find their data through it.
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${WEIR_BUILD_TYPE:-RelWithDebInfo}" "${launcher[@]}" >/dev/null
ninja -C "$BUILD_DIR" -j"${WEIR_BUILD_JOBS:-$(nproc)}" "$@"
