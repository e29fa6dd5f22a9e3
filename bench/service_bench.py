"""Service dataplanes side by side in one lab and one run: weir's tc path, upstream kube-proxy in
iptables mode and in nftables mode, and the direct path to the backend pod (no Service).

Each dataplane has a node namespace of its own on one fabric, with a backend pod and a client pod;
one outside client namespace sits on the same fabric.

  - weir: weir-agent in standalone mode (a manifest directory), pods wired by the weir CNI.
  - weir (XDP): a second weir node whose agent has XDP on its uplink (nodePortAcceleration native),
    with a Service and pods of its own.
  - kube-proxy iptables / nftables: upstream kube-proxy (built from its Go module) inside its node
    namespace, watching a real kube-apiserver that runs in a lab namespace; plain veth pods.
  - direct: a node that only routes; the targets are the backend pod's own address and port.

Measured, the dataplanes interleaved and rotated every round:
  1. NodePort, TCP: requests/s with a new TCP connection per request, from the outside client.
  2. ClusterIP, TCP: the same from the client pod on the node to the Service's ClusterIP (weir: per
     packet, the client outside the socket-LB cgroup; socket LB is an extra row for information).
  3. NodePort, UDP: packets/s of a stream from the outside client, counted where they arrive (the
     backend pod's UDP MIB).
  CPU per request (and per packet): all CPUs' busy time from /proc/stat during the run.

Prints a table with weir/iptables, weir/nftables and weir/direct (targets: UDP packets/s at least 1.7x
kube-proxy iptables, requests/s at least 1.0x direct) and writes JSON and a PNG into bench/results/.
Every address, route, rule and process lives in namespaces the lab made, and kube-proxy's rules only
in its own node namespace; the root namespace (links, addresses, routes, iptables-save,
ip6tables-save, nft ruleset) is snapshotted before and compared after, and any change fails the run.

    sudo python3 -m bench.service_bench [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.control_plane_bench import KUBE_PROXY, KubeClient, KubeProxy, rules_snapshot
from bench.lb_bench import format_table, number
from bench.report import SNAPSHOT_TOOLS, finish_figure, finish_report, progress, root_diff, root_snapshot
from weirlab.cluster import CLIENT_IP, Cluster, node_ip
from weirlab.kube.control_plane import ControlPlane, kube_bin_dir, missing_binaries
from weirlab.lab import BUILD, WEIR_AGENT, WEIR_CNI, WEIRCTL, Lab, in_netns, leftovers, run

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
LOAD = BUILD / "bench" / "weir_service_load"

SUBJECTS = ("weir", "weir-xdp", "iptables", "nftables", "direct")
LABELS = {
    "weir": "weir (tc)",
    "weir-xdp": "weir (XDP)",
    "iptables": "kube-proxy iptables",
    "nftables": "kube-proxy nftables",
    "direct": "direct",
}
API_ADDRESS = "192.168.50.200"
# The nodes other than weir's (node1, 192.168.50.1, pods 10.244.1.0/24): (role, fabric address,
# third octet of the backend pod's /24; the client pod's is 10 more).
OTHER_NODES = {
    "iptables": ("ipt", "192.168.50.11", 11),
    "nftables": ("nft", "192.168.50.12", 12),
    "direct": ("plain", "192.168.50.13", 13),
}
CLUSTER_CIDR = "10.244.0.0/16"
CLUSTER_IP = {"weir": "10.96.0.10", "iptables": "10.96.0.11", "nftables": "10.96.0.12", "weir-xdp": "10.96.0.14"}
NODE_PORT = {"weir": 30080, "iptables": 30081, "nftables": 30082, "weir-xdp": 30084}  # TCP
UDP_NODE_PORT = {s: port + 100 for s, port in NODE_PORT.items()}  # the API server allocates one per number
TCP_PORT, TCP_TARGET = 80, 8080
UDP_PORT, UDP_TARGET = 90, 9000
KUBE_SERVICE_PORTS = 4  # kube-proxy's rules: 2 Services x (TCP, UDP)

TARGET_UDP_VS_IPTABLES = 1.7
TARGET_XDP_UDP_VS_IPTABLES = 3.0
TARGET_RPS_VS_DIRECT = 1.0

PIN = {"client": [], "server": []}


# ---------------------------------------------------------------------------------------------
# What is read around a run


def cpu_jiffies() -> dict[str, int]:
    """All CPUs' busy (everything but idle and iowait), softirq and total time from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    total = sum(fields)  # guest time is already in user
    return {"busy": total - fields[3] - fields[4], "softirq": fields[6], "total": total}


