#!/usr/bin/env python3
"""Fails when a file includes a layer above its own. The layers, lowest first:

    lib  (shared userspace: addresses, netlink, maps, the loader)
    cni  (the CNI plugin's own code; the agent reuses its config and IPAM)
    proxy/k8s     Kubernetes objects, decoding, the API client
    proxy/lb      translation: objects in, desired state out (pure)
    proxy/sync    the reconciler: desired state in, map writes out
    proxy/source  where objects come from: the API server, a manifest directory
    proxy/policy  NetworkPolicy: identities and per-endpoint allowed sets (pure)
    proxy/policy_sync  the BPF PolicyWriter: allowed sets in, policy map writes out
    proxy/agent   the agent's parts, and proxy/agent_main.cc
    proxy/weirctl the CLI

A layer may include its own folder and any layer below it, never one above it or a sibling that is
not below it (weirctl reads maps and sync's encodings, never the agent's internals)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# folder -> the folders (of other layers) its files may include
ALLOWED = {
    "lib": set(),
    "cni": {"lib"},
    "proxy/k8s": {"lib"},
    "proxy/lb": {"lib", "proxy/k8s"},
    "proxy/sync": {"lib", "proxy/lb"},
    "proxy/source": {"lib", "proxy/k8s"},
    "proxy/policy": {"lib", "proxy/k8s"},
    "proxy/policy_sync": {"lib", "proxy/k8s", "proxy/policy"},
    "proxy/agent": {
        "lib",
        "cni",
        "proxy/k8s",
        "proxy/lb",
        "proxy/sync",
        "proxy/source",
        "proxy/policy",
        "proxy/policy_sync",
    },
    "proxy/weirctl": {"lib", "proxy/lb", "proxy/sync"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(path: str) -> str | None:
    for folder in sorted(ALLOWED, key=len, reverse=True):
        if path.startswith(folder + "/"):
            return folder
    if path == "proxy/agent_main.cc":
        return "proxy/agent"
    return None


def violations() -> list[str]:
    found = []
    for file in sorted(REPO.glob("**/*")):
        rel = file.relative_to(REPO).as_posix()
        if file.suffix not in (".h", ".cc") or rel.startswith("build"):
            continue
        own = layer_of(rel)
        if own is None:
            continue
        for included in INCLUDE.findall(file.read_text()):
            target = layer_of(included)
            if target is None or target == own or target in ALLOWED[own]:
                continue
            found.append(f"{rel}: includes {included} ({own} may not include {target})")
    return found


if __name__ == "__main__":
    bad = violations()
    print("\n".join(bad) if bad else "layers: no upward include")
    sys.exit(1 if bad else 0)
