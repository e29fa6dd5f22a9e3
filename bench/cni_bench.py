"""weir against Debian's ptp and bridge CNI plugins, measured in the same run on the same lab.

weir is measured with each pod device mode: weir-veth, and weir-netkit when the kernel has netkit
devices (Linux 6.7+ built with CONFIG_NETKIT; otherwise its rows say n/a). `--compare-build DIR` adds
weir-base, another build's agent and plugin with veth pods, for an A/B of a datapath change in the
same run. One lab node (a network namespace) per subject so that they do not interfere; weir-agent
runs on the weir nodes only. For each subject:

  1. CNI ADD latency, sequential and N-way parallel, then DEL of every pod. The pod namespaces are
     made beforehand: only the plugin's exec is timed (the nsenter wrapper is the same for all).
  2. Same-node pod-to-pod traffic between two pods: qperf tcp_bw / tcp_lat / udp_lat and iperf3 with
     1 and 4 streams. Tests are interleaved across plugins and repeated in rounds, so that drift of
     the machine hits every plugin alike; the median over rounds is reported.

  3. Pod bandwidth limits (BANDWIDTH_BPS each way): a limited pod sending to, and receiving from, an
     unlimited one, weir enforcing runtimeConfig.bandwidth natively and ptp with Debian's `bandwidth`
     plugin chained after it (the reference); iperf3, one stream, the median over rounds.

Prints a table against the targets (ratios to ptp: ADD p50 <= 1.0x, throughput >= 1.0x, TCP
retransmits <= 1.0x, tcp_lat <= 1.0x with veth and <= 0.8x with netkit) and writes JSON and a PNG
into bench/results/. All traffic stays between namespaces the lab made; the
root namespace is snapshotted before and compared after.

    sudo python3 -m bench.cni_bench [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import SNAPSHOT_TOOLS, finish_figure, finish_report, percentile, progress, root_diff, root_snapshot
from weirlab.lab import BUILD, DEBIAN_CNI_DIR, WEIR_AGENT, WEIR_CNI, WEIRCTL, Lab, Node, in_netns, leftovers, run
from weirlab.netkit import kernel_has_netkit

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
# Every subject the report knows, in table order; a run measures those it can (SUBJECTS).
ALL_SUBJECTS = ("weir-veth", "weir-netkit", "weir-base", "ptp", "bridge")
WEIR_SUBJECTS = ("weir-veth", "weir-netkit", "weir-base")
SUBJECTS: list[str] = []
BASELINE = "ptp"
QPERF_PORT = 19765
IPERF_PORT = 5201

# ---------------------------------------------------------------------------------------------
# The plugins under test


@dataclass
class Subject:
    """One plugin on its own lab node."""

    name: str
    node: Node
    plugin: Path
    base_conf: dict
    traffic_pods: list[tuple[str, str]] = field(default_factory=list)  # (netns, ipv4)

    def add(self, container_id: str, netns: str) -> tuple[float, dict]:
        start = time.perf_counter()
        result = self.node.cni("ADD", container_id, netns, "eth0", self.base_conf, plugin=self.plugin)
        elapsed = time.perf_counter() - start
        if not result.ok:
            raise RuntimeError(
                f"{self.name}: ADD {container_id} failed ({result.code}): " f"{result.stdout}{result.stderr}"
            )
        return elapsed, result.json

    def delete(self, container_id: str, netns: str, prev_result: dict) -> float:
        # As libcni does: DEL gets the cached ADD result as prevResult.
        conf = dict(self.base_conf, prevResult=prev_result)
        start = time.perf_counter()
        result = self.node.cni("DEL", container_id, netns, "eth0", conf, plugin=self.plugin)
        elapsed = time.perf_counter() - start
        if not result.ok:
            raise RuntimeError(
                f"{self.name}: DEL {container_id} failed ({result.code}): " f"{result.stdout}{result.stderr}"
            )
        return elapsed

    def host_veths(self) -> int:
        """Pods' host-side links (veth or netkit) in the node's namespace: all but lo and the bridge."""
        out = self.node.exec(["ip", "-o", "link", "show"]).stdout
        names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
        return sum(1 for name in names if name not in ("lo", "benchbr0"))


def host_local(node: Node, subnet: str) -> dict:
    return {
        "type": "host-local",
        "ranges": [[{"subnet": subnet}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": str(node.dir / "host-local"),
    }


def make_subjects(lab: Lab, compare_build: Path | None) -> dict[str, Subject]:
    subjects: dict[str, Subject] = {}
    weir_nodes = [("weir-veth", "veth", "10.244.1.0/24", WEIR_AGENT, WEIR_CNI)]
    if kernel_has_netkit():
        weir_nodes.append(("weir-netkit", "netkit", "10.244.2.0/24", WEIR_AGENT, WEIR_CNI))
    if compare_build:
        weir_nodes.append(
            (
                "weir-base",
                "veth",
                "10.244.3.0/24",
                compare_build / "proxy" / "weir-agent",
                compare_build / "cni" / "weir",
            )
        )
    for name, mode, cidr, agent, plugin in weir_nodes:
        # Another build's plugin may not know "deviceMode": veth is its default anyway.
        node = lab.add_node(name, [cidr], device_mode=mode if mode != "veth" else None, agent_binary=agent)
        subjects[name] = Subject(name, node, plugin, node.conf())
    ptp_node = lab.add_node("ptp", ["10.250.0.0/24"], start_agent=False)
    bridge_node = lab.add_node("bridge", ["10.251.0.0/24"], start_agent=False)
    subjects["ptp"] = Subject(
        "ptp",
        ptp_node,
        DEBIAN_CNI_DIR / "ptp",
        {
            "cniVersion": "1.0.0",
            "name": "bench-ptp",
            "type": "ptp",
            "ipMasq": False,
            "mtu": 1500,
            "ipam": host_local(ptp_node, "10.250.0.0/24"),
        },
    )
    subjects["bridge"] = Subject(
        "bridge",
        bridge_node,
        DEBIAN_CNI_DIR / "bridge",
        {
            "cniVersion": "1.0.0",
            "name": "bench-bridge",
            "type": "bridge",
            "bridge": "benchbr0",
            "isGateway": True,
            "ipMasq": False,
            "mtu": 1500,
            "ipam": host_local(bridge_node, "10.251.0.0/24"),
        },
    )
    return subjects


def drop_netns(lab: Lab, names: list[str]) -> None:
    for name in names:
        run(["ip", "netns", "delete", name], check=False)
        if name in lab.netns:
            lab.netns.remove(name)


# ---------------------------------------------------------------------------------------------
# 1. CNI ADD / DEL latency


def bench_add(lab: Lab, subject: Subject, phase: str, count: int, workers: int) -> dict:
    """ADDs `count` pods (with `workers` in flight), then DELs all of them sequentially."""
    netns = [lab.make_netns(f"{subject.name}-{phase}{i}") for i in range(count)]
    ids = [f"{lab.id}-{subject.name}-{phase}-{i}" for i in range(count)]

    def add(i: int) -> tuple[float, dict]:
        return subject.add(ids[i], netns[i])

    wall_start = time.perf_counter()
    if workers <= 1:
        added = [add(i) for i in range(count)]
    else:
        with ThreadPoolExecutor(workers) as pool:
            added = list(pool.map(add, range(count)))
    wall = time.perf_counter() - wall_start
    veths_after_add = subject.host_veths()
    dels = [subject.delete(ids[i], netns[i], added[i][1]) for i in range(count)]
    veths_after_del = subject.host_veths()
    drop_netns(lab, netns)
    adds = [a[0] for a in added]
    return {
        "count": count,
        "workers": workers,
        "wall_s": wall,
        "add_s": adds,
        "del_s": dels,
        "add_p50_ms": percentile(adds, 50) * 1e3,
        "add_p99_ms": percentile(adds, 99) * 1e3,
        "del_p50_ms": percentile(dels, 50) * 1e3,
        "del_p99_ms": percentile(dels, 99) * 1e3,
        "adds_per_s": count / wall,
        "host_veths_after_add": veths_after_add,
        "host_veths_after_del": veths_after_del,
    }


def warm_up(lab: Lab, subject: Subject, count: int = 3) -> None:
    """Uncounted ADD/DEL so that every plugin starts with warm page cache and a created bridge."""
    netns = [lab.make_netns(f"{subject.name}-warm{i}") for i in range(count)]
    for i, ns in enumerate(netns):
        cid = f"{lab.id}-{subject.name}-warm-{i}"
        _, result = subject.add(cid, ns)
        subject.delete(cid, ns, result)
    drop_netns(lab, netns)


# ---------------------------------------------------------------------------------------------
# 2. Same-node pod-to-pod traffic


def wait_listening(netns: str, ports: list[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        out = run(in_netns(netns, ["ss", "-Hltn"])).stdout
        listening = {int(m) for m in re.findall(r":(\d+)\s", out)}
        if all(p in listening for p in ports):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"servers in {netns} not listening on {ports}:\n{out}")
        time.sleep(0.05)


# Client and server pinned to fixed CPUs (the same for every plugin): on a small machine, whether the two
# land on one CPU or two changes latency by 2-3x, which would otherwise decide the comparison.
PIN = {"client": [], "server": []}


def setup_traffic(lab: Lab, subject: Subject) -> None:
    for role in ("a", "b"):
        ns = lab.make_netns(f"{subject.name}-pod{role}")
        _, result = subject.add(f"{lab.id}-{subject.name}-pod{role}", ns)
        ipv4 = next(ip["address"].split("/")[0] for ip in result["ips"] if ":" not in ip["address"])
        subject.traffic_pods.append((ns, ipv4))
    (a_ns, _), (b_ns, b_ip) = subject.traffic_pods
    lab.spawn(
        in_netns(b_ns, [*PIN["server"], "qperf", "--listen_port", str(QPERF_PORT)]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lab.spawn(
        in_netns(b_ns, [*PIN["server"], "iperf3", "-s", "-p", str(IPERF_PORT)]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_listening(b_ns, [QPERF_PORT, IPERF_PORT])
    ping = run(in_netns(a_ns, ["ping", "-c", "3", "-i", "0.2", "-W", "2", b_ip]), check=False)
    if ping.returncode != 0:
        raise RuntimeError(f"{subject.name}: pod a cannot reach pod b ({b_ip}):\n{ping.stdout}{ping.stderr}")


QPERF_UNITS = {
    "ns": 1e-3,
    "us": 1.0,
    "ms": 1e3,
    "sec": 1e6,  # -> microseconds
    "B/sec": 8e-9,
    "KB/sec": 8e-6,
    "MB/sec": 8e-3,
    "GB/sec": 8.0,
}  # -> Gbit/s


def run_qperf(subject: Subject, test: str, duration: int) -> float:
    (a_ns, _), (_, b_ip) = subject.traffic_pods
    out = run(
        in_netns(a_ns, [*PIN["client"], "qperf", "--listen_port", str(QPERF_PORT), "-t", str(duration), b_ip, test]),
        timeout=duration * 3 + 30,
    ).stdout
    match = re.search(r"(?:latency|bw)\s*=\s*([\d.]+)\s*(\S+)", out)
    if not match or match.group(2) not in QPERF_UNITS:
        raise RuntimeError(f"{subject.name}: cannot parse qperf {test} output:\n{out}")
    return float(match.group(1)) * QPERF_UNITS[match.group(2)]


def softnet_drops() -> int:
    """Packets dropped by the per-CPU backlog queues, machine-wide (column 2 of softnet_stat)."""
    return sum(int(line.split()[1], 16) for line in Path("/proc/net/softnet_stat").read_text().splitlines())


# TCP counters that tell why a sender retransmits: its loss probes and timeouts, what the receiver
# reported (DSACKs: the segment had arrived), reordering it detected, and the receiver's own drops.
TCP_COUNTERS = {
    "TcpExtTCPLossProbes": "sender",
    "TcpExtTCPSpuriousRTOs": "sender",
    "TcpExtTCPDSACKRecv": "sender",
    "TcpExtTCPSACKReorder": "sender",
    "TcpExtTCPFastRetrans": "sender",
    "TcpExtTCPOFOQueue": "receiver",
    "TcpExtTCPRcvQDrop": "receiver",
    "TcpExtTCPBacklogDrop": "receiver",
    "TcpExtTCPOFODrop": "receiver",
}


def tcp_counters(netns: str) -> dict[str, int]:
    """The namespace's TCP counters of TCP_COUNTERS (nstat, absolute, history left alone)."""
    out = run(in_netns(netns, ["nstat", "-asz"]), check=False).stdout
    values = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] in TCP_COUNTERS:
            values[fields[0]] = int(fields[1])
    return values