def process_cpu_s(pid: int) -> float:
    """User + system seconds of a running process; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ksoftirqd_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _comm(p).startswith("ksoftirqd/")]


def _comm(proc_dir: Path) -> str:
    try:
        return (proc_dir / "comm").read_text().strip()
    except OSError:
        return ""


def udp_mib(netns: str) -> dict[str, int]:
    """The Udp line of a namespace's /proc/net/snmp (the reading process's namespace decides)."""
    lines = [line.split() for line in run(in_netns(netns, ["cat", "/proc/net/snmp"])).stdout.splitlines()]
    header, values = [line for line in lines if line[0] == "Udp:"][:2]
    return dict(zip(header[1:], (int(v) for v in values[1:])))


def conntrack_count(netns: str) -> int:
    """Entries in the namespace's conntrack table (0 when netfilter conntrack is not in use there)."""
    out = run(in_netns(netns, ["cat", "/proc/sys/net/netfilter/nf_conntrack_count"]), check=False).stdout
    return int(out) if out.strip().isdigit() else 0


# ---------------------------------------------------------------------------------------------
# The lab


class ServiceLab:
    """The fabric with the outside client, weir's node (Cluster, one node), the kube-proxy nodes, the
    plain node, the control plane for kube-proxy, the Services and the servers."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.paused: list[int] = []
        # node2 is weir with XDP on its uplink (nodePortAcceleration native), its own Service and pods.
        self.cluster = Cluster(lab, 2, ["snat", "snat"], start_agents=False)
        self.cluster.agent_args["node2"].append("--node_port_acceleration=native")
        self.cluster.start_agents()
        self.client = self.cluster.client
        self.weir, self.weir_xdp = self.cluster.nodes
        # Every subject's stream leaves the client with its UDP checksum computed in software
        # (Cluster.prepare_for_xdp): the same client work for all of them.
        self.cluster.prepare_for_xdp([self.weir_xdp])
        self.node_ns = {"weir": self.weir.netns, "weir-xdp": self.weir_xdp.netns}
        self.node_address = {"weir": node_ip(1), "weir-xdp": node_ip(2)}
        web, client = self.weir.add_pod("web"), self.weir.add_pod("client")
        web_xdp, client_xdp = self.weir_xdp.add_pod("web-x"), self.weir_xdp.add_pod("client-x")
        self.backend = {"weir": (web.netns, web.ipv4), "weir-xdp": (web_xdp.netns, web_xdp.ipv4)}
        self.client_pod = {"weir": client.netns, "weir-xdp": client_xdp.netns}
        # Socket LB gets a client pod of its own: its connections go straight to the backend's address,
        # and one that shares a source port with a recent per-packet flow of the other pod would meet
        # that flow's conntrack entries (as lb_bench.py's port ranges avoid).
        self.socklb_pod = self.weir.add_pod("client-sock").netns
        for subject, (role, address, octet) in OTHER_NODES.items():
            netns = self.cluster.add_client(role, address)
            run(in_netns(netns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]))
            self.node_ns[subject] = netns
            self.node_address[subject] = address
            self.backend[subject] = self.veth_pod(netns, f"{role}-web", octet)
            self.client_pod[subject] = self.veth_pod(netns, f"{role}-client", octet + 10)[0]
        # The outside client reaches the plain node's pods (the direct path) through that node.
        plain_octet = OTHER_NODES["direct"][2]
        run(
            in_netns(self.client, ["ip", "route", "add", f"10.244.{plain_octet}.0/24", "via", OTHER_NODES["direct"][1]])
        )
        # Every source port for the clients: a closed connection gives its port back at once (reset).
        for netns in (self.client, self.socklb_pod, *self.client_pod.values()):
            run(in_netns(netns, ["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"]))
        # The processes whose CPU time a run of a subject counts besides the client's: its servers,
        # its node's proxy (below) and ksoftirqd, which takes over packet processing under load.
        self.node_pids: dict[str, list[int]] = {"weir": [self.weir.agent.pid], "weir-xdp": [self.weir_xdp.agent.pid]}
        for subject, (netns, _) in self.backend.items():
            self.node_pids.setdefault(subject, [])
            self.node_pids[subject] += [
                self.serve(netns, "tcp-server", TCP_TARGET),
                self.serve(netns, "udp-sink", UDP_TARGET),
            ]
        self.ksoftirqd = ksoftirqd_pids()

        progress("weir: the Service in node1's manifest directory")
        # The same objects as kube-proxy's in its API server (JSON is YAML).
        self.cluster.apply("svc", json.dumps(service_obj("weir")))
        self.cluster.apply("eps", json.dumps(slice_obj("weir", web.ipv4, "node1")))
        self.cluster.apply("svc-xdp", json.dumps(service_obj("weir-xdp")))
        self.cluster.apply("eps-xdp", json.dumps(slice_obj("weir-xdp", web_xdp.ipv4, "node2")))
        for subject in ("weir", "weir-xdp"):
            for port in (TCP_PORT, UDP_PORT):
                self.cluster.wait_for_frontend(f"{CLUSTER_IP[subject]}:{port}", backends=1, timeout=10)

        cp_dir = lab.dir / "cp"
        self.cp = ControlPlane(cp_dir, netns=self.cluster.add_client("api", API_ADDRESS), address=API_ADDRESS)
        lab.cleanups.insert(0, self.cp.stop)  # cleanups run newest first: this one last
        lab.cleanups.append(self.resume_control_plane)
        progress(f"control plane: etcd + kube-apiserver in {self.cp.netns}, https://{API_ADDRESS}:6443")
        self.cp.start()
        client = KubeClient(lab, self.cp)
        items = []
        for subject in ("iptables", "nftables"):
            role, address, _ = OTHER_NODES[subject]
            items.append(["/api/v1/nodes", node_obj(role, address)])
            items.append(["/api/v1/namespaces/default/services", service_obj(subject)])
            items.append(
                [
                    "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                    slice_obj(subject, self.backend[subject][1], role),
                ]
            )
        client.bulk(items, 1, "kube-proxy's Nodes, Services and EndpointSlices")
        client.proc.stdin.close()
        self.kube_proxy: dict[str, KubeProxy] = {}
        for subject in ("iptables", "nftables"):
            role, address, _ = OTHER_NODES[subject]
            progress(f"kube-proxy {subject} in {self.node_ns[subject]}")
            self.kube_proxy[subject] = KubeProxy(
                lab, self.node_ns[subject], role, subject, address, self.cp.admin_kubeconfig
            )
            self.node_pids[subject].append(self.kube_proxy[subject].proc.pid)
        for subject, kp in self.kube_proxy.items():
            kp.wait_synced(KUBE_SERVICE_PORTS, timeout=90)
            progress(f"  kube-proxy {subject}: synced")

    def veth_pod(self, node_netns: str, role: str, octet: int) -> tuple[str, str]:
        """A pod namespace behind `node_netns`: eth0 10.244.<octet>.2/24, the node's end .1."""
        netns = self.lab.make_netns(role)
        host_if = f"v{role.split('-')[-1]}"
        run(
            in_netns(
                node_netns,
                ["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", f"/run/netns/{netns}"],
            )
        )
        run(in_netns(node_netns, ["ip", "addr", "add", f"10.244.{octet}.1/24", "dev", host_if]))
        run(in_netns(node_netns, ["ip", "link", "set", host_if, "up"]))
        run(in_netns(netns, ["ip", "addr", "add", f"10.244.{octet}.2/24", "dev", "eth0"]))
        run(in_netns(netns, ["ip", "link", "set", "eth0", "up"]))
        run(in_netns(netns, ["ip", "route", "add", "default", "via", f"10.244.{octet}.1"]))
        return netns, f"10.244.{octet}.2"

    def serve(self, netns: str, mode: str, port: int) -> int:
        proc = self.lab.spawn(
            in_netns(netns, [*PIN["server"], str(LOAD), mode, str(port)]),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{mode} in {netns} did not start: {proc.stderr.read() if proc.poll() else ''}")
        return proc.pid  # nsenter and taskset exec: the server's own

    # -- the control plane is stopped while traffic runs: its work is nobody's dataplane -------------

    def pause_control_plane(self) -> None:
        for proc in (self.cp.apiserver, self.cp.etcd):
            os.kill(proc.popen.pid, signal.SIGSTOP)
            self.paused.append(proc.popen.pid)

    def resume_control_plane(self) -> None:
        while self.paused:
            try:
                os.kill(self.paused.pop(), signal.SIGCONT)
            except ProcessLookupError:
                pass

    # -- targets -------------------------------------------------------------------------------------

    def tcp_target(self, subject: str, kind: str) -> tuple[list[str], str, int]:
        """(how to run a command where the client is, address, port) of a TCP test."""
        if kind == "nodeport":
            where = lambda cmd: in_netns(self.client, cmd)
            if subject == "direct":
                return where, self.backend["direct"][1], TCP_TARGET
            return where, self.node_address[subject], NODE_PORT[subject]
        if kind == "socklb":
            where = lambda cmd: self.cluster.node_cgroup_cmd(self.weir, self.socklb_pod, cmd)
            return where, CLUSTER_IP["weir"], TCP_PORT
        where = lambda cmd, ns=self.client_pod[subject]: in_netns(ns, cmd)
        if subject == "direct":
            return where, self.backend["direct"][1], TCP_TARGET
        return where, CLUSTER_IP[subject], TCP_PORT

    def udp_target(self, subject: str) -> tuple[str, int]:
        if subject == "direct":
            return self.backend["direct"][1], UDP_TARGET
        return self.node_address[subject], UDP_NODE_PORT[subject]

    def measured(self, subject: str, argv: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, dict]:
        """Runs a client to its end; the CPU time spent meanwhile: by the lab's processes (the client,
        the subject's servers and proxy, ksoftirqd; with the packet processing the kernel did in their
        context) and by the whole machine (/proc/stat, other work included)."""
        pids = self.node_pids[subject] + self.ksoftirqd
        node0, client0, machine0 = sum(map(process_cpu_s, pids)), children_cpu_s(), cpu_jiffies()
        proc = run(argv, check=False, timeout=timeout)
        node1, client1, machine1 = sum(map(process_cpu_s, pids)), children_cpu_s(), cpu_jiffies()
        hz = os.sysconf("SC_CLK_TCK")
        return proc, {
            "lab_s": node1 - node0 + client1 - client0,
            "client_s": client1 - client0,
            "machine_s": (machine1["busy"] - machine0["busy"]) / hz,
            "machine_softirq_s": (machine1["softirq"] - machine0["softirq"]) / hz,
        }

    def run_tcp(self, subject: str, kind: str, seconds: float, concurrency: int) -> dict:
        where, address, port = self.tcp_target(subject, kind)
        cmd = [*PIN["client"], str(LOAD), "tcp-load", address, str(port), str(seconds), str(concurrency)]
        proc, cpu = self.measured(subject, where(cmd), seconds + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"tcp-load {subject} {kind} to {address}:{port} failed: {proc.stderr}")
        res = json.loads(proc.stdout)
        requests = res["requests"]
        res.update(
            target=f"{address}:{port}",
            rps=requests / res["seconds"],
            cpu=cpu,
            errors=res["connect_errors"] + res["read_errors"] + res["bad_answers"],
            cpu_us_per_request=cpu["lab_s"] / requests * 1e6 if requests else None,
            machine_cpu_us_per_request=cpu["machine_s"] / requests * 1e6 if requests else None,
            client_cpu_share=cpu["client_s"] / res["seconds"],
        )
        return res

    def run_udp(self, subject: str, seconds: float, flows: int, size: int) -> dict:
        address, port = self.udp_target(subject)
        backend_ns = self.backend[subject][0]
        cmd = [*PIN["client"], str(LOAD), "udp-flood", address, str(port), str(seconds), str(flows), str(size)]
        mib0 = udp_mib(backend_ns)
        proc, cpu = self.measured(subject, in_netns(self.client, cmd), seconds + 60)
        time.sleep(0.05)  # what is still in a queue between the nodes arrives now, or never
        mib1 = udp_mib(backend_ns)
        if proc.returncode != 0:
            raise RuntimeError(f"udp-flood {subject} to {address}:{port} failed: {proc.stderr}")
        res = json.loads(proc.stdout)
        delta = {k: mib1[k] - mib0[k] for k in mib0}
        # Arrived at the backend's UDP layer: read by the sink, or dropped at a full socket buffer.
        arrived = delta["InDatagrams"] + delta["InErrors"]
        res.update(
            target=f"{address}:{port}",
            arrived=arrived,
            read_by_sink=delta["InDatagrams"],
            mib_delta=delta,
            pps=arrived / res["seconds"],
            sent_pps=res["sent"] / res["seconds"],
            cpu=cpu,
            cpu_ns_per_packet=cpu["lab_s"] / arrived * 1e9 if arrived else None,
            machine_cpu_ns_per_packet=cpu["machine_s"] / arrived * 1e9 if arrived else None,
            client_cpu_share=cpu["client_s"] / res["seconds"],
        )
        return res

    def conntrack_counts(self) -> dict[str, int]:
        return {subject: conntrack_count(netns) for subject, netns in self.node_ns.items()}


def node_obj(name: str, address: str) -> dict:
    # Status can be set on create; kube-proxy waits up to 30 s for its Node's addresses otherwise.
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}]},
    }


