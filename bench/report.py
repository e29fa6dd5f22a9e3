"""What every benchmark here shares: progress lines, percentiles, the root-namespace safety check,
and the closing of its plot and of its report."""

from __future__ import annotations

import json
import math
import re
import subprocess
import time
from pathlib import Path

START = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {message}", flush=True)


def percentile(samples: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    s = sorted(samples)
    k = (len(s) - 1) * p / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# ---------------------------------------------------------------------------------------------
# Root namespace safety

# What root_snapshot runs: every benchmark checks for these before it starts (a missing one would end
# the run after the lab was built, with nothing to compare).
SNAPSHOT_TOOLS = ("ip", "iptables", "ip6tables", "nft")


def root_snapshot() -> dict[str, list[str]]:
    def lines(cmd: list[str]) -> list[str]:
        proc = subprocess.run(cmd, text=True, capture_output=True)
        out = proc.stdout if proc.returncode == 0 else f"<{' '.join(cmd)} failed: {proc.stderr.strip()}>"
        return sorted(re.sub(r"\s+expires \S+", "", l).strip() for l in out.splitlines() if l.strip())

    return {
        "links": sorted(l.split(":")[1].strip() for l in lines(["ip", "-o", "link", "show"]) if ":" in l),
        "addresses": lines(["ip", "-o", "addr", "show"]),
        "routes4": lines(["ip", "-4", "route", "show", "table", "all"]),
        "routes6": lines(["ip", "-6", "route", "show", "table", "all"]),
        "nft": lines(["nft", "-s", "list", "ruleset"]),
        "iptables": lines(["iptables", "-S"]) + lines(["iptables", "-t", "nat", "-S"]),
        "ip6tables": lines(["ip6tables", "-S"]) + lines(["ip6tables", "-t", "nat", "-S"]),
    }


def root_diff(before: dict, after: dict) -> dict[str, dict[str, list[str]]]:
    diff = {}
    for key in before:
        added = sorted(set(after[key]) - set(before[key]))
        removed = sorted(set(before[key]) - set(after[key]))
        if added or removed:
            diff[key] = {"added": added, "removed": removed}
    return diff


# ---------------------------------------------------------------------------------------------
# Closing


def finish_figure(fig, path: Path, title: str, subtitle: str, top: float = 0.95) -> None:
    """Title, the run's environment line at the bottom, layout, and the PNG."""
    import matplotlib.pyplot as plt

    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fig.text(0.01, 0.005, subtitle, fontsize=8, color="#444444")
    fig.tight_layout(rect=(0, 0.03, 1, top))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def finish_report(diff: dict, left: list[str], json_path: Path, png_path: Path | None, error: str | None = None) -> int:
    """The closing lines every benchmark prints: what it left behind (nothing, or it fails), what
    went wrong, and where its results are. Returns the exit status."""
    if diff:
        print("ERROR: the root namespace changed during the run (a leak, or another process on this machine):")
        print(json.dumps(diff, indent=2))
    else:
        print("root namespace: links, addresses, routes, iptables, ip6tables and nft ruleset unchanged")
    if left:
        print(f"ERROR: lab leftovers: {left}")
    if error:
        print(f"ERROR: {error}")
    print(f"results: {json_path}")
    if png_path is not None:
        print(f"plot:    {png_path}")
    progress("done")
    return 1 if (diff or left or error) else 0
