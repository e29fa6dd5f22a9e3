#!/usr/bin/env bash
# Makes (or reuses) a Debian minbase root filesystem tarball and prints its path.
#
#   scripts/debian-rootfs.sh SUITE [PACKAGE...] [-- DPKG_PATH_FILTER...]
#
# The tarball is built by mmdebstrap (no container runtime, nothing started in it) and cached in
# $WEIR_TOOLS_DIR/rootfs under a name keyed by everything that decides its content: the suite, the
# sorted package list, the dpkg path filters, the mirrors and the recipe version below. A second call
# with the same inputs costs a file test; WEIR_ROOTFS_REFRESH=1 rebuilds (for security updates).
# Superseded tarballs are not removed (other checkouts may still use them).
#
# Each DPKG_PATH_FILTER is a dpkg path-exclude/path-include option such as
# "path-exclude=/usr/lib/cni/*": it drops what a package installs but an image does not need.
# Documentation, manual pages and translations are always left out (copyright files stay).
set -euo pipefail

usage() { echo "usage: $0 SUITE [PACKAGE...] [-- DPKG_PATH_FILTER...]" >&2; exit 2; }
(($#)) || usage
suite=$1; shift
packages=()
filters=(
  'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright'
  'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*'
  'path-exclude=/usr/share/locale/*' 'path-include=/usr/share/locale/locale.alias'
)
while (($#)); do
  if [[ $1 == -- ]]; then shift; filters+=("$@"); break; fi
  packages+=("$1"); shift
done
[[ $suite =~ ^[a-z]+$ ]] || { echo "debian-rootfs: suite must be a Debian code name, got '$suite'" >&2; exit 2; }
for f in "${filters[@]}"; do
  [[ $f == path-exclude=/* || $f == path-include=/* ]] || {
    echo "debian-rootfs: a filter is path-exclude=/PATTERN or path-include=/PATTERN, got '$f'" >&2; exit 2; }
done
command -v mmdebstrap >/dev/null || {
  echo "debian-rootfs: mmdebstrap is not installed (scripts/setup.sh installs it)" >&2; exit 1; }

mirror="${WEIR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${WEIR_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
cache_dir="${WEIR_TOOLS_DIR:-/var/cache/weir-tools}/rootfs"

sorted_packages=$(printf '%s\n' "${packages[@]}" | sed '/^$/d' | sort -u | paste -sd, -)
# Bump when the way the tree is made changes (options, hooks), so that caches made before are not used.
recipe_version=2
key=$( { echo "$recipe_version $suite"; echo "$sorted_packages"; printf '%s\n' "${filters[@]}";
         echo "$mirror $security_mirror"; } | sha256sum | cut -c1-16)
out="$cache_dir/$suite-minbase-$key.tar"
if [[ -s $out && ${WEIR_ROOTFS_REFRESH:-0} != 1 ]]; then
  echo "debian-rootfs: cached $out" >&2
  echo "$out"; exit 0
fi

mkdir -p "$cache_dir"
tmp=$(mktemp "$cache_dir/.$suite-XXXXXX.tar")
trap 'rm -f "$tmp"' EXIT
args=(--quiet --variant=minbase --mode=root --format=tar)
[[ -n $sorted_packages ]] && args+=(--include="$sorted_packages")
for f in "${filters[@]}"; do args+=(--dpkgopt="$f"); done
# Merged /usr made up front (directory symlinks, as debootstrap does): otherwise apt satisfies
# init-system-helpers' "usrmerge | usr-is-merged" with usrmerge, which brings all of perl (25 MB).
merged_usr_hooks=/usr/share/mmdebstrap/hooks/maybe-merged-usr
[[ -d $merged_usr_hooks ]] && args+=(--hook-dir="$merged_usr_hooks")
# The point releases and security updates of the suite too: the image ships these libraries.
sources=("deb $mirror $suite main" "deb $mirror $suite-updates main" "deb $security_mirror $suite-security main")
echo "debian-rootfs: mmdebstrap $suite ${sorted_packages:+(+$sorted_packages)}" >&2
start=$(date +%s.%N)
mmdebstrap "${args[@]}" "$suite" "$tmp" "${sources[@]}" >&2
chmod 0644 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
awk -v s="$start" -v e="$(date +%s.%N)" -v f="$out" -v z="$(du -h "$out" | cut -f1)" \
  'BEGIN { printf "debian-rootfs: %s (%s) in %.1f s\n", f, z, e - s }' >&2
echo "$out"