def service_obj(subject: str) -> dict:
    ports = [
        {"name": "http", "port": TCP_PORT, "targetPort": TCP_TARGET, "protocol": "TCP", "nodePort": NODE_PORT[subject]},
        {
            "name": "udp",
            "port": UDP_PORT,
            "targetPort": UDP_TARGET,
            "protocol": "UDP",
            "nodePort": UDP_NODE_PORT[subject],
        },
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"svc-{subject}", "namespace": "default"},
        "spec": {
            "type": "NodePort",
            "clusterIP": CLUSTER_IP[subject],
            "clusterIPs": [CLUSTER_IP[subject]],
            "externalTrafficPolicy": "Cluster",
            "ports": ports,
        },
    }


def slice_obj(subject: str, address: str, node_name: str) -> dict:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"svc-{subject}-1",
            "namespace": "default",
            "labels": {
                "kubernetes.io/service-name": f"svc-{subject}",
                "endpointslice.kubernetes.io/managed-by": "bench",
            },
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [address],
                "nodeName": node_name,
                "conditions": {"ready": True, "serving": True, "terminating": False},
            }
        ],
        "ports": [
            {"name": "http", "port": TCP_TARGET, "protocol": "TCP"},
            {"name": "udp", "port": UDP_TARGET, "protocol": "UDP"},
        ],
    }