def run_iperf3(
    subject: Subject,
    streams: int,
    duration: int,
    port: int = IPERF_PORT,
    wrap: Callable[[list[str]], list[str]] = lambda command: command,
) -> dict:
    """One iperf3 client run from pod a to pod b's server on `port`; `wrap` puts a command (a
    profiler) around the client."""
    (a_ns, _), (b_ns, b_ip) = subject.traffic_pods
    drops_before = softnet_drops()
    counters_before = {"sender": tcp_counters(a_ns), "receiver": tcp_counters(b_ns)}
    proc = run(
        wrap(
            in_netns(
                a_ns,
                [
                    *PIN["client"],
                    "iperf3",
                    "-J",
                    "-c",
                    b_ip,
                    "-p",
                    str(port),
                    "-t",
                    str(duration),
                    "-O",
                    "1",
                    "-P",
                    str(streams),
                ],
            ),
        ),
        check=False,
        timeout=duration * 3 + 30,
    )
    report = json.loads(proc.stdout) if proc.stdout.strip() else {}
    if proc.returncode != 0 or "error" in report:
        raise RuntimeError(f"{subject.name}: iperf3 -P {streams} failed: {report.get('error', proc.stderr)}")
    end = report["end"]
    counters_after = {"sender": tcp_counters(a_ns), "receiver": tcp_counters(b_ns)}
    return {
        "gbps": end["sum_received"]["bits_per_second"] / 1e9,
        "retransmits": end["sum_sent"].get("retransmits", 0),
        "softnet_drops": softnet_drops() - drops_before,
        "tcp_counters": {
            name: counters_after[side].get(name, 0) - counters_before[side].get(name, 0)
            for name, side in TCP_COUNTERS.items()
        },
    }


