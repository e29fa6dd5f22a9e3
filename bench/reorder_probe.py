"""Where same-node TCP retransmits come from: one iperf3 stream and qperf tcp_bw between two pods,
weir-veth against ptp, each under settings that change how a flow's segments are spread over CPUs.

`bench.cni_bench` finds that every plugin's same-node TCP retransmits are fast retransmits after
reordering, never drops. This probe shows where the reordering comes from and what removing it
costs (decision 0020). For each variant, interleaved over rounds, it prints the median of:
iperf3 Gbit/s, qperf tcp_bw Gbit/s, retransmits, SACK reordering seen by the sender and segments
the receiver queued out of order (per second), and the share of the client's data segments that
were sent from a CPU other than the client's (perf, `net:netif_rx` on the client's host device).

Variants (weir's only need no rebuild; ptp runs as shipped beside them):
  shipped      as the plugins configure the pods
  same-cpu     the server on the client's CPU: one CPU, no reordering possible (the control)
  rps          receive packet steering on the receiving pod's eth0, all CPUs: each flow's second
               pass through the backlog on one CPU (an IPI when that is not the sending CPU)
  bigtcp       BIG TCP: GSO/GRO size 192 KiB on both pods' eth0 and their host devices

`--compare-build DIR` adds weir-base, another build's agent and plugin (a delivery change needs a
rebuild), as shipped and on one CPU.

    sudo python3 -m bench.reorder_probe [--rounds 5] [--duration 5] [--compare-build DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench.cni_bench import (
    IPERF_PORT,
    PIN,
    QPERF_PORT,
    Subject,
    make_subjects,
    run_iperf3,
    run_qperf,
    setup_traffic,
)
from bench.report import progress, root_diff, root_snapshot
from weirlab.lab import Lab, in_netns, run

SUBJECTS = ("weir-veth", "weir-base", "ptp")
VARIANTS = ("shipped", "same-cpu", "rps", "bigtcp")
SAME_CPU_IPERF_PORT = 5301
BIG_TCP_BYTES = 196608
IFLA_GSO_IPV4_MAX_SIZE = 63  # linux/if_link.h; Debian 12's headers and iproute2 predate them
IFLA_GRO_IPV4_MAX_SIZE = 64


def ip_netns_exec(netns: str, cmd: list[str]) -> list[str]:
    """Unlike in_netns, `ip netns exec` mounts the namespace's own sysfs (rps_cpus lives there)."""
    return ["ip", "netns", "exec", netns, *cmd]


def set_rps(netns: str, device: str, mask: int) -> None:
    path = f"/sys/class/net/{device}/queues/rx-0/rps_cpus"
    run(ip_netns_exec(netns, ["sh", "-c", f"echo {mask:x} > {path}"]))


# RTM_NEWLINK on an existing link with the two IPv4 GSO/GRO maxima, run inside the namespace.
BIG_TCP_SETTER = """
import socket, struct, sys
index, size = socket.if_nametoindex(sys.argv[1]), int(sys.argv[2])
attrs = b"".join(struct.pack("HHI", 8, kind, size) for kind in ({gso}, {gro}))
body = struct.pack("BxHiII", socket.AF_UNSPEC, 0, index, 0, 0) + attrs
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.send(struct.pack("IHHII", 16 + len(body), 16, 0x5, 1, 0) + body)
error = struct.unpack("i", s.recv(4096)[16:20])[0]
sys.exit(f"RTM_NEWLINK {{sys.argv[1]}}: errno {{-error}}" if error else 0)
""".format(gso=IFLA_GSO_IPV4_MAX_SIZE, gro=IFLA_GRO_IPV4_MAX_SIZE)


def set_big_tcp(netns: str, device: str, size: int) -> None:
    run(in_netns(netns, [sys.executable, "-c", BIG_TCP_SETTER, device, str(size)]))


def host_device(subject: Subject, pod_ns: str) -> str:
    """The node-side device of a pod's eth0 (its peer's ifindex is in `eth0@ifN`)."""
    peer = re.search(r"eth0@if(\d+)", run(in_netns(pod_ns, ["ip", "-o", "link", "show", "eth0"])).stdout)
    for line in run(in_netns(subject.node.netns, ["ip", "-o", "link"])).stdout.splitlines():
        index, name = line.split(":")[:2]
        if peer and index == peer.group(1):
            return name.strip().split("@")[0]
    raise RuntimeError(f"{subject.name}: no host device for {pod_ns}")


class Variant:
    """Applies one variant to a subject's two traffic pods and takes it back."""

    def __init__(self, name: str, subject: Subject):
        self.name, self.subject = name, subject
        (self.a_ns, _), (self.b_ns, _) = subject.traffic_pods
        self.hosts = [host_device(subject, ns) for ns in (self.a_ns, self.b_ns)]

    def apply(self, on: bool) -> None:
        if self.name == "rps":
            set_rps(self.b_ns, "eth0", (1 << os.cpu_count()) - 1 if on else 0)
        elif self.name == "bigtcp":
            size = BIG_TCP_BYTES if on else 65536
            for ns in (self.a_ns, self.b_ns):
                set_big_tcp(ns, "eth0", size)
            for device in self.hosts:
                set_big_tcp(self.subject.node.netns, device, size)