# ---------------------------------------------------------------------------------------------
# The runs

TCP_KINDS = ("nodeport", "clusterip")


def check_paths(sl: ServiceLab, args: argparse.Namespace) -> None:
    """Every target answers before anything is timed."""
    for kind in TCP_KINDS:
        for subject in SUBJECTS:
            res = sl.run_tcp(subject, kind, 1, 4)
            if res["requests"] < 10 or res["errors"] > res["requests"] // 10:
                raise RuntimeError(f"{subject} {kind} ({res['target']}) does not answer well: {res}")
    res = sl.run_tcp("weir", "socklb", 1, 4)
    if res["requests"] < 10 or res["errors"]:
        raise RuntimeError(f"weir socket LB ({res['target']}) does not answer well: {res}")
    for subject in SUBJECTS:
        res = sl.run_udp(subject, 0.5, args.udp_flows, args.udp_size)
        if res["arrived"] < res["sent"] // 2:
            raise RuntimeError(f"{subject} UDP ({res['target']}): {res['arrived']} of {res['sent']} arrived: {res}")
    progress("every path answers: " + ", ".join(f"{s} conntrack entries {n}" for s, n in sl.conntrack_counts().items()))


def bench(sl: ServiceLab, args: argparse.Namespace) -> dict:
    runs: dict[str, dict[str, list[dict]]] = {k: {s: [] for s in SUBJECTS} for k in (*TCP_KINDS, "udp")}
    runs["socklb"] = {"weir": []}
    for r in range(args.rounds):
        order = list(SUBJECTS[r % len(SUBJECTS) :] + SUBJECTS[: r % len(SUBJECTS)])
        for kind in TCP_KINDS:
            for subject in order:
                res = sl.run_tcp(subject, kind, args.duration, args.concurrency)
                res["conntrack_after"] = sl.conntrack_counts()
                runs[kind][subject].append(res)
                progress(
                    f"round {r + 1}/{args.rounds} {kind:9} {LABELS[subject]:20} {res['rps']:8.0f} req/s  "
                    f"{number(res['cpu_us_per_request'])} us CPU/req  p50 {res['p50_us']:.0f} us  "
                    f"errors {res['errors']}  client CPU {res['client_cpu_share']:.0%}"
                )
        res = sl.run_tcp("weir", "socklb", args.duration, args.concurrency)
        runs["socklb"]["weir"].append(res)
        progress(
            f"round {r + 1}/{args.rounds} clusterip weir socket LB (info) {res['rps']:8.0f} req/s  "
            f"{number(res['cpu_us_per_request'])} us CPU/req"
        )
        for subject in order:
            res = sl.run_udp(subject, args.duration, args.udp_flows, args.udp_size)
            runs["udp"][subject].append(res)
            progress(
                f"round {r + 1}/{args.rounds} udp       {LABELS[subject]:20} {res['pps']:8.0f} pkt/s arrived "
                f"(sent {res['sent_pps']:.0f}/s)  {number(res['cpu_ns_per_packet'])} ns CPU/pkt  "
                f"client CPU {res['client_cpu_share']:.0%}"
            )
    med = lambda values: statistics.median(values) if values else None
    median = {
        kind: {
            subject: {
                key: med([run[key] for run in subject_runs if run.get(key) is not None])
                for key in (
                    ("rps", "cpu_us_per_request", "machine_cpu_us_per_request", "p50_us", "p99_us", "errors")
                    if kind != "udp"
                    else ("pps", "sent_pps", "cpu_ns_per_packet", "machine_cpu_ns_per_packet")
                )
            }
            for subject, subject_runs in by_subject.items()
        }
        for kind, by_subject in runs.items()
    }
    return {"runs": runs, "median": median}