TRAFFIC_TESTS = ("tcp_lat", "udp_lat", "tcp_bw", "iperf3_1", "iperf3_4")

# ---------------------------------------------------------------------------------------------
# 3. Pod bandwidth limits

BANDWIDTH_BPS = 20_000_000
BANDWIDTH_WEIR = "weir-veth"  # the subject every run has (netkit needs a kernel that has it)
BANDWIDTH_PLUGINS = (BANDWIDTH_WEIR, "ptp")  # ptp: with the bandwidth plugin chained
BANDWIDTH_LIMITS = {
    "ingressRate": BANDWIDTH_BPS,
    "ingressBurst": 2**32 - 1,  # what containerd sends for the pod annotations
    "egressRate": BANDWIDTH_BPS,
    "egressBurst": 2**32 - 1,
}
BANDWIDTH_PORT = 5202


def add_limited_pod(lab: Lab, subject: Subject) -> tuple[str, str]:
    """A pod limited to BANDWIDTH_BPS each way, with an iperf3 server: weir reads runtimeConfig.bandwidth
    itself; for ptp the bandwidth plugin runs after it with ptp's result, as libcni chains them."""
    ns = lab.make_netns(f"{subject.name}-limited")
    cid = f"{lab.id}-{subject.name}-limited"
    runtime_config = {"runtimeConfig": {"bandwidth": BANDWIDTH_LIMITS}}
    conf = dict(subject.base_conf, **(runtime_config if subject.name == BANDWIDTH_WEIR else {}))
    added = subject.node.cni("ADD", cid, ns, "eth0", conf, plugin=subject.plugin)
    if not added.ok:
        raise RuntimeError(f"{subject.name}: ADD of the limited pod failed: {added.stdout}{added.stderr}")
    if subject.name != BANDWIDTH_WEIR:
        shaper = {
            "cniVersion": subject.base_conf["cniVersion"],
            "name": subject.base_conf["name"],
            "type": "bandwidth",
            "prevResult": added.json,
            **runtime_config,
        }
        shaped = subject.node.cni("ADD", cid, ns, "eth0", shaper, plugin=DEBIAN_CNI_DIR / "bandwidth")
        if not shaped.ok:
            raise RuntimeError(f"{subject.name}: bandwidth plugin ADD failed: {shaped.stdout}{shaped.stderr}")
    ipv4 = next(ip["address"].split("/")[0] for ip in added.json["ips"] if ":" not in ip["address"])
    lab.spawn(
        in_netns(ns, [*PIN["server"], "iperf3", "-s", "-p", str(BANDWIDTH_PORT)]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_listening(ns, [BANDWIDTH_PORT])
    return ns, ipv4


def iperf3_bps(source_ns: str, dest_ip: str, port: int, duration: int) -> float:
    proc = run(
        in_netns(
            source_ns, [*PIN["client"], "iperf3", "-J", "-c", dest_ip, "-p", str(port), "-t", str(duration), "-O", "1"]
        ),
        check=False,
        timeout=duration * 3 + 30,
    )
    report = json.loads(proc.stdout) if proc.stdout.strip() else {}
    if proc.returncode != 0 or "error" in report:
        raise RuntimeError(f"iperf3 to {dest_ip}:{port} failed: {report.get('error', proc.stderr)}")
    return report["end"]["sum_received"]["bits_per_second"]


def bench_bandwidth(lab: Lab, subjects: dict[str, Subject], rounds: int, duration: int) -> dict:
    """Out of the limited pod (to traffic pod b) and into it (from traffic pod a), in Mbit/s."""
    limited = {name: add_limited_pod(lab, subjects[name]) for name in BANDWIDTH_PLUGINS}
    raw: dict[str, dict[str, list]] = {p: {"out": [], "in": []} for p in BANDWIDTH_PLUGINS}
    for r in range(rounds):
        for name in BANDWIDTH_PLUGINS:
            (a_ns, _), (_, b_ip) = subjects[name].traffic_pods
            limited_ns, limited_ip = limited[name]
            progress(f"bandwidth round {r + 1}/{rounds}: {name} ({2 * duration}s)")
            raw[name]["out"].append(iperf3_bps(limited_ns, b_ip, IPERF_PORT, duration) / 1e6)
            raw[name]["in"].append(iperf3_bps(a_ns, limited_ip, BANDWIDTH_PORT, duration) / 1e6)
    return {
        "limit_mbps": BANDWIDTH_BPS / 1e6,
        "raw": raw,
        "median": {p: {d: statistics.median(v) for d, v in dirs.items()} for p, dirs in raw.items()},
    }


def format_tcp_counters(traffic: dict, duration: int) -> str:
    """Per subject, the median per second over rounds of each TCP counter during iperf3."""
    counters = traffic["tcp_counters"]
    lines = ["TCP counters during iperf3, median per second over rounds (sender's / receiver's namespace)"]
    for test in ("iperf3_1", "iperf3_4"):
        lines.append(f"  {test}: " + " ".join(f"{n.removeprefix('TcpExtTCP')}" for n in TCP_COUNTERS))
        for name, tests in counters.items():
            rounds = tests[test]
            medians = [statistics.median(r[n] for r in rounds) / duration if rounds else 0 for n in TCP_COUNTERS]
            lines.append(f"    {name:<12} " + " ".join(f"{m:,.0f}" for m in medians))
    return "\n".join(lines)


def format_bandwidth(bandwidth: dict) -> str:
    limit = bandwidth["limit_mbps"]
    lines = [f"pod bandwidth limit {limit:.0f} Mbit/s each way (iperf3, 1 stream, Mbit/s; target: within 20%)"]
    for direction, label in (("out", "out of the limited pod"), ("in", "into the limited pod")):
        weir = bandwidth["median"][BANDWIDTH_WEIR][direction]
        ptp = bandwidth["median"]["ptp"][direction]
        status = "met" if abs(weir - limit) <= 0.2 * limit else "NOT MET"
        lines.append(
            f"  {label:<24} weir {weir:6.2f}  ptp+bandwidth {ptp:6.2f}  weir/limit {weir / limit:.2f}x  {status}"
        )
    return "\n".join(lines)


def bench_traffic(subjects: dict[str, Subject], rounds: int, duration: int) -> dict:
    raw: dict[str, dict[str, list]] = {p: {t: [] for t in TRAFFIC_TESTS} for p in subjects}
    retransmits: dict[str, dict[str, list]] = {p: {"iperf3_1": [], "iperf3_4": []} for p in subjects}
    backlog_drops: dict[str, dict[str, list]] = {p: {"iperf3_1": [], "iperf3_4": []} for p in subjects}
    counters: dict[str, dict[str, list]] = {p: {"iperf3_1": [], "iperf3_4": []} for p in subjects}
    for r in range(rounds):
        names = list(subjects)
        order = names[r % len(names) :] + names[: r % len(names)]  # rotated each round: no plugin always first
        for test in TRAFFIC_TESTS:
            for name in order:
                subject = subjects[name]
                progress(f"traffic round {r + 1}/{rounds}: {test:<8} {name} ({duration}s)")
                if test.startswith("iperf3"):
                    res = run_iperf3(subject, int(test.split("_")[1]), duration)
                    raw[name][test].append(res["gbps"])
                    retransmits[name][test].append(res["retransmits"])
                    backlog_drops[name][test].append(res["softnet_drops"])
                    counters[name][test].append(res["tcp_counters"])
                else:
                    raw[name][test].append(run_qperf(subject, test, duration))
    return {
        "raw": raw,
        "retransmits": retransmits,
        "softnet_drops": backlog_drops,
        "tcp_counters": counters,
        "retransmits_per_s": {
            p: {t: statistics.median(v) / duration for t, v in tests.items()} for p, tests in retransmits.items()
        },
        "median": {p: {t: statistics.median(v) for t, v in tests.items()} for p, tests in raw.items()},
    }


# ---------------------------------------------------------------------------------------------
# Report

# (key, label, unit, lower_is_better, target ratio to ptp per weir subject; absent: information only).
# weir-base is another build, measured for comparison only: it has no targets.
SAME = {"weir-veth": 1.0, "weir-netkit": 1.0}
METRICS = [
    ("add_seq_p50", "ADD p50, sequential", "ms", True, SAME),
    ("add_seq_p99", "ADD p99, sequential", "ms", True, {}),
    ("add_par_p50", "ADD p50, {w} in parallel", "ms", True, SAME),
    ("add_par_p99", "ADD p99, {w} in parallel", "ms", True, {}),
    ("del_seq_p50", "DEL p50, sequential", "ms", True, {}),
    ("tcp_lat", "qperf tcp_lat", "us", True, {"weir-veth": 1.0, "weir-netkit": 0.8}),
    ("udp_lat", "qperf udp_lat", "us", True, {}),
    ("tcp_bw", "qperf tcp_bw", "Gbit/s", False, SAME),
    ("iperf3_1", "iperf3, 1 stream", "Gbit/s", False, SAME),
    ("iperf3_4", "iperf3, 4 streams", "Gbit/s", False, SAME),
    ("retr_1", "iperf3 retransmits, 1 stream", "segs/s", True, SAME),
    ("retr_4", "iperf3 retransmits, 4 streams", "segs/s", True, SAME),
]
TABLE_ONLY = {"retr_1", "retr_4"}


def ratio_of(value: float, base: float) -> float | None:
    if base:
        return value / base
    return 1.0 if value == 0 else None  # no retransmits at all, like ptp: on par


def summarize(adds: dict, traffic: dict, workers: int) -> list[dict]:
    values: dict[str, dict[str, float]] = {}
    for p in SUBJECTS:
        values[p] = {
            "add_seq_p50": adds[p]["seq"]["add_p50_ms"],
            "add_seq_p99": adds[p]["seq"]["add_p99_ms"],
            "add_par_p50": adds[p]["par"]["add_p50_ms"],
            "add_par_p99": adds[p]["par"]["add_p99_ms"],
            "del_seq_p50": adds[p]["seq"]["del_p50_ms"],
            **traffic["median"][p],
            "retr_1": traffic["retransmits_per_s"][p]["iperf3_1"],
            "retr_4": traffic["retransmits_per_s"][p]["iperf3_4"],
        }
    rows = []
    for key, label, unit, lower, targets in METRICS:
        row = {
            "key": key,
            "label": label.format(w=workers),
            "unit": unit,
            "lower_is_better": lower,
            "values": {p: values[p][key] for p in SUBJECTS},
            "targets": {p: t for p, t in targets.items() if p in SUBJECTS},
            "ratios": {},
            "met": {},
        }
        base = row["values"][BASELINE]
        for p in SUBJECTS:
            if p in WEIR_SUBJECTS:
                row["ratios"][p] = ratio_of(row["values"][p], base)
        for p, target in row["targets"].items():
            r = row["ratios"][p]
            row["met"][p] = r is not None and (r <= target if lower else r >= target)
        rows.append(row)
    return rows


def number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def format_table(rows: list[dict]) -> str:
    weirs = [p for p in WEIR_SUBJECTS if p in SUBJECTS]
    header = ["metric", "unit", *SUBJECTS, *(f"{p}/ptp" for p in weirs), "targets"]
    body = []
    for row in rows:
        cells = []
        for p in weirs:
            r = row["ratios"][p]
            mark = "" if p not in row["met"] else (" ok" if row["met"][p] else " NOT MET")
            cells.append(("-" if r is None else f"{r:.3f}x") + mark)
        targets = ", ".join(
            f"{p.removeprefix('weir-')} {'<=' if row['lower_is_better'] else '>='} {t:.1f}x"
            for p, t in row["targets"].items()
        )
        body.append(
            [row["label"], row["unit"], *(number(row["values"][p]) for p in SUBJECTS), *cells, targets or "(info)"]
        )
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = lambda r: " | ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    lines = [fmt(header), "-+-".join("-" * w for w in widths), *map(fmt, body)]
    missing = [p for p in ALL_SUBJECTS if p not in SUBJECTS and p != "weir-base"]
    if missing:
        lines.append(f"n/a: {', '.join(missing)} (this kernel has no netkit devices: Linux 6.7+ with CONFIG_NETKIT)")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    palette = {
        "weir-veth": "#2a7ab9",
        "weir-netkit": "#1b9e77",
        "weir-base": "#8fb9dc",
        "ptp": "#9a9a9a",
        "bridge": "#e39b3b",
    }
    rows = [r for r in rows if r["key"] not in TABLE_ONLY]
    groups = [
        ("lower is better", [r for r in rows if r["lower_is_better"]]),
        ("higher is better", [r for r in rows if not r["lower_is_better"]]),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(16, 6.5), gridspec_kw={"width_ratios": [7, 3.4]})
    width = 0.8 / len(SUBJECTS)
    offset = (len(SUBJECTS) - 1) / 2
    for ax, (title, group) in zip(axes, groups):
        for i, subject in enumerate(SUBJECTS):
            xs = [j + (i - offset) * width for j in range(len(group))]
            rel = [r["values"][subject] / r["values"][BASELINE] if r["values"][BASELINE] else 0 for r in group]
            bars = ax.bar(xs, rel, width, label=subject, color=palette[subject], edgecolor="black", linewidth=0.4)
            for bar, r in zip(bars, group):
                ax.annotate(
                    number(r["values"][subject]),
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    rotation=90,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
        labelled = False
        for j, r in enumerate(group):
            for subject, target in r["targets"].items():
                i = SUBJECTS.index(subject)
                x = j + (i - offset) * width
                ax.hlines(
                    target,
                    x - width / 2,
                    x + width / 2,
                    colors="red",
                    linestyles="dashed",
                    linewidth=1.4,
                    label=None if labelled else "target",
                )
                labelled = True
            if r["met"]:
                all_met = all(r["met"].values())
                ax.annotate(
                    "met" if all_met else "NOT MET",
                    (j, 0),
                    xytext=(0, -3),
                    textcoords="offset points",
                    ha="center",
                    va="top",
                    fontsize=8,
                    color="green" if all_met else "red",
                    fontweight="bold",
                )
        ax.axhline(1.0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(group)))
        ax.set_xticklabels([f"{r['label'].replace(', ', chr(10))}\n[{r['unit']}]" for r in group], fontsize=8)
        ax.tick_params(axis="x", pad=14)
        ax.set_ylabel("relative to ptp (ptp = 1.0)")
        ax.set_title(title)
        top = max(r["values"][p] / r["values"][BASELINE] for r in group for p in SUBJECTS if r["values"][BASELINE])
        ax.set_ylim(0, max(1.3, top * 1.25))
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    handles, labels = axes[0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    fig.legend(seen.values(), seen.keys(), loc="upper right", ncol=6, fontsize=9)
    finish_figure(
        fig,
        path,
        f"{' vs '.join(SUBJECTS)} (same-node pods, same lab, same run); bar labels are absolute values",
        subtitle,
        top=0.93,
    )


def environment(args: argparse.Namespace) -> dict:
    def first_line(cmd: list[str]) -> str:
        proc = subprocess.run(cmd, text=True, capture_output=True)
        return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr).strip() else ""

    pkg = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins"], text=True, capture_output=True
    ).stdout.strip()
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu_model": next(
            (
                l.split(":", 1)[1].strip()
                for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")
            ),
            "",
        ),
        "build_dir": str(BUILD),
        "containernetworking_plugins": pkg,
        "qperf": first_line(["qperf", "--version"]),
        "iperf3": first_line(["iperf3", "--version"]),
        "args": vars(args),
        "loadavg_start": os.getloadavg(),
    }


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer ADDs, one short round of traffic")
    parser.add_argument("--adds", type=int, help="ADDs per phase (default 50, quick 20)")
    parser.add_argument("--parallel", type=int, default=10, help="ADDs in flight in the parallel phase")
    parser.add_argument("--duration", type=int, help="seconds per traffic test (default 3, quick 2)")
    parser.add_argument("--rounds", type=int, help="rounds of traffic tests (default 3, quick 1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin traffic client to CPU 0 and server to CPU 1")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for JSON and PNG")
    parser.add_argument(
        "--compare-build",
        type=Path,
        help="another build directory (e.g. main's): its agent and plugin are measured too, as weir-base",
    )
    args = parser.parse_args()
    args.adds = args.adds or (20 if args.quick else 50)
    args.duration = args.duration or (2 if args.quick else 3)
    args.rounds = args.rounds or (1 if args.quick else 3)

    if os.geteuid() != 0:
        print("needs root (network namespaces, bpffs, BPF programs)", file=sys.stderr)
        return 2
    missing = [
        str(p)
        for p in (
            WEIR_CNI,
            WEIR_AGENT,
            WEIRCTL,
            DEBIAN_CNI_DIR / "ptp",
            DEBIAN_CNI_DIR / "bridge",
            DEBIAN_CNI_DIR / "host-local",
            DEBIAN_CNI_DIR / "bandwidth",
        )
        if not p.exists()
    ]
    if args.compare_build:
        missing += [
            str(p)
            for p in (args.compare_build / "proxy" / "weir-agent", args.compare_build / "cni" / "weir")
            if not p.exists()
        ]
    tools = ("qperf", "iperf3", "nsenter", "ss", "unshare", "taskset", *SNAPSHOT_TOOLS)
    missing += [t for t in tools if shutil.which(t) is None]
    if missing:
        print(
            f"missing: {', '.join(missing)} (build with scripts/build.sh, set WEIR_BUILD_DIR for another "
            "build dir; scripts/setup.sh installs the rest)",
            file=sys.stderr,
        )
        return 2

    if not args.no_pin and (os.cpu_count() or 1) >= 2:
        PIN["client"], PIN["server"] = ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    env = environment(args)
    if env["loadavg_start"][0] > 0.5:
        progress(
            f"WARNING: load average {env['loadavg_start'][0]:.2f} before the run: other work on this "
            "machine will add noise, mostly to the latencies"
        )
    progress(
        f"weir from {BUILD}; {args.adds} ADDs per phase, {args.parallel} in parallel, "
        f"{args.rounds} round(s) x {args.duration}s traffic tests"
    )
    before = root_snapshot()
    adds: dict[str, dict] = {}
    node_rulesets: dict[str, list[str]] = {}
    weir_metrics = {}
    with Lab("wb") as lab:
        subjects = make_subjects(lab, args.compare_build)
        SUBJECTS[:] = [p for p in ALL_SUBJECTS if p in subjects]
        progress(f"lab {lab.id}: nodes {', '.join(SUBJECTS)} (weir-agent on the weir ones)")
        for name, subject in subjects.items():
            progress(f"warm-up ADD/DEL: {name}")
            warm_up(lab, subject)
        for name, subject in subjects.items():
            progress(f"ADD x{args.adds} sequential, then DEL all: {name}")
            adds[name] = {"seq": bench_add(lab, subject, "s", args.adds, 1)}
        for name, subject in subjects.items():
            progress(f"ADD x{args.adds}, {args.parallel} in parallel, then DEL all: {name}")
            adds[name]["par"] = bench_add(lab, subject, "p", args.adds, args.parallel)
        for name in subjects:
            for phase in ("seq", "par"):
                a = adds[name][phase]
                if a["host_veths_after_add"] < args.adds or a["host_veths_after_del"] != 0:
                    raise RuntimeError(
                        f"{name} {phase}: {a['host_veths_after_add']} host veths after ADD, "
                        f"{a['host_veths_after_del']} after DEL"
                    )
        for name, subject in subjects.items():
            progress(f"two traffic pods + qperf/iperf3 servers: {name}")
            setup_traffic(lab, subject)
        weir_before = subjects["weir-veth"].node.weirctl("metrics")
        traffic = bench_traffic(subjects, args.rounds, args.duration)
        bandwidth = bench_bandwidth(lab, subjects, args.rounds, args.duration)
        weir_metrics = {"before_traffic": weir_before, "after_traffic": subjects["weir-veth"].node.weirctl("metrics")}
        for name, subject in subjects.items():
            node_rulesets[name] = subject.node.exec(["nft", "-s", "list", "ruleset"], check=False).stdout.splitlines()
        progress("removing the lab")
    left = leftovers(lab.id)
    after = root_snapshot()
    diff = root_diff(before, after)
    env["loadavg_end"] = os.getloadavg()

    rows = summarize(adds, traffic, args.parallel)
    table = format_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = args.out / f"cni_bench-{stamp}.json"
    png_path = args.out / f"cni_bench-{stamp}.png"
    json_path.write_text(
        json.dumps(
            {
                "environment": env,
                "subjects": SUBJECTS,
                "kernel_has_netkit": kernel_has_netkit(),
                "compare_build": str(args.compare_build) if args.compare_build else None,
                "summary": rows,
                "add": adds,
                "traffic": traffic,
                "bandwidth": bandwidth,
                "weir_metrics": weir_metrics,
                "node_rulesets": node_rulesets,
                "root_namespace_changes": diff,
                "lab_leftovers": left,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    plot(
        rows,
        png_path,
        f"{env['time']}  load {env['loadavg_start'][0]:.2f}  kernel {env['kernel']}  "
        f"{env['cpus']} CPUs  {env['cpu_model']}  "
        f"ADDs/phase {args.adds}, parallel {args.parallel}, traffic {args.rounds}x{args.duration}s (median)",
    )

    print()
    print(table)
    print()
    print(format_tcp_counters(traffic, args.duration))
    print()
    print(format_bandwidth(bandwidth))
    print()
    met = [ok for r in rows for ok in r["met"].values()]
    print(
        f"targets met: {sum(met)}/{len(met)}  (ratios are to ptp; ADD timings are the "
        f"plugin exec only, traffic values the median of {args.rounds} round(s); "
        f"load average {env['loadavg_start'][0]:.2f} at start, {env['loadavg_end'][0]:.2f} at end)"
    )
    return finish_report(diff, left, json_path, png_path)


if __name__ == "__main__":
    sys.exit(main())