PERF_OUT = Path(f"/tmp/weir-reorder-probe-{os.getpid()}.perf")


def under_perf(host: str) -> Callable[[list[str]], list[str]]:
    """A wrapper that counts per CPU the client's data segments entering its host device (netif_rx
    runs on the CPU that sent them) while the command runs."""
    event = ["-e", "net:netif_rx", "--filter", f'len > 1000 && name == "{host}"']
    return lambda command: ["perf", "stat", "-a", "-A", "-x,", *event, "-o", str(PERF_OUT), "--", *command]


def sends_by_cpu() -> list[int]:
    """What the last under_perf run counted, per CPU."""
    per_cpu = [0] * (os.cpu_count() or 1)
    for line in PERF_OUT.read_text().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].startswith("CPU") and fields[1].isdigit():
            per_cpu[int(fields[0][3:])] = int(fields[1])
    PERF_OUT.unlink()
    return per_cpu


def iperf3_round(subject: Subject, variant: str, host: str, duration: int) -> dict:
    port = SAME_CPU_IPERF_PORT if variant == "same-cpu" else IPERF_PORT
    result = run_iperf3(subject, 1, duration, port=port, wrap=under_perf(host))
    per_cpu = sends_by_cpu()
    counters = result["tcp_counters"]
    client_cpu = int(PIN["client"][-1]) if PIN["client"] else 0
    return {
        "iperf3_gbps": result["gbps"],
        "retransmits": result["retransmits"] / duration,
        "reorder": counters["TcpExtTCPSACKReorder"] / duration,
        "ofo": counters["TcpExtTCPOFOQueue"] / duration,
        "other_cpu_share": 1 - per_cpu[client_cpu] / max(1, sum(per_cpu)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per iperf3 run")
    parser.add_argument("--compare-build", type=Path, help="another build directory, measured as weir-base")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    missing = [t for t in ("perf", "qperf", "iperf3", "taskset", "nsenter") if shutil.which(t) is None]
    if missing or (os.cpu_count() or 1) < 2:
        print(f"needs two CPUs and {', '.join(missing) or 'nothing else'} (scripts/setup.sh)", file=sys.stderr)
        return 2
    PIN["client"], PIN["server"] = ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    before = root_snapshot()
    samples: dict[tuple[str, str], list[dict]] = {}
    with Lab("wr") as lab:
        all_subjects = make_subjects(lab, args.compare_build)
        subjects = {name: all_subjects[name] for name in SUBJECTS if name in all_subjects}
        variants = []
        for name, subject in subjects.items():
            setup_traffic(lab, subject)
            b_ns = subject.traffic_pods[1][0]
            lab.spawn(
                in_netns(b_ns, [*PIN["client"], "iperf3", "-s", "-p", str(SAME_CPU_IPERF_PORT)]),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            host = host_device(subject, subject.traffic_pods[0][0])
            for v in VARIANTS if name == "weir-veth" else ("shipped", "same-cpu"):
                variants.append((Variant(v, subject), host))
        for r in range(args.rounds):
            for variant, host in variants[r % len(variants) :] + variants[: r % len(variants)]:
                label = (variant.subject.name, variant.name)
                progress(f"round {r + 1}/{args.rounds}: {label[0]} {label[1]}")
                variant.apply(True)
                try:
                    sample = iperf3_round(variant.subject, variant.name, host, args.duration)
                    if variant.name != "same-cpu":
                        sample["qperf_gbps"] = run_qperf(variant.subject, "tcp_bw", 3)
                finally:
                    variant.apply(False)
                samples.setdefault(label, []).append(sample)
    changed = root_diff(before, root_snapshot())

    columns = ("iperf3_gbps", "qperf_gbps", "retransmits", "reorder", "ofo", "other_cpu_share")
    print(
        f"\n{'subject':10} {'variant':9} | iperf3 Gbit/s | qperf tcp_bw Gbit/s | retransmits/s | "
        "SACK reorder/s | receiver OFO/s | client's segments sent on another CPU"
    )
    for (subject, variant), rows in samples.items():
        medians = [statistics.median(r[c] for r in rows) if c in rows[0] else None for c in columns]
        cells = [
            "-" if m is None else f"{m:.1%}" if c == "other_cpu_share" else f"{m:,.1f}"
            for c, m in zip(columns, medians)
        ]
        print(f"{subject:10} {variant:9} | " + " | ".join(cells))
    print(f"({args.rounds} rounds, medians; qperf on port {QPERF_PORT}, 3 s)")
    if changed:
        print(f"root namespace changed: {changed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
