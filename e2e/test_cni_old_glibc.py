"""The CNI plugin is copied onto hosts that are older than the machine it was built on (the DaemonSet's
init container installs it into the host's CNI bin dir): it must run where glibc is 2.31 (Debian
bullseye, Ubuntu 20.04) even though it is built on bookworm (2.36). It runs here inside a Debian
bullseye root filesystem made by mmdebstrap (cached by scripts/debian-rootfs.sh); only the file
system changes, so no namespace other than the chroot is involved."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from weirlab.lab import REPO, WEIR_CNI, run

OLDEST_GLIBC = "2.31"


@pytest.fixture(scope="module")
def bullseye_root():
    """An unpacked bullseye minbase tree (removed afterwards); skips when none can be made, e.g.
    without access to a Debian mirror."""
    made = subprocess.run(
        [str(REPO / "scripts" / "debian-rootfs.sh"), "bullseye"], capture_output=True, text=True, timeout=900
    )
    if made.returncode != 0:
        pytest.skip(
            "cannot make a Debian bullseye root filesystem with mmdebstrap (needs mmdebstrap and a "
            f"Debian mirror): {made.stderr.strip().splitlines()[-1:] or made.returncode}"
        )
    tarball = made.stdout.strip().splitlines()[-1]
    root = Path(tempfile.mkdtemp(prefix="weir-bullseye-"))
    try:
        run(["tar", "-xf", tarball, "-C", str(root)])
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_in_root(root: Path, plugin: Path, env: dict[str, str], stdin: str) -> subprocess.CompletedProcess:
    inside = Path("/usr/local/bin") / plugin.name
    shutil.copy2(plugin, root / inside.relative_to("/"))
    return subprocess.run(
        ["chroot", str(root), str(inside)],
        input=stdin,
        text=True,
        capture_output=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env},
        timeout=30,
    )


def test_root_really_has_the_old_glibc(bullseye_root):
    libc = list((bullseye_root / "lib" / "x86_64-linux-gnu").glob("libc-*.so"))
    assert [p.name for p in libc] == [f"libc-{OLDEST_GLIBC}.so"]


def test_plugin_needs_no_shared_library():
    headers = run(["readelf", "--program-headers", "--dynamic", "--wide", str(WEIR_CNI)]).stdout
    assert "INTERP" not in headers and "(NEEDED)" not in headers, headers


def test_version_command_runs_on_bullseye(bullseye_root):
    result = run_in_root(bullseye_root, WEIR_CNI, {"CNI_COMMAND": "VERSION"}, '{"cniVersion": "1.0.0"}')
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["cniVersion"] == "1.0.0"
    assert {"0.3.1", "0.4.0", "1.0.0"} <= set(answer["supportedVersions"])


def test_errors_are_reported_on_bullseye(bullseye_root):
    # An ADD without its environment exercises the error path (absl::Status, the CNI error JSON).
    result = run_in_root(
        bullseye_root, WEIR_CNI, {"CNI_COMMAND": "ADD"}, '{"cniVersion": "1.0.0", "name": "n", "type": "weir"}'
    )
    assert result.returncode != 0
    error = json.loads(result.stdout)
    assert isinstance(error.get("code"), int) and error.get("msg"), error
