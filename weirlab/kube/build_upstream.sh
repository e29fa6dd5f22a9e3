#!/usr/bin/env bash
# Builds upstream Kubernetes control-plane binaries and etcd from their published Go modules, at pinned
# versions, into $WEIR_TOOLS_DIR/kube-<version>/bin:
#   kube-apiserver kube-controller-manager kubectl kube-proxy   (k8s.io/kubernetes/cmd/...)
#   and on request kubelet, kube-scheduler (cmd/...) and agnhost (test/images/agnhost), for the
#   two-node cluster (scripts/cluster.sh), and e2e.test (test/e2e, a test binary) and ginkgo for
#   the conformance run (scripts/conformance.sh)
#   etcd                                                        (go.etcd.io/etcd/server/v3/etcdmain)
#
# k8s.io/kubernetes requires its ~30 staging modules (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and
# replaces them with ./staging/... in its own go.mod; replace directives of a dependency are ignored, so
# a throwaway main module (in a temp dir outside the repo) replaces each of them with the matching
# published v0.X.Y. The list is read from the downloaded go.mod, not hardcoded.
#
# Idempotent: each binary has a stamp (version, Go version, flags); a binary whose stamp matches is
# skipped. Module and build caches are Go's defaults (GOPATH, GOCACHE), so a re-run is fast.
#
# Usage: weirlab/kube/build_upstream.sh            (env: KUBE_VERSION, ETCD_VERSION, WEIR_TOOLS_DIR,
#                                               KUBE_BINARIES="kube-apiserver kubectl ...")
# Prints the bin dir on its last line.
set -euo pipefail

# v1.37.1: newest release whose go directive (1.26.0) Go 1.26 builds and whose module zip the proxy
# serves (v1.37.2's .info/.mod are served, its zip is refused: "This module version is not available").
KUBE_VERSION="${KUBE_VERSION:-v1.37.1}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
WEIR_TOOLS_DIR="${WEIR_TOOLS_DIR:-/var/cache/weir-tools}"
KUBE_BINARIES="${KUBE_BINARIES:-kube-apiserver kube-controller-manager kubectl kube-proxy}"
BUILD_P="${BUILD_P:-2}"

GO="$(command -v go || true)"
[[ -n "$GO" ]] || GO=/usr/local/go/bin/go
[[ -x "$GO" ]] || { echo "build_upstream: no Go toolchain found" >&2; exit 1; }
export GOFLAGS="-mod=mod -buildvcs=false"
export GOTOOLCHAIN=local
export CGO_ENABLED=0   # as upstream release builds of these commands; static binaries

log() { printf '[build_upstream %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

[[ "$KUBE_VERSION" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || {
  echo "build_upstream: KUBE_VERSION must look like v1.N.M, got $KUBE_VERSION" >&2; exit 1; }
KUBE_MINOR="${BASH_REMATCH[1]}"
STAGING_VERSION="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"

top="$WEIR_TOOLS_DIR/kube-$KUBE_VERSION"
bin="$top/bin"
stamps="$top/stamps"
mkdir -p "$bin" "$stamps"
go_version="$("$GO" env GOVERSION)"

stamp_of() {  # identity of a binary's build; a change rebuilds it
  case "$1" in
    etcd) echo "etcd=$ETCD_VERSION go=$go_version cgo=$CGO_ENABLED v1" ;;
    *) echo "kubernetes=$KUBE_VERSION staging=$STAGING_VERSION go=$go_version cgo=$CGO_ENABLED v1" ;;
  esac
}
package_of() {  # the Go package of a binary of the kubernetes module
  case "$1" in
    agnhost|regression-issue-74839) echo "k8s.io/kubernetes/test/images/$1" ;;
    e2e.test) echo "k8s.io/kubernetes/test/e2e" ;;
    ginkgo) echo "github.com/onsi/ginkgo/v2/ginkgo" ;;
    *) echo "k8s.io/kubernetes/cmd/$1" ;;
  esac
}
up_to_date() { [[ -x "$bin/$1" && -f "$stamps/$1" && "$(cat "$stamps/$1")" == "$(stamp_of "$1")" ]]; }

todo=()
for b in $KUBE_BINARIES etcd; do
  if up_to_date "$b"; then log "$b: up to date ($(stamp_of "$b"))"; else todo+=("$b"); fi