# ---------------------------------------------------------------------------------------------
# Report

ROWS = [  # (key, kind, metric, label, unit, higher is better, target: (against, ratio) or None)
    ("np_rps", "nodeport", "rps", "NodePort TCP, new connection per request", "req/s", True, ("direct", 1.0)),
    ("cip_rps", "clusterip", "rps", "ClusterIP TCP, new connection per request", "req/s", True, ("direct", 1.0)),
    (
        "udp_pps",
        "udp",
        "pps",
        "NodePort UDP stream, arrived at the pod",
        "pkt/s",
        True,
        ("iptables", TARGET_UDP_VS_IPTABLES),
    ),
    # The same row with weir (XDP) as the numerator of the ratios.
    (
        "udp_pps_xdp",
        "udp",
        "pps",
        "NodePort UDP stream, weir (XDP)",
        "pkt/s",
        True,
        ("iptables", TARGET_XDP_UDP_VS_IPTABLES),
    ),
    ("np_cpu", "nodeport", "cpu_us_per_request", "  NodePort TCP: CPU per request (lab)", "us", False, None),
    ("cip_cpu", "clusterip", "cpu_us_per_request", "  ClusterIP TCP: CPU per request (lab)", "us", False, None),
    ("udp_cpu", "udp", "cpu_ns_per_packet", "  NodePort UDP: CPU per packet arrived (lab)", "ns", False, None),
    (
        "np_mcpu",
        "nodeport",
        "machine_cpu_us_per_request",
        "  NodePort TCP: CPU per request (machine)",
        "us",
        False,
        None,
    ),
    (
        "cip_mcpu",
        "clusterip",
        "machine_cpu_us_per_request",
        "  ClusterIP TCP: CPU per request (machine)",
        "us",
        False,
        None,
    ),
    ("udp_mcpu", "udp", "machine_cpu_ns_per_packet", "  NodePort UDP: CPU per packet (machine)", "ns", False, None),
    ("np_p50", "nodeport", "p50_us", "  NodePort TCP: request latency p50", "us", False, None),
    ("cip_p50", "clusterip", "p50_us", "  ClusterIP TCP: request latency p50", "us", False, None),
    ("udp_sent", "udp", "sent_pps", "  NodePort UDP: sent by the client", "pkt/s", True, None),
    ("socklb_rps", "socklb", "rps", "  ClusterIP TCP through weir's socket LB", "req/s", True, None),
]


