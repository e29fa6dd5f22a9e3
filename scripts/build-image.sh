#!/usr/bin/env bash
# Builds weir's container image from Debian packages, without a registry and without running anything
# inside a container, and writes it as a docker-archive that `ctr -n k8s.io images import` takes.
#
#   scripts/build-image.sh [--out DIR] [--portmap debian|module]
#
# DIR defaults to the build directory; the file is weir-image.tar. --portmap picks the portmap plugin
# the chart installs on the nodes: one built from the containernetworking/plugins Go module (default;
# $WEIR_PORTMAP_VERSION, default v1.9.1; static, so it runs on any host glibc, and it speaks CNI
# 1.1.0, which containerd 2.x picks from the conflist's cniVersions), or Debian's (dynamically
# linked, needs glibc >= 2.34 on the host, CNI <= 1.0.0: containerd 1.6 only), cached in
# $WEIR_TOOLS_DIR.
#
# Exit status 3: a tool is missing, or no Debian root filesystem (no mirror) or portmap module could
# be had.
#
# 1. builds weir, weir-agent and weirctl (scripts/build.sh; a no-op when they are up to date);
# 2. makes a minbase root filesystem of the host's Debian suite (scripts/debian-rootfs.sh, cached by
#    package list) holding the packages that own the shared libraries the binaries link (found with
#    ldd, so a new dependency is picked up by itself), iproute2, and Debian's portmap CNI plugin
#    (containernetworking-plugins, every other plugin filtered out);
# 3. assembles the image with buildah from scratch / add / copy / config / commit only. Never
#    `buildah run` or `bud`: on this kind of machine they add iptables rules and set ip_forward in
#    the root network namespace. buildah's storage lives in $WEIR_TOOLS_DIR/buildah (vfs driver);
#    the working container and the committed image are removed once the archive is written.
# The image is tagged localhost/weir:<version> (git describe, else VERSION-g<commit>) and with the
# chart's default reference (values.yaml image.repository : Chart.yaml appVersion), so that
# `helm install weir charts/weir` finds it after an import.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${WEIR_BUILD_DIR:-build}"
OUT_DIR=""
PORTMAP=module
PORTMAP_VERSION="${WEIR_PORTMAP_VERSION:-v1.9.1}"
while (($#)); do
  case $1 in
    --out) [[ $# -ge 2 ]] || { echo "build-image: --out needs a directory" >&2; exit 2; }; OUT_DIR=$2; shift 2 ;;
    --out=*) OUT_DIR=${1#--out=}; shift ;;
    --portmap) [[ $# -ge 2 ]] || { echo "build-image: --portmap needs debian or module" >&2; exit 2; }; PORTMAP=$2; shift 2 ;;
    --portmap=*) PORTMAP=${1#--portmap=}; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "build-image: unknown argument '$1' (usage: $0 [--out DIR] [--portmap debian|module])" >&2; exit 2 ;;
  esac
done
[[ $PORTMAP == debian || $PORTMAP == module ]] ||
  { echo "build-image: --portmap is debian or module, not '$PORTMAP'" >&2; exit 2; }
OUT_DIR=${OUT_DIR:-$BUILD_DIR}
TOOLS_DIR="${WEIR_TOOLS_DIR:-/var/cache/weir-tools}"

for tool in mmdebstrap buildah skopeo ldd dpkg-query strip; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool is missing; run scripts/setup.sh" >&2; exit 3; }
done
[[ $(id -u) == 0 ]] || { echo "build-image: needs root (mmdebstrap root mode, buildah storage)" >&2; exit 1; }

t_start=$(date +%s.%N); t_step=$t_start
step_done() {  # prints how long the step took and the total so far
  local now; now=$(date +%s.%N)
  awk -v a="$t_step" -v b="$now" -v s="$t_start" -v what="$1" \
    'BEGIN { printf "build-image: %-28s %6.1f s (total %6.1f s)\n", what, b - a, b - s }'
  t_step=$now
}

# --- version and tags --------------------------------------------------------------------------
chart_app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' charts/weir/Chart.yaml)
chart_repository=$(awk '/^image:/ { inside = 1; next } inside && /^[^ #]/ { inside = 0 }
                        inside && $1 == "repository:" { print $2 }' charts/weir/values.yaml)
base_version=$(tr -d ' \n' < VERSION)
if version=$(git describe --tags --dirty 2>/dev/null); then
  version=${version#v}
else
  version="$base_version-g$(git rev-parse --short=12 HEAD)"
  [[ -z $(git status --porcelain --untracked-files=no) ]] || version+="-dirty"
fi
primary_ref="localhost/weir:$version"
chart_ref="$chart_repository:$chart_app_version"
[[ -n $chart_app_version && -n $chart_repository ]] || {
  echo "build-image: cannot read image.repository / appVersion from charts/weir" >&2; exit 1; }

# --- 1. binaries ---------------------------------------------------------------------------------
binaries=("$BUILD_DIR/cni/weir" "$BUILD_DIR/proxy/weir-agent" "$BUILD_DIR/proxy/weirctl")
WEIR_BUILD_DIR="$BUILD_DIR" scripts/build.sh weir weir-agent weirctl
step_done "binaries (scripts/build.sh)"

# --- 2. root filesystem ------------------------------------------------------------------------
# The Debian packages that own the libraries the binaries load, as resolved on this (build) host.
runtime_packages() {
  local bin lib owner
  for bin in "$@"; do
    ldd "$bin" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' || true
  done | sort -u | while read -r lib; do
    # dpkg records merged-/usr files under either spelling; try both.
    owner=$(dpkg-query -S "$lib" 2>/dev/null || dpkg-query -S "/usr$lib" 2>/dev/null ||
            dpkg-query -S "$(readlink -f "$lib")" 2>/dev/null) ||
      { echo "build-image: no Debian package owns $lib (needed by the binaries)" >&2; return 1; }
    echo "${owner%%:*}"
  done | sort -u
}
mapfile -t libs_packages < <(runtime_packages "${binaries[@]}")
((${#libs_packages[@]})) || { echo "build-image: ldd found no libraries; are the binaries built?" >&2; exit 1; }
. /etc/os-release
suite=${VERSION_CODENAME:?build-image: /etc/os-release has no VERSION_CODENAME}
echo "build-image: runtime packages from ldd: ${libs_packages[*]}"
# Exit status 3 says "no root filesystem" (no mirror, no mmdebstrap), which tests report as a skip.
rootfs_args=("$suite" "${libs_packages[@]}" iproute2)
if [[ $PORTMAP == debian ]]; then
  rootfs_args+=(containernetworking-plugins -- 'path-exclude=/usr/lib/cni/*' 'path-include=/usr/lib/cni/portmap')
fi
rootfs=$(scripts/debian-rootfs.sh "${rootfs_args[@]}") ||
  { echo "build-image: cannot make the $suite root filesystem (see above)" >&2; exit 3; }
step_done "root filesystem ($suite)"

portmap_label="debian $(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo '?')"
if [[ $PORTMAP == module ]]; then
  portmap_dir="$TOOLS_DIR/portmap-$PORTMAP_VERSION"
  if [[ ! -x $portmap_dir/portmap ]]; then
    command -v go >/dev/null || { echo "build-image: --portmap module needs go" >&2; exit 3; }
    CGO_ENABLED=0 GOBIN="$portmap_dir" GOFLAGS="-mod=mod -buildvcs=false" go install -trimpath -ldflags '-s -w' \
      "github.com/containernetworking/plugins/plugins/meta/portmap@$PORTMAP_VERSION" ||
      { echo "build-image: cannot build portmap $PORTMAP_VERSION from its module (no Go proxy?)" >&2; exit 3; }
  fi
  portmap_label="containernetworking/plugins $PORTMAP_VERSION (static)"
  step_done "portmap $PORTMAP_VERSION (Go module)"
fi

# --- 3. image ------------------------------------------------------------------------------------
stage=$(mktemp -d "${TMPDIR:-/tmp}/weir-image-XXXXXX")
B=(buildah --root "$TOOLS_DIR/buildah/root" --runroot "$TOOLS_DIR/buildah/run" --storage-driver vfs)
work_ref="localhost/weir-build-$$:latest"   # unique: concurrent builds must not remove each other's
container=""
cleanup() {
  [[ -n $container ]] && "${B[@]}" rm "$container" >/dev/null 2>&1
  "${B[@]}" rmi "$work_ref" >/dev/null 2>&1
  rm -rf "$stage"
}
trap cleanup EXIT

# Debug info stays in the build tree (for symbolizing a core); the image gets stripped copies.
for bin in "${binaries[@]}"; do strip --strip-debug -o "$stage/$(basename "$bin")" "$bin"; done
container=$("${B[@]}" from --quiet scratch)
"${B[@]}" add --quiet "$container" "$rootfs" /
"${B[@]}" copy --quiet --chmod 0755 "$container" "$stage/weir" "$stage/weir-agent" "$stage/weirctl" /usr/local/bin/
if [[ $PORTMAP == module ]]; then
  "${B[@]}" copy --quiet --chmod 0755 "$container" "$portmap_dir/portmap" /usr/lib/cni/portmap
fi
revision=$(git rev-parse HEAD)
"${B[@]}" config --os linux --arch "$(dpkg --print-architecture)" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --entrypoint '["/usr/local/bin/weir-agent"]' --cmd '' --workingdir / \
  --label org.opencontainers.image.title=weir \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.revision="$revision" \
  --label org.opencontainers.image.base.name="debian:$suite minbase (mmdebstrap)" \
  --label io.weir.portmap="$portmap_label" \
  "$container"
"${B[@]}" commit --quiet --rm "$container" "$work_ref" >/dev/null
container=""
step_done "image assembled (buildah)"

mkdir -p "$OUT_DIR"
archive="$OUT_DIR/weir-image.tar"
rm -f "$archive.tmp"
storage="containers-storage:[vfs@$TOOLS_DIR/buildah/root+$TOOLS_DIR/buildah/run]$work_ref"
tags=("$primary_ref")
[[ $chart_ref == "$primary_ref" ]] || tags+=("$chart_ref")
skopeo copy --quiet ${tags[1]:+--additional-tag "${tags[1]}"} "$storage" "docker-archive:$archive.tmp:$primary_ref"
mv -f "$archive.tmp" "$archive"
step_done "docker-archive written"

size_mb=$(du -m "$archive" | cut -f1)
echo "build-image: $archive (${size_mb} MiB) tags: ${tags[*]}"
echo "build-image: import with: ctr -n k8s.io images import $(realpath "$archive" 2>/dev/null || echo "$archive")"
awk -v s="$t_start" -v e="$(date +%s.%N)" 'BEGIN { printf "build-image: done in %.1f s\n", e - s }'