done
if ((${#todo[@]} == 0)); then
  log "all binaries up to date in $bin"
  echo "$bin"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/weir-kube-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
total_start=$SECONDS

build_one() {  # build_one NAME PACKAGE LDFLAGS (run inside the module dir)
  local name="$1" pkg="$2" ldflags="$3" t0=$SECONDS
  log "$name: go build $pkg"
  if [[ "$name" == *.test ]]; then  # a test binary (the e2e suite)
    "$GO" test -c -p "$BUILD_P" -trimpath -ldflags "$ldflags" -o "$bin/.$name.tmp" "$pkg"
  else
    "$GO" build -p "$BUILD_P" -trimpath -ldflags "$ldflags" -o "$bin/.$name.tmp" "$pkg"
  fi
  mv -f "$bin/.$name.tmp" "$bin/$name"
  stamp_of "$name" >"$stamps/$name"
  log "$name: built in $((SECONDS - t0))s ($(du -h "$bin/$name" | cut -f1))"
}

needs_kube=0
for b in "${todo[@]}"; do [[ "$b" != etcd ]] && needs_kube=1; done

if ((needs_kube)); then
  log "kubernetes $KUBE_VERSION: downloading module (staging modules at $STAGING_VERSION)"
  t0=$SECONDS
  if ! info="$("$GO" mod download -json "k8s.io/kubernetes@$KUBE_VERSION")"; then
    echo "build_upstream: cannot download k8s.io/kubernetes@$KUBE_VERSION:" >&2; echo "$info" >&2; exit 1
  fi
  gomod="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")"
  infofile="$(sed -n 's/^[[:space:]]*"Info": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")"
  [[ -f "$gomod" ]] || { echo "build_upstream: go mod download gave no go.mod:" >&2; echo "$info" >&2; exit 1; }
  build_date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$infofile")"
  build_date="${build_date:-1970-01-01T00:00:00Z}"

  # Staging modules: every k8s.io/* requirement at v0.0.0, in a require block or on a require line.
  mapfile -t staging < <(awk '
    /^require[[:space:]]*\(/ { inblock = 1; next }
    inblock && /^\)/ { inblock = 0; next }
    inblock && $1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print $1 }
    /^require[[:space:]]+k8s\.io\// && $3 == "v0.0.0" { print $2 }' "$gomod" | sort -u)
  ((${#staging[@]} > 0)) || { echo "build_upstream: no v0.0.0 staging modules found in $gomod" >&2; exit 1; }
  log "kubernetes $KUBE_VERSION: ${#staging[@]} staging modules -> $STAGING_VERSION"

  mkdir -p "$work/kube"
  go_directive="$(awk '$1 == "go" { print $2; exit }' "$gomod")"
  {
    echo "module weir.local/kube-build"
    echo
    echo "go ${go_directive:-1.26.0}"
    # Keep upstream's GODEBUG defaults (they apply only from the main module's go.mod).
    awk '/^godebug[[:space:]]*\(/ { b = 1 } b { print; if ($0 ~ /^\)/) b = 0; next } /^godebug[[:space:]]/ { print }' "$gomod"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    for m in "${staging[@]}"; do echo "	$m => $m $STAGING_VERSION"; done
    echo ")"
  } >"$work/kube/go.mod"

  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$KUBE_MINOR"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$build_date -X $p.gitCommit="
  done

  cd "$work/kube"
  # Resolve the whole graph once (writes go.sum); later builds only compile.
  pkgs=()
  for b in "${todo[@]}"; do [[ "$b" != etcd ]] && pkgs+=("$(package_of "$b")"); done
  "$GO" list -deps -test "${pkgs[@]}" >/dev/null
  log "kubernetes $KUBE_VERSION: modules resolved in $((SECONDS - t0))s"
  for b in "${todo[@]}"; do
    [[ "$b" == etcd ]] || build_one "$b" "$(package_of "$b")" "$ldflags"
  done
fi

if [[ " ${todo[*]} " == *" etcd "* ]]; then
  log "etcd $ETCD_VERSION: preparing wrapper module"
  mkdir -p "$work/etcd"
  cd "$work/etcd"
  cat >go.mod <<EOF
module weir.local/etcd-build

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
  cat >main.go <<'EOF'
// etcd built from its published server module (go install of the module fails on its replace lines).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  t0=$SECONDS
  "$GO" mod tidy >/dev/null
  log "etcd $ETCD_VERSION: modules resolved in $((SECONDS - t0))s"
  build_one etcd . "-s -w"
fi

for b in $KUBE_BINARIES etcd; do up_to_date "$b" || { echo "build_upstream: $b missing after build" >&2; exit 1; }; done
log "done in $((SECONDS - total_start))s: $(cd "$bin" && du -h $KUBE_BINARIES etcd | awk '{printf "%s=%s ", $2, $1}')"
echo "$bin"