def summary_rows(results: dict) -> list[dict]:
    """Values: the median over rounds. Ratios: the median of each round's ratio. A round runs every
    dataplane back to back, so its ratio is what the load on the machine moves least; the values of
    a dataplane move with it from round to round."""
    median, runs = results["median"], results["runs"]
    rows = []
    for key, kind, metric, label, unit, higher, target in ROWS:
        values = {s: median[kind].get(s, {}).get(metric) for s in SUBJECTS}
        subject = "weir-xdp" if key.endswith("_xdp") else "weir"

        def ratio(other: str, kind=kind, metric=metric, subject=subject) -> float | None:
            pairs = zip(runs[kind][subject], runs[kind].get(other, []))
            per_round = [w[metric] / o[metric] for w, o in pairs if w.get(metric) and o.get(metric)]
            return statistics.median(per_round) if per_round else None

        row = {
            "key": key,
            "label": label,
            "unit": unit,
            "higher_is_better": higher,
            "values": values,
            "ratios": {other: ratio(other) for other in ("iptables", "nftables", "direct")},
            "subject": subject,
            "target": target,
        }
        if target:
            against, wanted = target
            got = row["ratios"][against]
            row["met"] = got is not None and (got >= wanted if higher else got <= wanted)
        rows.append(row)
    return rows


def format_summary(rows: list[dict]) -> str:
    header = [
        "metric",
        "unit",
        *(LABELS[s] for s in SUBJECTS),
        "weir/ipt",
        "weir/nft",
        "weir/direct",
        "target",
        "status",
    ]
    body = []
    for row in rows:
        ratios = [
            "-" if row["ratios"][o] is None else f"{row['ratios'][o]:.2f}x" for o in ("iptables", "nftables", "direct")
        ]
        if row["target"]:
            against, wanted = row["target"]
            name = "xdp" if row["subject"] == "weir-xdp" else "weir"
            target = f"{name}/{'ipt' if against == 'iptables' else against} >= {wanted}x"
            status = "met" if row["met"] else "NOT MET"
        else:
            target, status = "-", "(info)"
        body.append([row["label"], row["unit"], *(number(row["values"][s]) for s in SUBJECTS), *ratios, target, status])
    return format_table(header, body)


COLORS = {"weir": "#2a7ab9", "weir-xdp": "#1f4e79", "iptables": "#e39b3b", "nftables": "#3b9e5a", "direct": "#9a9a9a"}


