"""Fixtures and probes shared by the end-to-end tests.

Every test gets its own Lab (namespaces, a private bpffs per node, a temporary directory) that is
closed after the test whatever happened, and then checked for leftovers. Nothing here sends traffic
from, or changes, the machine's own network namespace: every traffic command runs inside a namespace
the lab created.

The probe helpers below (ping_failures, tcp_failures, assert_no_leaks, ...) are imported by the test
modules as `from e2e.conftest import ...`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from weirlab.lab import NETCHECK, WEIR_AGENT, WEIR_CNI, WEIRCTL, CniResult, Lab, Node, Pod, in_netns, leftovers, run

LAB_PREFIX = "e2e"
V4_CIDR = "10.244.1.0/24"
V6_CIDR = "fd00:10:244:1::/112"
NETCHECK_PORT = 8080


# ---------------------------------------------------------------------------------------------------
# Session checks


def _alive_lab_ids() -> set[str]:
    """Lab ids (prefix + pid % 100000) of processes that are running now."""
    ids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ids.add(f"{LAB_PREFIX}{int(entry) % 100000}")
    return ids


def _stale_e2e_leftovers() -> dict[str, list[str]]:
    """Namespaces, mounts and directories of e2e labs whose process is gone (a crashed run)."""
    alive = _alive_lab_ids()
    pattern = re.compile(rf"^({LAB_PREFIX}\d+)-")
    stale: dict[str, list[str]] = {"netns": [], "mounts": [], "dirs": []}
    for line in run(["ip", "netns", "list"]).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = pattern.match(name)
        if m and m.group(1) not in alive:
            stale["netns"].append(name)
    dir_pattern = re.compile(rf"/weir-({LAB_PREFIX}\d+)-[^/]+")
    for line in Path("/proc/mounts").read_text().splitlines():
        mountpoint = line.split()[1]
        m = dir_pattern.search(mountpoint)
        if m and m.group(1) not in alive:
            stale["mounts"].append(mountpoint)
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    for path in tmp.glob(f"weir-{LAB_PREFIX}*-*"):
        m = re.match(rf"^weir-({LAB_PREFIX}\d+)-", path.name)
        if m and m.group(1) not in alive and path.is_dir():
            stale["dirs"].append(str(path))
    return stale


@pytest.fixture(scope="session", autouse=True)
def e2e_environment():
    """Needs root and built binaries; removes what crashed earlier e2e runs left: namespaces (and the
    processes still inside them), bpffs mounts and directories of e2e labs whose pytest process is
    gone. A concurrently running suite is left alone."""
    if os.geteuid() != 0:
        pytest.skip("the e2e tests need root (network namespaces, bpffs, BPF programs)")
    missing = [str(p) for p in (WEIR_CNI, WEIR_AGENT, WEIRCTL) if not p.exists()]
    if missing:
        pytest.fail(f"binaries missing: {missing}; build first (scripts/build.sh, WEIR_BUILD_DIR)")
    stale = _stale_e2e_leftovers()
    for name in stale["netns"]:
        # Processes the crashed run left inside its own namespaces (agents, echo servers).
        for pid in run(["ip", "netns", "pids", name], check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        run(["ip", "netns", "delete", name], check=False)
    for mountpoint in sorted(stale["mounts"], key=len, reverse=True):
        run(["umount", mountpoint], check=False)
    for path in stale["dirs"]:
        if not any(path in line for line in Path("/proc/mounts").read_text().splitlines()):
            shutil.rmtree(path, ignore_errors=True)
    if any(stale.values()):
        print(f"\ne2e: removed leftovers of an earlier crashed run: {stale}")
    yield


# ---------------------------------------------------------------------------------------------------
# Per-test lab


@pytest.fixture
def lab():
    """A fresh Lab, always closed; the test errors at teardown if anything of it is left."""
    the_lab = Lab(LAB_PREFIX)
    try:
        yield the_lab
    finally:
        the_lab.close()
    left = leftovers(the_lab.id)
    assert left == [], f"lab {the_lab.id} left {left}"


@pytest.fixture
def node(lab) -> Node:
    """One node with a running weir-agent and dual-stack pod CIDRs."""
    return lab.add_node("node1", [V4_CIDR, V6_CIDR])


# ---------------------------------------------------------------------------------------------------
# Running the plugin


def cni_raw(node: Node, env: dict[str, str], stdin: str, plugin: Path = WEIR_CNI) -> CniResult:
    """Runs the plugin in the node's namespace with exactly `env` (plus PATH): for tests that need a
    variable to be missing rather than empty."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), **env}
    proc = subprocess.run(
        in_netns(node.netns, [str(plugin)]), input=stdin, text=True, capture_output=True, env=full_env
    )
    return CniResult(proc.returncode, proc.stdout, proc.stderr)


def assert_cni_error(result: CniResult, code: int) -> dict:
    """A failed invocation: non-zero exit and a CNI error object with `code` on stdout."""
    assert result.code != 0, f"expected failure with code {code}, got success: {result.stdout}"
    try:
        error = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not JSON: {result.stdout!r} (stderr: {result.stderr})")
    assert error.get("code") == code, f"expected code {code}, got {error} (stderr: {result.stderr})"
    assert isinstance(error.get("msg"), str) and error["msg"], error
    assert isinstance(error.get("cniVersion"), str) and error["cniVersion"], error
    return error


def pod_from_add(node: Node, name: str, result: CniResult, netns: str, container_id: str, ifname: str = "eth0") -> Pod:
    assert result.ok, f"ADD {name} failed ({result.code}): {result.stdout}{result.stderr}"
    pod = Pod(name, netns, container_id, ifname, result.json)
    node.pods[name] = pod
    return pod


