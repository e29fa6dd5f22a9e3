"""weir's image as scripts/build-image.sh writes it: the archive a node imports carries the reference
the chart asks for by default, and unpacked, every binary finds its libraries and the chart's own
install-cni script does its job in it. Nothing is run in a container: the image's file system is
unpacked into a directory and entered with chroot, no namespace other than the mount root changes.
Skipped when no Debian root filesystem can be made (no mirror, no mmdebstrap/buildah/skopeo)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
import yaml

from e2e.lab import BUILD, REPO
from e2e.test_chart import container, render

CHART_META = yaml.safe_load((REPO / "charts" / "weir" / "Chart.yaml").read_text())


@pytest.fixture(scope="module", params=["debian", "module"])
def image(request, tmp_path_factory):
    """(manifest, config, unpacked root) of a freshly built archive, with Debian's portmap or the
    Go module's; the directories are removed."""
    out = tmp_path_factory.mktemp("image")
    built = subprocess.run([str(REPO / "scripts" / "build-image.sh"), "--out", str(out), "--portmap", request.param],
                           capture_output=True,
                           text=True, timeout=1800, env={**os.environ, "WEIR_BUILD_DIR": str(BUILD)})
    if built.returncode == 3:
        pytest.skip(f"cannot build the image here: {built.stderr.strip().splitlines()[-1:]}")
    assert built.returncode == 0, built.stdout + built.stderr
    root = Path(tempfile.mkdtemp(prefix="weir-image-root-"))
    try:
        with tarfile.open(out / "weir-image.tar") as archive:
            (manifest,) = json.load(archive.extractfile("manifest.json"))
            config = json.load(archive.extractfile(manifest["Config"]))
            for layer in manifest["Layers"]:
                layer_file = out / "layer.tar"
                with archive.extractfile(layer) as src, open(layer_file, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                subprocess.run(["tar", "-xf", str(layer_file), "-C", str(root)], check=True)
                layer_file.unlink()
        (out / "weir-image.tar").unlink()
        yield manifest, config, root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def in_image(root: Path, *cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["chroot", str(root), *cmd], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **(env or {})})


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