def plot(rows: list[dict], path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("np_rps", "NodePort TCP from outside\n(new connection per request)", "requests/s"),
        ("cip_rps", "ClusterIP TCP from a pod on the node\n(new connection per request)", "requests/s"),
        ("udp_pps", "NodePort UDP stream from outside\n(packets arrived at the pod)", "packets/s"),
        ("np_cpu", "CPU per NodePort request\n(client, servers, proxy, ksoftirqd)", "us CPU per request"),
        ("cip_cpu", "CPU per ClusterIP request\n(client, servers, proxy, ksoftirqd)", "us CPU per request"),
        ("udp_cpu", "CPU per UDP packet arrived\n(client, servers, proxy, ksoftirqd)", "ns CPU per packet"),
    ]
    by_key = {row["key"]: row for row in rows}
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    for ax, (key, title, ylabel) in zip(axes.flat, panels):
        row = by_key[key]
        subjects = [s for s in SUBJECTS if row["values"][s] is not None]
        values = [row["values"][s] for s in subjects]
        bars = ax.bar(
            range(len(subjects)), values, color=[COLORS[s] for s in subjects], edgecolor="black", linewidth=0.4
        )
        for bar, subject, value in zip(bars, subjects, values):
            ratio = row["ratios"].get(subject)
            text = number(value) + (f"\nweir {ratio:.2f}x" if ratio else "")
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, value),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        top = max(values) if values else 1
        if row["target"]:
            against, wanted = row["target"]
            level = (row["values"][against] or 0) * wanted
            top = max(top, level)
            ax.axhline(level, color="red", linestyle="dashed", linewidth=1.1)
            ax.annotate(
                f"target: weir >= {wanted}x {LABELS[against]} ({'met' if row['met'] else 'NOT MET'})",
                (0.01, level),
                xycoords=("axes fraction", "data"),
                xytext=(0, 3),
                textcoords="offset points",
                fontsize=8,
                color="red",
            )
        ax.set_xticks(range(len(subjects)))
        ax.set_xticklabels([LABELS[s].replace("kube-proxy ", "kube-proxy\n") for s in subjects], fontsize=8.5)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, top * 1.3)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    finish_figure(
        fig,
        path,
        "Service dataplanes in one lab and one run: weir (tc), kube-proxy iptables and nftables, and the direct path",
        subtitle,
    )


# ---------------------------------------------------------------------------------------------