def check_conf(node: Node, pod: Pod, **overrides) -> dict:
    """The config a runtime sends for CHECK: the network config plus the ADD result as prevResult."""
    return node.conf(prevResult=pod.result, **overrides)


# ---------------------------------------------------------------------------------------------------
# Looking at what the plugin left behind


def host_links(node: Node) -> list[str]:
    """weir* links in the node's namespace."""
    out = node.exec(["ip", "-o", "link", "show"]).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
    return [n for n in names if n.startswith("weir")]


def ipam_files(node: Node, network: str = "weir", data_dir: Path | None = None) -> list[str]:
    """Allocation files (and temp files) in the built-in IPAM's directory for `network`."""
    directory = (data_dir or node.data_dir) / network
    if not directory.exists():
        return []
    return sorted(
        p.name for p in directory.iterdir() if p.name != "lock" and not p.name.startswith("last_reserved_ip.")
    )


def link_pins(node: Node) -> list[str]:
    directory = node.bpf_root / "links" / "pods"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def endpoints(node: Node) -> list[str]:
    """Addresses in the pinned endpoints map, from `weirctl endpoints`."""
    lines = node.weirctl("endpoints").splitlines()
    assert lines and lines[0].split()[0] == "ADDRESS", lines
    return [line.split()[0] for line in lines[1:] if line.strip()]


def metrics(node: Node) -> dict[str, int]:
    """Packet counters from `weirctl metrics`."""
    lines = node.weirctl("metrics").splitlines()
    return {line.split()[0]: int(line.split()[1]) for line in lines[1:] if line.strip()}


def wait_until(predicate, timeout: float = 3.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def assert_no_leaks(node: Node, network: str = "weir") -> None:
    """No host links, IPAM files, pinned tcx links or endpoints left on `node`."""
    # A deleted pod namespace takes its veth pair with it asynchronously: allow the kernel a moment.
    wait_until(lambda: not host_links(node))
    assert host_links(node) == []
    assert ipam_files(node, network) == []
    assert link_pins(node) == []
    assert endpoints(node) == []


def assert_attachment_gone(node: Node, pod: Pod, network: str = "weir") -> None:
    """Nothing of one pod is left: its host link, pin, endpoints and IPAM files."""
    host_ifname = host_ifname_of(pod)
    wait_until(lambda: host_ifname not in host_links(node))
    assert host_ifname not in host_links(node)
    assert host_ifname not in link_pins(node)
    held = set(ipam_files(node, network))
    present = set(endpoints(node))
    for address in pod.addresses():
        assert address not in held, f"{pod.name}: IPAM file for {address} leaked"
        assert address not in present, f"{pod.name}: endpoint {address} leaked"


def host_ifname_of(pod: Pod) -> str:
    """The host end's name as reported in the pod's ADD result."""
    names = [
        i["name"] for i in pod.result["interfaces"] if not i.get("sandbox") and i["name"].startswith("weir")
    ]  # chained plugins add theirs
    assert len(names) == 1, pod.result
    return names[0]


# ---------------------------------------------------------------------------------------------------
# Traffic, always inside pod namespaces

_PING_LOOP = (
    'for t in "$@"; do ping -n -q -c1 -W1 "$t" >/dev/null 2>&1 || '
    'ping -n -q -c1 -W1 "$t" >/dev/null 2>&1 || echo "$t"; done'
)


def ping_failures(pod: Pod, targets: list[str]) -> list[str]:
    """Targets `pod` cannot ping (one retry each), with one process spawn for all of them."""
    if not targets:
        return []
    out = pod.exec(["sh", "-c", _PING_LOOP, "ping-loop", *targets], timeout=120)
    return out.stdout.split()


def ping_matrix(pods: list[Pod], families=(4, 6), workers: int = 4) -> dict[str, list[str]]:
    """Every pod pings every other pod's addresses; returns {source: [unreachable targets]} for
    sources that missed any."""

    def one(src: Pod):
        targets = [a for p in pods if p is not src for f in families for a in p.addresses(f)]
        return src.name, ping_failures(src, targets)

    with ThreadPoolExecutor(workers) as pool:
        return {name: failed for name, failed in pool.map(one, pods) if failed}


def start_servers(lab: Lab, pods: list[Pod], port: int = NETCHECK_PORT) -> list[subprocess.Popen]:
    """A netcheck TCP/UDP echo server in each pod (killed by lab.close()); waits until all listen."""
    procs = [
        lab.spawn(
            in_netns(p.netns, ["python3", str(NETCHECK), "serve", str(port)]),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for p in pods
    ]
    for pod, proc in zip(pods, procs):
        line = proc.stdout.readline()
        assert line.strip() == "ready", f"netcheck server in {pod.name} did not start: {line!r}"
    return procs


def netcheck(pod: Pod, proto: str, targets: list[str], port: int = NETCHECK_PORT) -> dict[str, str]:
    out = pod.exec(["python3", str(NETCHECK), proto, str(port), *targets], timeout=120)
    return json.loads(out.stdout)


def tcp_matrix(pods: list[Pod], port: int = NETCHECK_PORT, workers: int = 4) -> dict[str, dict]:
    """One netcheck client per source pod covering all other pods' addresses over TCP; returns the
    failed (or wrongly answered) targets per source."""

    def one(src: Pod):
        targets = [a for p in pods if p is not src for a in p.addresses()]
        replies = netcheck(src, "tcp", targets, port)
        bad = {t: r for t, r in replies.items() if not r.startswith("ping from ")}
        # The reply names the address the server saw: weir does no NAT between pods.
        for target, reply in replies.items():
            if target not in bad and reply.split(" from ")[1] not in src.addresses():
                bad[target] = reply
        return src.name, bad

    with ThreadPoolExecutor(workers) as pool:
        return {name: bad for name, bad in pool.map(one, pods) if bad}
