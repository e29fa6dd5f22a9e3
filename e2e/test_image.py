"""weir's image as scripts/build-image.sh writes it: containerd imports the archive under the
reference the chart asks for by default, and unpacked, every binary finds its libraries and the
chart's own install-cni script does its job in it. Nothing is run in a container: the image's file
system is unpacked into a directory and entered with chroot (the containerd started here has no CRI
plugin and keeps everything in a temporary directory). Skipped when the image cannot be built here
(no Debian mirror or Go proxy, no mmdebstrap/buildah/skopeo)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from e2e.test_chart import container, render
from weirlab.lab import BUILD, REPO

CHART_META = yaml.safe_load((REPO / "charts" / "weir" / "Chart.yaml").read_text())

CONTAINERD_CONFIG = """version = 2
root = "{dir}/root"
state = "{dir}/state"
# Only the image store: no CRI (it would set up networking), nothing outside {dir}.
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{dir}/containerd.sock"
[ttrpc]
  address = "{dir}/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{dir}/opt"
"""


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """Builds an archive per portmap choice at most once for the module; removed afterwards."""
    built: dict[str, Path] = {}

    def get(portmap: str) -> Path:
        if portmap not in built:
            out = tmp_path_factory.mktemp(f"image-{portmap}")
            run = subprocess.run(
                [str(REPO / "scripts" / "build-image.sh"), "--out", str(out), "--portmap", portmap],
                capture_output=True,
                text=True,
                timeout=1800,
                env={**os.environ, "WEIR_BUILD_DIR": str(BUILD)},
            )
            if run.returncode == 3:
                pytest.skip(f"cannot build the image here: {run.stderr.strip().splitlines()[-1:]}")
            assert run.returncode == 0, run.stdout + run.stderr
            built[portmap] = out / "weir-image.tar"
        return built[portmap]

    yield get
    for path in built.values():
        path.unlink(missing_ok=True)


def test_containerd_imports_it_under_the_chart_reference(archives):
    """`ctr -n k8s.io images import`, into a containerd of our own (image store only, in a temporary
    directory): kubelet then finds the chart's default image without pulling."""
    if shutil.which("containerd") is None or shutil.which("ctr") is None:
        pytest.skip("containerd/ctr not installed (scripts/setup.sh installs them)")
    work = Path(tempfile.mkdtemp(prefix="weir-containerd-"))
    (work / "config.toml").write_text(CONTAINERD_CONFIG.format(dir=work))
    log = open(work / "containerd.log", "w")
    daemon = subprocess.Popen(
        ["containerd", "--config", str(work / "config.toml")],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        sock = work / "containerd.sock"
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.1)
        ctr = ["ctr", "--address", str(sock), "-n", "k8s.io"]
        imported = subprocess.run(
            [*ctr, "images", "import", str(archives("debian"))], capture_output=True, text=True, timeout=300
        )
        assert imported.returncode == 0, imported.stderr + (work / "containerd.log").read_text()[-2000:]
        names = subprocess.run([*ctr, "images", "ls", "-q"], capture_output=True, text=True, check=True).stdout.split()
        assert f"localhost/weir:{CHART_META['appVersion']}" in names
    finally:
        daemon.terminate()
        daemon.wait(30)
        log.close()
        # Its snapshot mounts are gone with it; nothing of it may stay mounted.
        assert str(work) not in Path("/proc/mounts").read_text()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module", params=["debian", "module"])
def image(request, archives):
    """(manifest, config, unpacked root) of the archive with Debian's portmap or the Go module's; the
    unpacked tree is removed."""
    archive_path = archives(request.param)
    root = Path(tempfile.mkdtemp(prefix="weir-image-root-"))
    try:
        with tarfile.open(archive_path) as archive:
            (manifest,) = json.load(archive.extractfile("manifest.json"))
            config = json.load(archive.extractfile(manifest["Config"]))
            for layer in manifest["Layers"]:
                untar = subprocess.Popen(["tar", "-x", "-C", str(root)], stdin=subprocess.PIPE)
                with archive.extractfile(layer) as stream:
                    shutil.copyfileobj(stream, untar.stdin)
                untar.stdin.close()
                assert untar.wait() == 0
        yield manifest, config, root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def in_image(root: Path, *cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["chroot", str(root), *cmd],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **(env or {})},
    )


def test_archive_has_the_chart_default_reference(image):
    manifest, config, _ = image
    assert f"localhost/weir:{CHART_META['appVersion']}" in manifest["RepoTags"]
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/weir-agent"]
    assert config["os"] == "linux"


def test_binaries_find_their_libraries(image):
    _, _, root = image
    for binary in ("weir-agent", "weirctl"):
        linked = in_image(root, "ldd", f"/usr/local/bin/{binary}")
        assert linked.returncode == 0 and "not found" not in linked.stdout, linked.stdout + linked.stderr
    assert in_image(root, "weir-agent", "--version").returncode == 0
    version = in_image(root, "weir", env={"CNI_COMMAND": "VERSION"})
    assert json.loads(version.stdout)["supportedVersions"], version.stderr
    assert in_image(root, "ip", "-V").returncode == 0


def test_only_the_chained_cni_plugins(image):
    _, _, root = image
    assert sorted(p.name for p in (root / "usr" / "lib" / "cni").iterdir()) == ["portmap"]


def test_portmap_speaks_cni(image, request):
    _, _, root = image
    answer = in_image(root, "/usr/lib/cni/portmap", env={"CNI_COMMAND": "VERSION"})
    assert answer.returncode == 0, answer.stderr
    supported = json.loads(answer.stdout)["supportedVersions"]
    # Debian bookworm's 1.1.1 stops at 1.0.0 (conflists must say 1.0.0); the module's knows 1.1.0.
    assert ("1.1.0" in supported) == (request.node.callspec.params["image"] == "module"), supported
    assert "1.0.0" in supported


def test_install_cni_script_installs_the_plugins(image):
    """The chart's init container command, run in the image against a directory standing for the
    host's CNI bin dir."""
    _, _, root = image
    install = container(render(), "install-cni")
    bin_dir = Path(tempfile.mkdtemp(prefix="cni-bin-", dir=root / "tmp"))
    inside = "/" + str(bin_dir.relative_to(root))
    try:
        (bin_dir / "weir").write_text("an older plugin")
        ran = in_image(root, *install["command"], env={"BIN_DIR": inside})
        assert ran.returncode == 0, ran.stderr
        assert sorted(p.name for p in bin_dir.iterdir()) == ["portmap", "weir"]  # no staging files left
        assert (bin_dir / "weir").read_bytes() == (root / "usr/local/bin/weir").read_bytes()
        assert (bin_dir / "portmap").stat().st_mode & 0o111
    finally:
        shutil.rmtree(bin_dir, ignore_errors=True)