def environment(args: argparse.Namespace) -> dict:
    version = subprocess.run([str(KUBE_PROXY), "--version"], text=True, capture_output=True).stdout.strip()
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
        "kube_bin_dir": str(kube_bin_dir()),
        "kube_proxy": version,
        "args": vars(args),
        "loadavg_start": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round of 2-second runs")
    parser.add_argument("--rounds", type=int, help="rounds over every target (default 5, quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per run (default 3, quick 2)")
    parser.add_argument("--concurrency", type=int, default=32, help="TCP connections in flight (default 32)")
    parser.add_argument("--udp-flows", type=int, default=8, help="UDP source ports of the stream (default 8)")
    parser.add_argument("--udp-size", type=int, default=64, help="UDP payload bytes (default 64)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin clients to CPU 0 and servers to CPU 1")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for JSON and PNG")
    args = parser.parse_args()
    # Many short rounds: the load of other work on the machine drifts in seconds, and a round's ratios
    # are taken between runs a few seconds apart.
    if not 1 <= args.udp_size <= 1472:
        parser.error("--udp-size: 1 to 1472 bytes (one datagram in a 1500-byte packet)")
    if args.udp_flows < 1 or args.concurrency < 1:
        parser.error("--udp-flows and --concurrency: at least 1")
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.duration = args.duration or (2 if args.quick else 3)
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds: at least 1; --duration: more than 0 seconds")

    if os.geteuid() != 0:
        print("needs root (network namespaces, bpffs, BPF programs, cgroups)", file=sys.stderr)
        return 2
    missing = [str(p) for p in (WEIR_CNI, WEIR_AGENT, WEIRCTL, LOAD) if not p.exists()]
    missing += missing_binaries(names=("etcd", "kube-apiserver", "kubectl", "kube-proxy"))
    tools = ("nsenter", "taskset", "curl", "openssl", "iptables-save", "ip6tables-save", *SNAPSHOT_TOOLS)
    missing += [t for t in tools if shutil.which(t) is None]
    if missing:
        print(
            f"missing: {', '.join(missing)} (build with scripts/build.sh, set WEIR_BUILD_DIR for another build "
            "dir; Kubernetes with weirlab/kube/build_upstream.sh; scripts/setup.sh installs the rest)",
            file=sys.stderr,
        )
        return 2
    if not args.no_pin and (os.cpu_count() or 1) >= 2:
        PIN["client"], PIN["server"] = ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    env = environment(args)
    progress(
        f"load average {' '.join(f'{x:.2f}' for x in env['loadavg_start'])}"
        + (
            "  (WARNING: other work on this machine adds noise, to the CPU times most)"
            if env["loadavg_start"][0] > 0.5
            else ""
        )
    )
    progress(f"weir from {BUILD}, {env['kube_proxy']} from {kube_bin_dir()}")
    before = root_snapshot()
    rules_before = rules_snapshot()

    results: dict = {}
    lab_id = None
    error = None
    try:
        with Lab("svb") as lab:
            lab_id = lab.id
            progress(
                f"lab {lab.id}: client {CLIENT_IP}; nodes weir {node_ip(1)}, "
                + ", ".join(f"{s} {a}" for s, (_, a, _) in OTHER_NODES.items())
            )
            sl = ServiceLab(lab)
            sl.pause_control_plane()
            check_paths(sl, args)
            results = bench(sl, args)
            results["kube_proxy_log_tail"] = {s: kp.all_lines[-20:] for s, kp in sl.kube_proxy.items()}
            for kp in sl.kube_proxy.values():
                kp.new_lines()
            results["weir_metrics"] = sl.weir.weirctl("metrics")
            results["node_rulesets"] = {
                s: run(in_netns(ns, ["nft", "list", "ruleset"]), check=False).stdout.splitlines()
                for s, ns in sl.node_ns.items()
            }
            progress("removing the lab")
    except Exception as e:  # the lab is gone by now; the root namespace is still checked
        error = f"{type(e).__name__}: {e}"
        progress(f"FAILED: {error}")
    left = leftovers(lab_id) if lab_id else []
    diff = root_diff(before, root_snapshot())
    diff.update(root_diff(rules_before, rules_snapshot()))
    env["loadavg_end"] = os.getloadavg()

    rows = summary_rows(results) if "median" in results else []
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = args.out / f"service_bench-{stamp}.json"
    png_path = args.out / f"service_bench-{stamp}.png"
    json_path.write_text(
        json.dumps(
            {
                "environment": env,
                "summary": rows,
                "results": results,
                "error": error,
                "root_namespace_changes": diff,
                "lab_leftovers": left,
            },
            indent=1,
            default=str,
        )
        + "\n"
    )
    print()
    if rows:
        plot(
            rows,
            png_path,
            f"{env['time']}  load {env['loadavg_start'][0]:.2f} -> {env['loadavg_end'][0]:.2f}  "
            f"kernel {env['kernel']}  {env['cpus']} CPUs  {env['cpu_model']}  {env['kube_proxy']}; "
            f"median of {args.rounds} x {args.duration:g}s, "
            f"TCP {args.concurrency} in flight, UDP {args.udp_flows} flows of {args.udp_size}-byte datagrams",
        )
        print(format_summary(rows))
        print(
            f"(values: median of {args.rounds} run(s) of {args.duration:g}s per target; ratios: median of the "
            f"rounds' ratios; TCP: {args.concurrency} connections "
            "in flight, one request each, closed with a reset; UDP: "
            f"{args.udp_flows} flows of {args.udp_size}-byte datagrams, counted in the backend pod's UDP MIB; "
            "CPU (lab): "
            "user + system time of the client, the subject's servers and proxy, and ksoftirqd, which includes the "
            "packet processing done in their context; CPU (machine): all CPUs' busy time from /proc/stat, other work "
            "on the machine included; TCP errors per target: "
            + ", ".join(
                f"{kind} {s} {sum(r['errors'] for r in results['runs'][kind][s])}"
                for kind in TCP_KINDS
                for s in SUBJECTS
            )
            + ")"
        )
        print()
        shares = [run["client_cpu_share"] for by in results["runs"].values() for rs in by.values() for run in rs]
        print(
            f"client CPU share per run (its CPU time / the run's duration): {min(shares):.0%} to {max(shares):.0%}. "
            "The client is pinned to one CPU: a run whose client got much less than all of it measured the CPU "
            "share it got from other work more than the dataplane; the CPU-per-request rows hold either way."
        )
        print()
        met = [r for r in rows if r["target"]]
        print(
            f"targets met: {sum(r['met'] for r in met)}/{len(met)}  (load average "
            f"{' '.join(f'{x:.2f}' for x in env['loadavg_start'])} at start, "
            f"{' '.join(f'{x:.2f}' for x in env['loadavg_end'])} at end)"
        )
    return finish_report(diff, left, json_path, png_path if rows else None, error)


if __name__ == "__main__":
    sys.exit(main())
