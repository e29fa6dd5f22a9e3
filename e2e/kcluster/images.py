"""Container images for the cluster, made here without a registry: docker-archive tarballs that
`ctr images import` takes, cached in $WEIR_TOOLS_DIR/images under a name that changes with what
goes in. Nothing is run inside an image while building it (no `buildah run`, whose network setup
touches the machine's own namespace): a layer is a tarball of files made on the host.

- pause: the kubernetes module's own build/pause/linux/pause.c, compiled static.
- agnhost: upstream's test server/client (built from the module) on a Debian minbase root
  filesystem (mmdebstrap) with curl, dig, nc and ip, under the name the e2e suite uses; the
  cluster tests use it as their client and server.
- coredns: the CoreDNS binary built from its module, alone.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

TOOLS_DIR = Path(os.environ.get("WEIR_TOOLS_DIR", "/var/cache/weir-tools"))
IMAGES_DIR = TOOLS_DIR / "images"
KUBE_VERSION = os.environ.get("KUBE_VERSION", "v1.37.1")
COREDNS_VERSION = "v1.14.6"  # the version kubeadm v1.37 deploys

PAUSE_IMAGE = "registry.k8s.io/pause:3.10.2"  # the tag test/utils/image/manifest.go of v1.37.1 uses
AGNHOST_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
COREDNS_IMAGE = f"registry.k8s.io/coredns/coredns:{COREDNS_VERSION}"
# One Debian root filesystem under every test image (containerd stores the shared layer once).
AGNHOST_PACKAGES = [
    "curl",
    "dnsutils",
    "iproute2",
    "netcat-openbsd",
    "iputils-ping",
    "ca-certificates",
    "procps",
    "wget",
    "nginx-light",
    # What build-image/distroless-iptables carries for the KubeProxy spec's host pod (conntrack -L).
    "conntrack",
    "iptables",
]


def log(text: str) -> None:
    print(f"[images {time.strftime('%H:%M:%S')}] {text}", flush=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files_layer(path: Path, files: dict[str, Path | bytes | None], symlinks: dict[str, str] | None = None) -> None:
    """A layer tarball: `files` maps an absolute path in the image to a host file, bytes, or None
    for a directory."""
    with tarfile.open(path, "w") as tar:
        for name, source in files.items():
            info = tarfile.TarInfo(name.lstrip("/"))
            info.mtime = 0
            if source is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            data = source if isinstance(source, bytes) else source.read_bytes()
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name.lstrip("/"))
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, target, 0
            tar.addfile(info)


def write_docker_archive(
    out: Path,
    tag: str | list[str],
    layers: list[Path],
    entrypoint: list[str],
    cmd: list[str] = (),
    env: list[str] = (),
    user: str = "",
) -> None:
    """The docker-archive format: manifest.json, the image config, one tarball per layer."""
    tmp = out.with_suffix(".partial")
    diff_ids = [f"sha256:{_sha256(layer)}" for layer in layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": list(entrypoint) or None,
            "Cmd": list(cmd) or None,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *env],
            "User": user,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "weir e2e/kcluster/images.py"} for _ in layers],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_names = [f"{d.split(':')[1]}/layer.tar" for d in diff_ids]
    tags = [tag] if isinstance(tag, str) else tag
    manifest = [{"Config": config_name, "RepoTags": tags, "Layers": layer_names}]
    with tarfile.open(tmp, "w") as tar:

        def add_bytes(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))

        add_bytes("manifest.json", json.dumps(manifest).encode())
        add_bytes(config_name, config_bytes)
        for name, layer in zip(layer_names, layers):
            tar.add(layer, arcname=name)
    tmp.rename(out)


def _cached(name: str, key: str) -> Path:
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return IMAGES_DIR / f"{name}-{digest}.tar"


def go_mod_cache() -> Path:
    return Path(subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip())


def pause_image() -> Path:
    source = go_mod_cache() / f"k8s.io/kubernetes@{KUBE_VERSION}/build/pause/linux/pause.c"
    out = _cached("pause", f"{KUBE_VERSION} v1")
    if out.exists():
        return out
    if not source.exists():
        raise RuntimeError(f"{source} missing: run weirlab/kube/build_upstream.sh first (it downloads the module)")
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "pause"
        subprocess.run(
            ["gcc", "-Os", "-Wall", "-Werror", "-static", "-DVERSION=v3.10.2-0", "-o", str(binary), str(source)],
            check=True,
        )
        subprocess.run(["strip", str(binary)], check=True)
        layer = Path(tmp) / "layer.tar"
        _files_layer(layer, {"/pause": binary})
        write_docker_archive(out, PAUSE_IMAGE, [layer], ["/pause"], user="65535:65535")
    log(f"pause image: {out}")
    return out


def _debian_rootfs(packages: list[str]) -> Path:
    """A Debian bookworm minbase root filesystem tarball with `packages`, cached by the list."""
    out = _cached("rootfs-bookworm", " ".join(sorted(packages)) + " v1")
    if out.exists():
        return out
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError("mmdebstrap missing (scripts/setup.sh installs it)")
    t0 = time.monotonic()
    tmp = out.with_suffix(".partial.tar")
    subprocess.run(
        [
            "mmdebstrap",
            "--quiet",
            "--variant=minbase",
            f"--include={','.join(packages)}",
            "--dpkgopt=path-exclude=/usr/share/{doc,man,locale,info}/*",
            "bookworm",
            str(tmp),
        ],
        check=True,
    )
    tmp.rename(out)
    log(f"Debian root filesystem ({len(packages)} packages) in {time.monotonic() - t0:.0f}s: {out}")
    return out


def agnhost_image(kube_bin: Path) -> Path:
    agnhost = kube_bin / "agnhost"
    coredns = coredns_binary()
    out = _cached("agnhost", f"{_sha256(agnhost)} {_sha256(coredns)} {' '.join(AGNHOST_PACKAGES)} v2")
    if out.exists():
        return out
    rootfs = _debian_rootfs(AGNHOST_PACKAGES)
    with tempfile.TemporaryDirectory() as tmp:
        # `agnhost porter` serves TLS with localhost.crt/localhost.key from its working directory
        # (/), which upstream's image ships: a self-signed pair for localhost stands in.
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "3650",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
                "-keyout",
                f"{tmp}/localhost.key",
                "-out",
                f"{tmp}/localhost.crt",
            ],
            check=True,
            capture_output=True,
        )
        layer = Path(tmp) / "agnhost.tar"
        # /uploads, agnhost-2 and /coredns are what upstream's image has and some specs use (the DNS
        # specs run their own test server as /coredns from this image).
        _files_layer(
            layer,
            {
                "/agnhost": agnhost,
                "/coredns": coredns,
                "/uploads": None,
                "/localhost.crt": Path(f"{tmp}/localhost.crt"),
                "/localhost.key": Path(f"{tmp}/localhost.key"),
            },
            {"/agnhost-2": "agnhost"},
        )
        write_docker_archive(
            out,
            [AGNHOST_IMAGE, "registry.k8s.io/e2e-test-images/agnhost:2.55"],
            [rootfs, layer],
            ["/agnhost"],
            ["pause"],
        )
    log(f"agnhost image: {out}")
    return out


def coredns_binary() -> Path:
    binary = TOOLS_DIR / "bin" / f"coredns-{COREDNS_VERSION}"
    if binary.exists():
        return binary
    t0 = time.monotonic()
    log(f"building CoreDNS {COREDNS_VERSION} from its module (about 2 minutes)")
    with tempfile.TemporaryDirectory() as gobin:
        env = {
            **os.environ,
            "GOBIN": gobin,
            "CGO_ENABLED": "0",
            "GOFLAGS": "-mod=mod -buildvcs=false",
            "GOTOOLCHAIN": "local",
        }
        subprocess.run(
            ["go", "install", "-ldflags=-s -w", f"github.com/coredns/coredns@{COREDNS_VERSION}"], check=True, env=env
        )
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(Path(gobin) / "coredns", binary)
    log(f"CoreDNS built in {time.monotonic() - t0:.0f}s")
    return binary


def coredns_image() -> Path:
    binary = coredns_binary()
    out = _cached("coredns", f"{_sha256(binary)} v1")
    if out.exists():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        layer = Path(tmp) / "layer.tar"
        _files_layer(layer, {"/coredns": binary})
        write_docker_archive(out, COREDNS_IMAGE, [layer], ["/coredns"])
    return out


# The images [sig-network] specs use besides agnhost and pause, stood in for by the same Debian root
# filesystem: busybox's and glibc-dns-testing's specs run shell commands (sh, nc, wget, dig); nginx's
# serve HTTP on port 80. regression-issue-74839 is its own program from the kubernetes module.
SHELL_IMAGES = [
    "registry.k8s.io/e2e-test-images/busybox:1.37.0-2",
    "registry.k8s.io/e2e-test-images/busybox:1.36.1-1",
    "registry.k8s.io/e2e-test-images/glibc-dns-testing:2.1.1",
    # A stand-in: the spec runs `sleep`, `test`, `cat`, `grep` and `conntrack` in it.
    "registry.k8s.io/build-image/distroless-iptables:v0.9.7",
]
NGINX_IMAGES = ["registry.k8s.io/e2e-test-images/nginx:1.27.0-2", "registry.k8s.io/e2e-test-images/nginx:1.28.0-2"]
REGRESSION_74839 = "registry.k8s.io/e2e-test-images/regression-issue-74839:1.5"


def e2e_images(kube_bin: Path) -> list[Path]:
    """The suite's images beyond the cluster's own (pause and agnhost are imported by `up`)."""
    rootfs = _debian_rootfs(AGNHOST_PACKAGES)
    archives = []
    shell = _cached("shell", f"{rootfs.name} v1")
    if not shell.exists():
        write_docker_archive(shell, SHELL_IMAGES, [rootfs], [], ["sh"])
    nginx = _cached("nginx", f"{rootfs.name} v1")
    if not nginx.exists():
        write_docker_archive(nginx, NGINX_IMAGES, [rootfs], ["nginx", "-g", "daemon off;"])
    archives += [shell, nginx]
    binary = kube_bin / "regression-issue-74839"
    if binary.exists():
        regression = _cached("regression-74839", f"{_sha256(binary)} v1")
        if not regression.exists():
            with tempfile.TemporaryDirectory() as tmp:
                layer = Path(tmp) / "layer.tar"
                _files_layer(layer, {"/regression-issue-74839": binary})
                write_docker_archive(regression, REGRESSION_74839, [layer], ["/regression-issue-74839"])
        archives.append(regression)
    return archives
