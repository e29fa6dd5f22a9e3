"""Every benchmark runs to its end on what scripts/setup.sh and scripts/build.sh installed (issue 11,
item 7), each in its shortest mode, its results into a temporary directory.

The numbers are not judged here (a benchmark prints them against a baseline of the same run; a test
does not time things). What fails: a crash (a bench had crashed in one of its parts for a session
before anyone ran it), a tool the setup does not install, a lab that cannot pass traffic, a packet
check of the bench's own, or a change it left in the machine's root namespace (each bench snapshots
it before and compares after, and exits non-zero on a difference)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# (module, arguments): about 4.5 minutes for all of them on the 2-CPU machine.
BENCHES = [
    ("cni_bench", ["--quick", "--adds", "5"]),
    ("reorder_probe", ["--rounds", "1", "--duration", "1"]),
    ("dataplane_bench", ["--quick"]),
    ("lb_bench", ["--quick"]),
    ("policy_bench", ["--quick"]),
    ("service_bench", ["--quick"]),
    ("control_plane_bench", ["--quick"]),
]
WRITES_RESULTS = {"cni_bench", "dataplane_bench", "lb_bench", "policy_bench", "service_bench", "control_plane_bench"}


@pytest.mark.parametrize("module,args", BENCHES, ids=[m for m, _ in BENCHES])
def test_benchmark_runs_to_its_end(module, args, tmp_path):
    out = ["--out", str(tmp_path)] if module in WRITES_RESULTS else []
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args, *out],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"{module} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    if module in WRITES_RESULTS:
        written = {p.suffix for p in tmp_path.iterdir()}
        assert {".json", ".png"} <= written, f"{module} wrote {sorted(p.name for p in tmp_path.iterdir())}"
