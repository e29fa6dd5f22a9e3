"""The quick tier of upstream's [sig-network] e2e suite (scripts/conformance.sh --quick: about 45 specs
across Services, DNS, Conntrack, the Granular Checks and NetworkPolicy) against weir on the two-node
cluster, as part of every test run. The full run is scripts/conformance.sh (docs/conformance.md)."""

from __future__ import annotations

import subprocess
import sys

from e2e.kcluster.cluster import REPO


def test_sig_network_quick_tier():
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "e2e.kcluster.conformance",
            "--quick",
            "--report-dir",
            str(REPO / "build" / "conformance-quick"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    summary = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    print(res.stdout[-3000:])
    assert res.returncode == 0, f"{summary}\n{res.stdout[-4000:]}\n{res.stderr[-3000:]}"
    assert summary.startswith(tuple(f"{n} passed" for n in range(20, 100))), summary
