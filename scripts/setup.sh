#!/usr/bin/env bash
# Installs everything weir needs to build, test and benchmark, idempotently and without prompts.
# Debian packages only, plus upstream tools built from their published Go modules (cnitool, helm;
# cached outside the repo, in WEIR_TOOLS_DIR).
set -euo pipefail

WEIR_TOOLS_DIR="${WEIR_TOOLS_DIR:-/var/cache/weir-tools}"
CNITOOL_VERSION="${CNITOOL_VERSION:-v1.2.3}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"

packages=(
  build-essential cmake ninja-build pkg-config clang llvm ccache clang-format
  libbpf-dev bpftool libelf-dev zlib1g-dev
  libcpp-httplib-dev libssl-dev libyaml-cpp-dev rapidjson-dev libabsl-dev
  libgtest-dev libgmock-dev libspdlog-dev
  iproute2 iputils-ping socat tcpdump strace wrk ethtool
  # bench/dataplane_bench.py --profile: where the node's CPU goes per subject.
  linux-perf
  containernetworking-plugins qperf iperf3
  python3-pytest python3-yaml
  containerd runc iptables nftables mmdebstrap curl openssl
  # What the tests and benchmarks run besides: sysctl and kill (procps), nsenter and taskset (util-linux).
  procps util-linux
  buildah skopeo umoci
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

mkdir -p "$WEIR_TOOLS_DIR/bin"
if [[ ! -x "$WEIR_TOOLS_DIR/bin/cnitool" ]]; then
  echo "setup: building cnitool $CNITOOL_VERSION from its Go module"
  GOBIN="$WEIR_TOOLS_DIR/bin" GOFLAGS=-mod=mod go install \
    "github.com/containernetworking/cni/cnitool@$CNITOOL_VERSION"
fi

# The CNI library of containerd 1.6 (libcni v1.1.2, pinned in e2e/libcni_client/go.mod), for the e2e
# test of weir-agent's conflist with runtimes that ignore "cniVersions".
LIBCNI_CLIENT="$WEIR_TOOLS_DIR/bin/libcni-client-v1.1.2"
if [[ ! -x "$LIBCNI_CLIENT" ]]; then
  echo "setup: building $LIBCNI_CLIENT from e2e/libcni_client"
  (cd "$(dirname "$0")/../e2e/libcni_client" && go build -o "$LIBCNI_CLIENT" .)
fi

# A portmap that speaks CNI 1.1.0 (Debian 12's stops at 1.0.0), as containerd 2.x installs ship it: libcni
# 1.2+ (cnitool) runs weir-agent's whole conflist at the newest of its "cniVersions".
# The portmap weir's image ships (scripts/build-image.sh builds it the same way, into the same dir):
# static, CNI 1.1.0. e2e/test_cni_runtime_versions.py chains it too.
PORTMAP_VERSION="${WEIR_PORTMAP_VERSION:-v1.9.1}"
if [[ ! -x "$WEIR_TOOLS_DIR/portmap-$PORTMAP_VERSION/portmap" ]]; then
  echo "setup: building portmap $PORTMAP_VERSION from its Go module"
  CGO_ENABLED=0 GOBIN="$WEIR_TOOLS_DIR/portmap-$PORTMAP_VERSION" GOFLAGS="-mod=mod -buildvcs=false" \
    go install -trimpath -ldflags '-s -w' "github.com/containernetworking/plugins/plugins/meta/portmap@$PORTMAP_VERSION"
fi

if [[ $("$WEIR_TOOLS_DIR/bin/helm" version --template '{{.Version}}' 2>/dev/null) != "$HELM_VERSION" ]]; then
  echo "setup: building helm $HELM_VERSION from its Go module"
  GOBIN="$WEIR_TOOLS_DIR/bin" GOFLAGS="-mod=mod -buildvcs=false" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi

python3 -c 'import pytest' 2>/dev/null || python3 -m pip install -q pytest
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml
# The Python style check (scripts/check_style.sh), pinned: another version may format differently.
[[ "$(python3 -m ruff --version 2>/dev/null)" == "ruff 0.8.0" ]] || python3 -m pip install -q ruff==0.8.0
# Every benchmark (bench/*.py) draws its plot with matplotlib.
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib
# Upstream Kubernetes control-plane binaries and etcd for e2e/test_kube_*.py, built from their Go
# modules and cached in $WEIR_TOOLS_DIR/kube-<version>/bin: the first build is long (10-27 minutes
# on 2 cores, docs/upstream-kubernetes.md), later runs take a second. WEIR_KUBE=0 skips it; a failed
# build does not fail setup, and the tests that need it then say they were skipped and why.
if [[ "${WEIR_KUBE:-1}" == 1 ]]; then
  # The control plane for e2e/test_kube_*, kube-proxy for the benchmarks, and what the two-node
  # cluster adds (kubelet, kube-scheduler, agnhost; then CoreDNS and the base images), and the e2e
  # suite for scripts/conformance.sh.
  KUBE_BINARIES="kube-apiserver kube-controller-manager kubectl kube-proxy kube-scheduler kubelet agnhost e2e.test ginkgo regression-issue-74839" \
    WEIR_TOOLS_DIR="$WEIR_TOOLS_DIR" "$(dirname "$0")/../weirlab/kube/build_upstream.sh" || \
    echo "setup: WARNING: building upstream Kubernetes failed; e2e/test_kube_* will be skipped"
  WEIR_TOOLS_DIR="$WEIR_TOOLS_DIR" "$(dirname "$0")/cluster.sh" prepare || \
    echo "setup: WARNING: preparing the two-node cluster failed; e2e/test_kcluster.py will fail"
fi
echo "setup: ok"
