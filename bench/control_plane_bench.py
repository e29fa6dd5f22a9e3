"""weir's control plane against upstream kube-proxy (iptables and nftables modes), measured in one run
on the same API objects: a real etcd + kube-apiserver in a lab namespace on the lab fabric, N Services
of 10 endpoints each, and every proxy watching it with --kubeconfig from a lab namespace of its own.

  1. Start to synced with N Services: weir-agent on a fresh node (time from start to the log line
     "synced N frontends", and its RSS), and kube-proxy in a fresh namespace per mode (time from start
     to its first complete "SyncProxyRules", checked against the rules it wrote).
  2. Change latency: one EndpointSlice write that adds a backend (JSON merge patch from a client in
     the control plane's namespace) until the new backend is in weir's services map on node1 (a bpf()
     map lookup every millisecond) or in kube-proxy's rules (`iptables -S <chain>` or
     `nft list chain` in its namespace, every ~5 ms); p50 and p99.
  3. connect() latency to a ClusterIP whose only backend is a local echo pod, as the number of
     Services grows (7, 1k, 10k): weir through socket LB (client in node1's cgroup) and per packet,
     kube-proxy iptables and nftables (client pod -> node namespace -> echo pod); the direct connect
     to the pod is each one's baseline.

Prints tables against the targets (weir: synced < 5 s, RSS < 200 MB, change p99 < 100 ms) and writes
JSON and a PNG into bench/results/. Every process that talks to the API server or sends traffic runs
in a namespace the lab made, and kube-proxy's rules live only in its own lab namespace; the root
namespace (links, addresses, routes, iptables-save, ip6tables-save, nft ruleset) is snapshotted before
and compared after, and any change fails the run.

    sudo python3 -m bench.control_plane_bench [--quick]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.lb_bench import CONNECT_CLIENT, PORTS_PER_TARGET, format_table, number
from bench.report import SNAPSHOT_TOOLS, finish_figure, finish_report, percentile, progress, root_diff, root_snapshot
from weirlab.cluster import Cluster, node_ip
from weirlab.kube.control_plane import ControlPlane, kube_bin_dir, missing_binaries
from weirlab.lab import BUILD, WEIR_AGENT, WEIR_CNI, WEIRCTL, Lab, in_netns, leftovers, run

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
KUBE_PROXY = kube_bin_dir() / "kube-proxy"

API_ADDRESS = "192.168.50.200"
NAMESPACE = "default"
PORT_NAME = "http"
SERVICE_PORT = 80
TARGET_PORT = 8080
CLUSTER_CIDR = "10.244.0.0/16"
BACKENDS_PER_SERVICE = 10

SUBJECTS = ("weir", "iptables", "nftables")
LABELS = {"weir": "weir", "iptables": "kube-proxy iptables", "nftables": "kube-proxy nftables"}
# Each subject has a probe Service (its only endpoint is the subject's echo pod; part 3) and a change
# Service (10 fake endpoints, one more per change; part 2). With `kubernetes` that is 7 Services.
PROBE_IP = {"weir": "10.96.0.10", "iptables": "10.96.0.11", "nftables": "10.96.0.12"}
CHANGE_IP = {"weir": "10.96.0.20", "iptables": "10.96.0.21", "nftables": "10.96.0.22"}
FIXED_SERVICES = 7
# kube-proxy nodes: (role, fabric address, pod subnets' third octet or None for the fresh-start ones)
KP_NODES = {"iptables": ("ipt1", "192.168.50.11", 11), "nftables": ("nft1", "192.168.50.12", 12)}
KP_FRESH = {"iptables": ("ipt2", "192.168.50.13"), "nftables": ("nft2", "192.168.50.14")}

TARGET_SYNC_S = 5.0
TARGET_RSS_MB = 200.0
TARGET_CHANGE_P99_MS = 100.0


# ---------------------------------------------------------------------------------------------
# API objects


def bulk_name(i: int) -> str:
    return f"bulk-{i:05d}"


def bulk_ip(i: int) -> str:
    """ClusterIPs 10.96.1.1 onwards (the bench's own are in 10.96.0.0/24)."""
    return f"10.96.{1 + i // 250}.{1 + i % 250}"


def backend_ip(k: int) -> str:
    """Fake endpoint addresses, 10.128.1.0 onwards: nothing ever sends to them."""
    k += 256
    return f"10.{128 + (k >> 16)}.{(k >> 8) & 255}.{k & 255}"


def change_base_ip(subject: str, j: int) -> str:
    return f"10.200.{SUBJECTS.index(subject)}.{j + 1}"


def change_new_ip(subject: str, n: int) -> str:
    """The backend that change n (1-based) adds."""
    return f"10.201.{SUBJECTS.index(subject)}.{n}"


def service_obj(name: str, cluster_ip: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": TARGET_PORT, "protocol": "TCP"}],
        },
    }


def endpoints(addresses: list[str], node_name: str = "elsewhere") -> list[dict]:
    return [
        {"addresses": [a], "nodeName": node_name, "conditions": {"ready": True, "serving": True, "terminating": False}}
        for a in addresses
    ]


def slice_obj(service: str, eps: list[dict]) -> dict:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-1",
            "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": service, "endpointslice.kubernetes.io/managed-by": "weir-bench"},
        },
        "addressType": "IPv4",
        "endpoints": eps,
        "ports": [{"name": PORT_NAME, "port": TARGET_PORT, "protocol": "TCP"}],
    }


def node_obj(name: str, address: str) -> dict:
    # Status can be set on create; kube-proxy waits up to 30 s for its Node's addresses otherwise.
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}]},
    }


SERVICES_PATH = f"/api/v1/namespaces/{NAMESPACE}/services"
SLICES_PATH = f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices"


def bulk_items(first: int, last: int) -> list[list]:
    """[path, object] for bulk Services first..last-1, each followed by its EndpointSlice."""
    items = []
    for i in range(first, last):
        name = bulk_name(i)
        items.append([SERVICES_PATH, service_obj(name, bulk_ip(i))])
        items.append(
            [
                SLICES_PATH,
                slice_obj(
                    name, endpoints([backend_ip(i * BACKENDS_PER_SERVICE + j) for j in range(BACKENDS_PER_SERVICE)])
                ),
            ]
        )
    return items


# ---------------------------------------------------------------------------------------------
# Scripts that run inside lab namespaces
# Each is a file of bench/programs/, copied into the lab and run in a namespace there.
PROGRAMS = Path(__file__).resolve().parent / "programs"

# An API client in the control plane's namespace, driven by JSON lines on stdin:
#   {"op": "bulk", "file": F, "threads": T}: POSTs every [path, object] line of F over T keep-alive
#     connections; progress lines, then {"done": n, "seconds": s, "errors": [...]}
#   {"op": "request", "method", "path", "body", "content_type"}: one request; {"status", "t_send"
#     (CLOCK_MONOTONIC ns, just before sending), "t_send_wall", "t_done", "body"}
KUBE_CLIENT = (PROGRAMS / "kube_client.py").read_text()

# A poller of one nftables chain's rules in the namespace it runs in (kube-proxy's): a netlink dump
# filtered to that chain (NFT_MSG_GETRULE with table and chain), so that one poll costs tens of
# microseconds, where `nft list chain` reads the whole ruleset first (about 1 s with 10k Services).
# iptables-nft keeps iptables rules in nftables tables too ("nat" here). Driven by JSON lines on stdin:
#   {"table", "chain", "kind", "want", "timeout", "interval"} -> {"value", "t_seen", "polls", "poll_us"}
# "sep" counts the rules that jump to a KUBE-SEP-* chain (iptables: one per endpoint); "numgen" is
# the modulus of the rule's `numgen random mod N` (nftables: N endpoints). want null: one poll.
RULE_POLLER = (PROGRAMS / "rule_poller.py").read_text()

# The echo pods' server: accept and close (the client only times connect()).
ACCEPT_SERVER = (PROGRAMS / "accept_server.py").read_text()

PIN = {"client": [], "server": []}


class KubeClient:
    """The KUBE_CLIENT process in the control plane's namespace."""

    def __init__(self, lab: Lab, cp: ControlPlane):
        script = lab.dir / "kube_client.py"
        script.write_text(KUBE_CLIENT)
        argv = in_netns(
            cp.netns,
            [
                "python3",
                str(script),
                cp.server,
                str(cp.pki / "ca.crt"),
                str(cp.pki / "admin.crt"),
                str(cp.pki / "admin.key"),
            ],
        )
        self.proc = lab.spawn(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, NO_PROXY="*", no_proxy="*"),
        )
        self.dir = lab.dir
        self.batches = 0

    def _send(self, cmd: dict) -> None:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the API client ended (exit {self.proc.poll()})")
        return json.loads(line)

    def bulk(self, items: list[list], threads: int, what: str) -> dict:
        self.batches += 1
        path = self.dir / f"bulk-{self.batches}.jsonl"
        path.write_text("".join(json.dumps(item, separators=(",", ":")) + "\n" for item in items))
        self._send({"op": "bulk", "file": str(path), "threads": threads})
        while True:
            msg = self._read()
            if "progress" in msg:
                progress(f"  {what}: {msg['progress']}/{msg['of']} objects, {msg['progress'] / msg['seconds']:.0f}/s")
                continue
            path.unlink()
            if msg["error_count"]:
                raise RuntimeError(f"{what}: {msg['error_count']} objects failed, e.g. {msg['errors'][:3]}")
            return msg

    def request(self, method: str, path: str, body: dict | None = None, content_type: str = "application/json") -> dict:
        self.start_request(method, path, body, content_type)
        return self.finish_request()

    def start_request(
        self, method: str, path: str, body: dict | None = None, content_type: str = "application/json"
    ) -> None:
        self._send(
            {
                "op": "request",
                "method": method,
                "path": path,
                "body": None if body is None else json.dumps(body),
                "content_type": content_type,
            }
        )

    def finish_request(self) -> dict:
        msg = self._read()
        if msg["status"] not in (200, 201):
            raise RuntimeError(f"API request failed: {msg['status']} {msg['body']}")
        return msg


# ---------------------------------------------------------------------------------------------
# weir's services map, read from its pin (no network involved)

POLLER = BUILD / "bench" / "weir_frontend_poller"


class FrontendPoller:
    """bench/frontend_poller.cc on the services map's pin: a frontend's backend count per request,
    its key encoded by weir's ABI codec. The change benchmark polls every millisecond to time when a
    change lands, so the probe is a long-running process (a pipe round trip per poll), not an exec of
    weirctl (several milliseconds, which would blur the latency measured)."""

    def __init__(self, pin: Path):
        self.proc = subprocess.Popen([str(POLLER), str(pin)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def backends(self, ip: str, port: int = SERVICE_PORT) -> int | None:
        """backend_count of the TCP frontend ip:port (external or internal entry); None when absent."""
        self.proc.stdin.write(f"{ip} {port}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if not answer or answer.startswith("error"):
            raise RuntimeError(f"weir_frontend_poller: {answer or 'exited'}")
        return None if answer == "none" else int(answer)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


# ---------------------------------------------------------------------------------------------
# Logs


class LogFollower:
    """New lines of a growing log file."""

    def __init__(self, path: Path, from_end: bool = False):
        self.path = path
        self.offset = path.stat().st_size if from_end and path.exists() else 0
        self.partial = ""

    def lines(self) -> list[str]:
        try:
            with open(self.path, errors="replace") as f:
                f.seek(self.offset)
                data = f.read()
                self.offset = f.tell()
        except FileNotFoundError:
            return []
        data = self.partial + data
        parts = data.split("\n")
        self.partial = parts.pop()
        return parts


SYNCED_RE = re.compile(r"synced .*?\b(\d+) frontends, (\d+) backends .* in (\d+) us")
KLOG_RE = re.compile(r"^[IWEF](\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6})")


def klog_wall(line: str) -> float | None:
    """A klog line's timestamp (local time) as seconds since the epoch."""
    m = KLOG_RE.match(line)
    if not m:
        return None
    mo, d, hh, mm, ss, us = (int(x) for x in m.groups())
    now = time.localtime()
    t = time.mktime((now.tm_year, mo, d, hh, mm, ss, 0, 0, -1)) + us / 1e6
    return t - 365 * 86400 if t > time.time() + 86400 else t


def go_duration_ms(text: str) -> float | None:
    units = {"h": 3600e3, "m": 60e3, "s": 1e3, "ms": 1.0, "us": 1e-3, "µs": 1e-3, "ns": 1e-6}
    parts = re.findall(r"([\d.]+)(h|ms|m|s|us|µs|ns)", text)
    return sum(float(v) * units[u] for v, u in parts) if parts else None


def sync_lines(lines: list[str]) -> list[dict]:
    """kube-proxy's IPv4 "SyncProxyRules complete" lines: {wall, elapsed_ms, failed}."""
    out, failed = [], False
    for line in lines:
        if 'ipFamily="IPv4"' not in line:
            continue
        if '"Syncing ' in line:
            failed = False
        elif '"Sync failed"' in line:
            failed = True
        elif '"SyncProxyRules complete"' in line:
            m = re.search(r'elapsed="([^"]+)"', line)
            out.append(
                {"wall": klog_wall(line), "elapsed_ms": go_duration_ms(m.group(1)) if m else None, "failed": failed}
            )
    return out


def cpu_seconds(pid: int) -> float:
    """User + system time of a process, of its waited-for children and of the children still running
    (kube-proxy's iptables-restore and nft runs)."""

    def stat(p) -> list[str]:
        return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()

    ticks = sum(int(x) for x in stat(pid)[11:15])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = stat(entry.name)
            except OSError:
                continue
            if fields[1] == str(pid):
                ticks += sum(int(x) for x in fields[11:13])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    get = lambda k: int(re.search(rf"^{k}:\s+(\d+) kB", status, re.M).group(1)) / 1024
    return {"rss_mb": get("VmRSS"), "hwm_mb": get("VmHWM")}


# ---------------------------------------------------------------------------------------------
# kube-proxy


def iptables_chain(service: str) -> str:
    """KUBE-SVC-<hash> of a ClusterIP port (pkg/proxy/iptables servicePortPolicyClusterChain)."""
    name = f"{NAMESPACE}/{service}:{PORT_NAME}"
    return "KUBE-SVC-" + base64.b32encode(hashlib.sha256((name + "tcp").encode()).digest()).decode()[:16]


def nftables_chain(service: str) -> str:
    """service-<hash>-ns/name/tcp/port (pkg/proxy/nftables servicePortChainNameBase)."""
    name = f"{NAMESPACE}/{service}/tcp/{PORT_NAME}"
    return "service-" + base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:8] + "-" + name


class KubeProxy:
    """Upstream kube-proxy in a lab namespace (its rules stay there)."""

    def __init__(self, lab: Lab, netns: str, name: str, mode: str, address: str, kubeconfig: Path):
        self.lab, self.netns, self.name, self.mode = lab, netns, name, mode
        self.log_path = lab.dir / f"kube-proxy-{name}.log"
        argv = in_netns(
            netns,
            [
                str(KUBE_PROXY),
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={name}",
                f"--proxy-mode={mode}",
                f"--cluster-cidr={CLUSTER_CIDR}",
                f"--bind-address={address}",
                # Leave every conntrack setting alone (nf_conntrack_max and the hash size are the machine's).
                "--conntrack-max-per-core=0",
                "--conntrack-tcp-timeout-established=0",
                "--conntrack-tcp-timeout-close-wait=0",
                "--oom-score-adj=0",
                "--healthz-bind-address=127.0.0.1:10256",
                "--metrics-bind-address=127.0.0.1:10249",
                "--v=2",
            ],
        )
        self.log = open(self.log_path, "w")
        self.t0 = time.monotonic()
        self.t0_wall = time.time()
        self.proc = lab.spawn(argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.follower = LogFollower(self.log_path)
        self.all_lines: list[str] = []
        self.poller: subprocess.Popen | None = None

    def poll_rules(self, service: str, want: int | None, timeout: float = 30, interval: float = 0.001) -> dict:
        """The rule poller (RULE_POLLER, in this namespace): the backends the rules of `service` have, or
        with `want`, polls until they have that many and says when it saw it (CLOCK_MONOTONIC ns)."""
        if self.poller is None:
            script = self.lab.dir / "rule_poller.py"
            script.write_text(RULE_POLLER)
            self.poller = self.lab.spawn(
                in_netns(self.netns, ["python3", str(script)]), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            if self.poller.stdout.readline().strip() != "ready":
                raise RuntimeError(f"rule poller in {self.netns} did not start")
        if self.mode == "iptables":
            cmd = {"table": "nat", "chain": iptables_chain(service), "kind": "sep"}
        else:
            cmd = {"table": "kube-proxy", "chain": nftables_chain(service), "kind": "numgen"}
        cmd.update(want=want, timeout=timeout, interval=interval)
        self.poller.stdin.write(json.dumps(cmd) + "\n")
        self.poller.stdin.flush()
        line = self.poller.stdout.readline()
        if not line:
            raise RuntimeError(f"rule poller in {self.netns} ended")
        return json.loads(line)

    def new_lines(self) -> list[str]:
        lines = self.follower.lines()
        self.all_lines += lines
        return lines

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"kube-proxy {self.name} exited ({self.proc.returncode}):\n"
                + "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
            )

    def exec(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        return run(in_netns(self.netns, argv), check=check)

    def service_rule_count(self) -> int:
        """ClusterIP Services with endpoints that the rules in the namespace serve."""
        if self.mode == "iptables":
            out = self.exec(["iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES"], check=False).stdout
            return sum(1 for line in out.splitlines() if " -j KUBE-SVC-" in line)
        out = self.exec(["nft", "list", "map", "ip", "kube-proxy", "service-ips"], check=False).stdout
        return out.count("goto service-")

    def list_service(self, service: str) -> subprocess.CompletedProcess:
        if self.mode == "iptables":
            return self.exec(["iptables", "-w", "-t", "nat", "-S", iptables_chain(service)], check=False)
        return self.exec(["nft", "list", "chain", "ip", "kube-proxy", nftables_chain(service)], check=False)

    def serves(self, service: str, address: str, backends: int) -> bool:
        """Whether the rules of `service` have the backend `address` (as one of `backends`). iptables:
        KUBE-SVC-* jumps to one KUBE-SEP-* chain per endpoint (the address is in that chain, not in
        the jump); nftables: the service chain has the addresses, in a `numgen random mod N` map (or a
        vmap of endpoint chains named after them)."""
        listing = self.list_service(service).stdout
        if self.mode == "iptables":
            return listing.count(" -j KUBE-SEP-") == backends
        return (
            f"numgen random mod {backends} " in listing
            and re.search(rf"(?<![\d.]){re.escape(address)}(?!\d)", listing) is not None
        )

    def wait_synced(self, services: int, timeout: float) -> dict:
        """Until a complete IPv4 sync is logged and the rules serve `services` ClusterIPs."""
        deadline = time.monotonic() + timeout
        first_complete = None
        while time.monotonic() < deadline:
            self.check_alive()
            self.new_lines()
            done = [s for s in sync_lines(self.all_lines) if not s["failed"]]
            if done and first_complete is None:
                first_complete = {"seen_s": time.monotonic() - self.t0, **done[0]}
            if done and self.service_rule_count() >= services:
                return {"first_complete": first_complete, "checked_s": time.monotonic() - self.t0, "syncs": len(done)}
            time.sleep(0.05 if not done else 0.5)
        raise TimeoutError(
            f"kube-proxy {self.name}: rules for {services} Services not there after {timeout:.0f}s "
            f"(has {self.service_rule_count()}); log tail:\n" + "\n".join(self.all_lines[-20:])
        )

    def wait_quiet(self, quiet: float, timeout: float = 60) -> None:
        """Until no sync has completed for `quiet` seconds (so the next change meets no min-sync-period
        hold-back left from catching up after a pause)."""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline:
            self.check_alive()
            if sync_lines(self.new_lines()):
                last = time.monotonic()
            if time.monotonic() - last >= quiet:
                return
            time.sleep(0.05)
        raise TimeoutError(f"kube-proxy {self.name} did not settle")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------------------------------------
# The lab


class Bench:
    """Control plane, weir's node1 (running throughout) and node2 (fresh start), kube-proxy nodes."""

    def __init__(self, lab: Lab, args: argparse.Namespace):
        self.lab, self.args = lab, args
        self.paused: set[int] = set()
        # The agents are told the control plane's kubeconfig before it runs (it needs the fabric first).
        cp_dir = lab.dir / "cp"
        self.cluster = Cluster(lab, 2, kubeconfig=cp_dir / "admin.kubeconfig", start_agents=False)
        self.node1, self.node2 = self.cluster.nodes
        self.cp = ControlPlane(cp_dir, netns=self.cluster.add_client("api", API_ADDRESS), address=API_ADDRESS)
        assert self.cp.admin_kubeconfig == cp_dir / "admin.kubeconfig"
        lab.cleanups.insert(0, self.cp.stop)  # lab.close runs cleanups newest first: this one last
        lab.cleanups.append(self.resume_all)
        progress(f"control plane: etcd + kube-apiserver in {self.cp.netns}, https://{API_ADDRESS}:6443")
        self.cp.start()
        self.client = KubeClient(lab, self.cp)
        self.services_total = 1  # `kubernetes`

        progress("weir node1: agent (--kubeconfig), pods client and echo (weir CNI)")
        self.node1.start_agent(*self.cluster.agent_args["node1"])
        self.weir_log = LogFollower(self.node1.dir / "agent.log")
        self.weir_client = self.node1.add_pod("client")
        self.weir_echo = self.node1.add_pod("echo")
        self.services_map = FrontendPoller(self.node1.bpf_root / "weir_services")
        lab.cleanups.append(self.services_map.close)

        self.scripts = {"server": lab.dir / "accept_server.py", "connect": lab.dir / "connect_client.py"}
        self.scripts["server"].write_text(ACCEPT_SERVER)
        self.scripts["connect"].write_text(CONNECT_CLIENT)
        self.serve(self.weir_echo.netns)

        self.kp: dict[str, KubeProxy] = {}
        self.kp_pods: dict[str, dict] = {}
        if not args.no_kube_proxy:
            for mode, (role, address, octet) in KP_NODES.items():
                netns = self.cluster.add_client(role, address)
                run(in_netns(netns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]))
                self.kp_pods[mode] = {
                    "netns": netns,
                    "echo": self.veth_pod(netns, f"{role}-echo", octet),
                    "client": self.veth_pod(netns, f"{role}-client", octet + 10),
                }
                self.serve(self.kp_pods[mode]["echo"][0])

        # Nodes (kube-proxy waits for its Node's addresses), then the bench's own Services.
        items = [["/api/v1/nodes", node_obj(n.name, node_ip(i))] for i, n in enumerate(self.cluster.nodes, 1)]
        for mode in KP_NODES:
            items.append(["/api/v1/nodes", node_obj(KP_NODES[mode][0], KP_NODES[mode][1])])
            items.append(["/api/v1/nodes", node_obj(KP_FRESH[mode][0], KP_FRESH[mode][1])])
        for subject in SUBJECTS:
            probe_backend, probe_node = self.echo_address(subject)
            items.append([SERVICES_PATH, service_obj(f"probe-{subject}", PROBE_IP[subject])])
            items.append([SLICES_PATH, slice_obj(f"probe-{subject}", endpoints([probe_backend], probe_node))])
            items.append([SERVICES_PATH, service_obj(f"change-{subject}", CHANGE_IP[subject])])
            items.append([SLICES_PATH, slice_obj(f"change-{subject}", self.change_endpoints(subject, 0))])
        self.client.bulk(items, 1, "the bench's Nodes and Services")
        self.services_total += 2 * len(SUBJECTS)

        if not args.no_kube_proxy:
            for mode, (role, address, _) in KP_NODES.items():
                progress(f"kube-proxy {mode} in {self.kp_pods[mode]['netns']}")
                self.kp[mode] = KubeProxy(
                    lab, self.kp_pods[mode]["netns"], role, mode, address, self.cp.admin_kubeconfig
                )
        self.wait_all_synced(timeout=90)

    # -- wiring --------------------------------------------------------------------------------------

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

    def serve(self, netns: str) -> None:
        proc = self.lab.spawn(
            in_netns(netns, [*PIN["server"], "python3", str(self.scripts["server"]), str(TARGET_PORT)]),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"echo server in {netns} did not start")

    def echo_address(self, subject: str) -> tuple[str, str]:
        if subject == "weir":
            return self.weir_echo.ipv4, "node1"
        if subject in self.kp_pods:
            return self.kp_pods[subject]["echo"][1], KP_NODES[subject][0]
        return "10.244.99.2", "elsewhere"  # --no-kube-proxy: a Service nobody connects to

    @staticmethod
    def change_endpoints(subject: str, n: int) -> list[dict]:
        return endpoints(
            [change_base_ip(subject, j) for j in range(BACKENDS_PER_SERVICE)]
            + [change_new_ip(subject, k) for k in range(1, n + 1)]
        )

    # -- pausing: each proxy is measured with the others stopped (SIGSTOP) ------------------------------

    def long_running_pids(self) -> dict[str, int]:
        pids = {"weir": self.node1.agent.pid}
        pids.update({mode: kp.proc.pid for mode, kp in self.kp.items()})
        return pids

    def pause_others(self, subject: str) -> None:
        for name, pid in self.long_running_pids().items():
            if name != subject:
                os.kill(pid, signal.SIGSTOP)
                self.paused.add(pid)

    def resume_all(self) -> None:
        for pid in list(self.paused):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.paused.discard(pid)

    # -- sync ----------------------------------------------------------------------------------------

    def weir_synced(self) -> dict | None:
        """The last "synced" line of node1's agent, if any since the last call."""
        last = None
        for line in self.weir_log.lines():
            m = SYNCED_RE.search(line)
            if m:
                last = {"frontends": int(m.group(1)), "backends": int(m.group(2)), "us": int(m.group(3))}
        return last

    def wait_all_synced(self, timeout: float) -> dict:
        """Until weir's node1 and every long-running kube-proxy serve all Services there are."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        want = self.services_total
        result = {}
        last = None
        while "weir" not in result:
            synced = self.weir_synced()
            last = synced or last
            if last and last["frontends"] >= want:
                result["weir"] = {"seconds": time.monotonic() - t0, **last}
                break
            if self.node1.agent.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"weir node1 did not sync {want} frontends (last: {last}):\n"
                    + "\n".join((self.node1.dir / "agent.log").read_text().splitlines()[-20:])
                )
            time.sleep(0.05)
        for mode, kp in self.kp.items():
            # The `kubernetes` Service has no endpoints, so it gets no KUBE-SVC chain / map element.
            kp.wait_synced(want - 1, max(deadline - time.monotonic(), 5))
            result[mode] = {"seconds": time.monotonic() - t0}
        return result

    # -- 1. start to synced --------------------------------------------------------------------------

    def fresh_weir(self) -> dict:
        node = self.node2
        progress(f"weir: starting node2's agent with {self.services_total} Services in the API server")
        self.pause_others("none")
        try:
            t0 = time.monotonic()
            node.start_agent(*self.cluster.agent_args["node2"])  # returns once the datapath is pinned
            loaded = time.monotonic() - t0
            log = LogFollower(node.dir / "agent.log")
            first = None
            while True:
                for line in log.lines():
                    m = SYNCED_RE.search(line)
                    if m and first is None:
                        first = {
                            "seconds": time.monotonic() - t0,
                            "frontends": int(m.group(1)),
                            "backends": int(m.group(2)),
                            "sync_us": int(m.group(3)),
                        }
                if first and first["frontends"] >= self.services_total:
                    break
                if first and first["frontends"] < self.services_total:
                    raise RuntimeError(
                        f"node2's first sync had {first['frontends']} frontends, " f"not {self.services_total}"
                    )
                if node.agent.poll() is not None or time.monotonic() - t0 > 120:
                    raise RuntimeError("node2's agent did not sync:\n" + (node.dir / "agent.log").read_text()[-3000:])
                time.sleep(0.01)
            pid = node.agent.pid
            exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
            if exe != "weir-agent":
                raise RuntimeError(f"node2's agent pid {pid} is {exe}")
            time.sleep(0.5)
            mem = rss_mb(pid)
            status = json.loads(node.weirctl("status", "-o", "json"))
            in_map = next(m["entries"] for m in status["maps"] if m["name"] == "weir_services")
            result = {
                **first,
                "datapath_loaded_s": loaded,
                **mem,
                "frontends_in_map": in_map,
                "cpu_s": cpu_seconds(pid),
            }
        finally:
            node.stop_agent()
            self.resume_all()
        progress(
            f"  weir: synced {result['frontends']} frontends, {result['backends']} backends "
            f"{result['seconds']:.2f}s after start (datapath pinned after {loaded:.2f}s); "
            f"RSS {result['rss_mb']:.0f} MB"
        )
        if in_map != self.services_total:
            raise RuntimeError(f"node2's services map has {in_map} frontends, not {self.services_total}")
        return result

    def fresh_kube_proxy(self, mode: str) -> dict:
        """kube-proxy started in a namespace of its own with every Service there: until its first complete
        sync, or --fresh-timeout (then the result says timed_out, and the run goes on)."""
        role, address = KP_FRESH[mode]
        netns = self.cluster.add_client(role, address)
        timeout = self.args.fresh_timeout
        progress(
            f"kube-proxy {mode}: starting in a fresh namespace {netns} with {self.services_total} Services "
            f"(up to {timeout:.0f}s)"
        )
        self.pause_others("none")
        kp = None
        try:
            kp = KubeProxy(self.lab, netns, role, mode, address, self.cp.admin_kubeconfig)
            try:
                synced = kp.wait_synced(self.services_total - 1, timeout=timeout)
            except TimeoutError:
                kp.new_lines()
                result = {
                    "timed_out": True,
                    "seconds": timeout,
                    **rss_mb(kp.proc.pid),
                    "cpu_s": cpu_seconds(kp.proc.pid),
                    "log_tail": kp.all_lines[-6:],
                }
                progress(
                    f"  kube-proxy {mode}: no complete sync {timeout:.0f}s after start (RSS "
                    f"{result['rss_mb']:.0f} MB); stopped"
                )
            else:
                time.sleep(0.5)
                first = synced["first_complete"]
                result = {
                    "timed_out": False,
                    "seconds": first["seen_s"],
                    "log_seconds": first["wall"] - kp.t0_wall if first["wall"] else None,
                    "sync_ms": first["elapsed_ms"],
                    "checked_s": synced["checked_s"],
                    **rss_mb(kp.proc.pid),
                    "cpu_s": cpu_seconds(kp.proc.pid),
                    "service_rules": kp.service_rule_count(),
                }
                progress(
                    f"  kube-proxy {mode}: first complete sync {result['seconds']:.2f}s after start "
                    f"(its own sync {number(result['sync_ms'])} ms); RSS {result['rss_mb']:.0f} MB"
                )
        finally:
            if kp:
                kp.stop()
            self.resume_all()
        run(["ip", "netns", "delete", netns], check=False)
        self.lab.netns.remove(netns)
        return result

    # -- 2. change latency ---------------------------------------------------------------------------

    def change_latency(self, subject: str, count: int) -> dict:
        service = f"change-{subject}"
        path = f"{SLICES_PATH}/{service}-1"
        samples, writes, polls, syncs_ms, log_ms = [], [], [], [], []
        kp = self.kp.get(subject)
        if kp:
            listing = kp.list_service(service)
            polled = kp.poll_rules(service, None)["value"]
            if (
                listing.returncode != 0
                or not kp.serves(service, change_base_ip(subject, 0), BACKENDS_PER_SERVICE)
                or polled != BACKENDS_PER_SERVICE
            ):
                raise RuntimeError(
                    f"{subject}: the rules of {service} are not where expected (poller: {polled}):\n"
                    f"{listing.stdout}{listing.stderr}"
                )
        gap = 0.3 if subject == "weir" else self.args.kube_proxy_gap
        self.pause_others(subject)
        try:
            if kp:
                kp.wait_quiet(gap)
            for n in range(1, count + 1):
                new_ip = change_new_ip(subject, n)
                if kp:
                    kp.new_lines()
                    mark = len(kp.all_lines)
                self.client.start_request(
                    "PATCH", path, {"endpoints": self.change_endpoints(subject, n)}, "application/merge-patch+json"
                )
                want = BACKENDS_PER_SERVICE + n
                if kp:
                    seen = kp.poll_rules(service, want, timeout=30)
                    found, t_seen = seen["value"] == want, seen["t_seen"]
                    polls.append(seen["poll_us"] / 1000)
                else:
                    deadline = time.monotonic() + 30
                    while True:
                        t_poll = time.monotonic_ns()
                        found = self.services_map.backends(CHANGE_IP[subject]) == want
                        t_seen = time.monotonic_ns()
                        polls.append((t_seen - t_poll) / 1e6)
                        if found or time.monotonic() > deadline:
                            break
                        time.sleep(0.001)
                if not found:
                    detail = (
                        f"frontend: {self.services_map.backends(CHANGE_IP[subject])} backends"
                        if subject == "weir"
                        else kp.list_service(service).stdout + "\n" + "\n".join(kp.all_lines[-15:])
                    )
                    raise TimeoutError(f"{subject}: change {n} ({new_ip}) not seen after 30 s:\n{detail}")
                reply = self.client.finish_request()
                samples.append((t_seen - reply["t_send"]) / 1e6)
                writes.append((reply["t_done"] - reply["t_send"]) / 1e6)
                if kp:
                    time.sleep(0.05)  # the log line follows the rules
                    kp.new_lines()
                    done = [s for s in sync_lines(kp.all_lines[mark:]) if not s["failed"] and s["wall"]]
                    if done:
                        log_ms.append((done[0]["wall"] * 1e9 - reply["t_send_wall"]) / 1e6)
                        syncs_ms.append(done[0]["elapsed_ms"])
                time.sleep(gap)
            if kp and not kp.serves(service, change_new_ip(subject, count), BACKENDS_PER_SERVICE + count):
                raise RuntimeError(
                    f"{subject}: the poller saw {BACKENDS_PER_SERVICE + count} backends, the listing "
                    f"does not:\n{kp.list_service(service).stdout}"
                )
        finally:
            self.resume_all()
        stats = {
            "samples_ms": samples,
            "write_ms": writes,
            "p50_ms": percentile(samples, 50),
            "p99_ms": percentile(samples, 99),
            "max_ms": max(samples),
            "write_p50_ms": percentile(writes, 50),
            "gap_s": gap,
        }
        stats.update({"poll_p50_ms": percentile(polls, 50), "poll_max_ms": max(polls), "polls": len(polls)})
        if log_ms:
            stats.update(
                {
                    "log_samples_ms": log_ms,
                    "log_p50_ms": percentile(log_ms, 50),
                    "log_p99_ms": percentile(log_ms, 99),
                    "sync_elapsed_ms": syncs_ms,
                }
            )
        progress(
            f"  {LABELS[subject]}: p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms"
            + f" (one poll {stats['poll_p50_ms']:.3f} ms"
            + (f"; from its log: p50 {stats['log_p50_ms']:.1f} ms)" if log_ms else ")")
        )
        return stats

    # -- 3. connect() latency ------------------------------------------------------------------------

    def connect_runs(self, stage: int, count: int) -> dict:
        warmup = 20
        offset = stage * (count + warmup)
        runs = []  # (subject, argv, targets)
        weir_direct = self.weir_echo.ipv4
        for in_cgroup in (True, False):
            tag = "sock" if in_cgroup else "pkt"
            targets = [
                [f"weir_clusterip_{tag}", PROBE_IP["weir"], SERVICE_PORT],
                [f"weir_direct_{tag}", weir_direct, TARGET_PORT],
            ]
            for i, t in enumerate(targets):
                t.append(10000 + PORTS_PER_TARGET * (i + (0 if in_cgroup else 2)))
            cmd = [
                *PIN["client"],
                "python3",
                str(self.scripts["connect"]),
                json.dumps(targets),
                str(count),
                str(warmup),
                str(offset),
            ]
            argv = (
                self.cluster.node_cgroup_cmd(self.node1, self.weir_client.netns, cmd)
                if in_cgroup
                else in_netns(self.weir_client.netns, cmd)
            )
            runs.append(("weir", argv))
        for mode, pods in self.kp_pods.items():
            targets = [
                [f"{mode}_clusterip", PROBE_IP[mode], SERVICE_PORT, 10000],
                [f"{mode}_direct", pods["echo"][1], TARGET_PORT, 10000 + PORTS_PER_TARGET],
            ]
            cmd = [
                *PIN["client"],
                "python3",
                str(self.scripts["connect"]),
                json.dumps(targets),
                str(count),
                str(warmup),
                str(offset),
            ]
            runs.append((mode, in_netns(pods["client"][0], cmd)))
        # The subject order rotates with the stage.
        k = stage % len(runs)
        result = {"samples": {}, "errors": {}, "per_packet_translations": {}}
        for subject, argv in runs[k:] + runs[:k]:
            before = self.translated() if subject == "weir" else 0
            res = json.loads(run(argv, timeout=600).stdout)
            if subject == "weir":
                result["per_packet_translations"][next(iter(res["samples"]))] = self.translated() - before
            result["samples"].update(res["samples"])
            result["errors"].update(res["errors"])
        result["stats"] = {
            name: {"p50_us": percentile(v, 50), "p99_us": percentile(v, 99), "n": len(v)}
            for name, v in result["samples"].items()
            if v
        }
        return result

    def translated(self) -> int:
        m = re.search(r"^service_translated\s+(\d+)", self.node1.weirctl("metrics"), re.M)
        return int(m.group(1)) if m else 0

    # -- creating Services ---------------------------------------------------------------------------

    def grow_to(self, total: int) -> dict:
        first = self.services_total - FIXED_SERVICES
        last = total - FIXED_SERVICES
        items = bulk_items(first, last)
        progress(
            f"creating {last - first} Services + {last - first} EndpointSlices "
            f"({self.args.creators} connections in parallel)"
        )
        pids = {
            **self.long_running_pids(),
            "kube-apiserver": self.cp.apiserver.popen.pid,
            "etcd": self.cp.etcd.popen.pid,
        }
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        msg = self.client.bulk(items, self.args.creators, "create")
        self.services_total = total
        rate = len(items) / msg["seconds"]
        progress(f"  created {len(items)} objects in {msg['seconds']:.1f}s ({rate:.0f}/s); waiting for the proxies")
        synced = self.wait_all_synced(timeout=self.args.kube_proxy_timeout)
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        progress(
            "  synced after creation finished: " + ", ".join(f"{k} {v['seconds']:.1f}s" for k, v in synced.items())
        )
        progress(
            "  CPU seconds from the start of creation to synced: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
        )
        return {
            "objects": len(items),
            "seconds": msg["seconds"],
            "per_second": rate,
            "synced_after_s": synced,
            "cpu_s": cpu,
        }


# ---------------------------------------------------------------------------------------------
# Report

CONNECT_ROWS = [  # (key, label, baseline key)
    ("weir_clusterip_sock", "weir ClusterIP, socket LB (client in node1's cgroup)", "weir_direct_sock"),
    ("weir_clusterip_pkt", "weir ClusterIP, per packet (client outside the cgroup)", "weir_direct_pkt"),
    ("iptables_clusterip", "kube-proxy iptables ClusterIP", "iptables_direct"),
    ("nftables_clusterip", "kube-proxy nftables ClusterIP", "nftables_direct"),
    ("weir_direct_sock", "  direct to weir's echo pod (in the cgroup)", None),
    ("weir_direct_pkt", "  direct to weir's echo pod (outside)", None),
    ("iptables_direct", "  direct to the iptables node's echo pod", None),
    ("nftables_direct", "  direct to the nftables node's echo pod", None),
]


def control_rows(results: dict) -> list[dict]:
    fresh, change = results["fresh"], results["change"]
    last_creation = list(results["creation"].values())[-1] if results["creation"] else {}
    rows = []

    def add(key, label, unit, getter, target=None, lower_bound=()):
        """lower_bound: subjects whose value is only a lower bound (kube-proxy gave up at the timeout)."""
        values = {s: getter(s) for s in SUBJECTS}
        row = {
            "key": key,
            "label": label,
            "unit": unit,
            "values": values,
            "target": target,
            "lower_bound": [s for s in lower_bound if values.get(s) is not None],
        }
        if target is not None and values["weir"] is not None:
            row["met"] = values["weir"] < target
        for mode in ("iptables", "nftables"):
            row[f"vs_{mode}"] = values["weir"] / values[mode] if values["weir"] and values.get(mode) else None
        rows.append(row)

    g = lambda d, k: (lambda s: d.get(s, {}).get(k))
    timed_out = [s for s in SUBJECTS if fresh.get(s, {}).get("timed_out")]
    complete = lambda k: (lambda s: None if s in timed_out else fresh.get(s, {}).get(k))
    add(
        "sync_s",
        f"start -> rules for {results['services']} Services",
        "s",
        g(fresh, "seconds"),
        TARGET_SYNC_S,
        lower_bound=timed_out,
    )
    add("rss_mb", "RSS after that sync", "MB", g(fresh, "rss_mb"), TARGET_RSS_MB)
    add("hwm_mb", "  peak RSS (VmHWM)", "MB", g(fresh, "hwm_mb"))
    add(
        "fresh_cpu_s",
        "  CPU time from start to synced (kube-proxy: with its iptables/nft runs)",
        "s",
        g(fresh, "cpu_s"),
        lower_bound=timed_out,
    )
    add(
        "own_sync_ms",
        "  the sync itself (weir: translate + apply; kube-proxy: its log)",
        "ms",
        lambda s: (fresh.get(s, {}).get("sync_us") or 0) / 1000 if s == "weir" else complete("sync_ms")(s),
    )
    add("change_p50", "EndpointSlice change -> rules, p50", "ms", g(change, "p50_ms"))
    add("change_p99", "EndpointSlice change -> rules, p99", "ms", g(change, "p99_ms"), TARGET_CHANGE_P99_MS)
    add("change_log_p50", '  p50 to kube-proxy\'s "SyncProxyRules complete" log line', "ms", g(change, "log_p50_ms"))
    add("change_write_p50", "  API write (PATCH sent -> response), p50", "ms", g(change, "write_p50_ms"))
    add(
        "poll_ms",
        "  one poll (weir: map lookup; kube-proxy: netlink dump of its chain)",
        "ms",
        g(change, "poll_p50_ms"),
    )
    if last_creation:
        names = {"weir": "weir", "iptables": "iptables", "nftables": "nftables"}
        add(
            "creation_cpu_s",
            f"CPU time following the creation of the last {last_creation['objects']} objects",
            "s",
            lambda s: last_creation["cpu_s"].get(names[s]),
        )
    return rows


def format_control_table(rows: list[dict]) -> str:
    header = ["metric", "unit", "weir", "kp iptables", "kp nftables", "weir/ipt", "weir/nft", "target (weir)", "status"]
    body = []
    for r in rows:
        v = r["values"]
        value = lambda s: ("> " if s in r["lower_bound"] else "") + number(v[s])
        ratio = (
            lambda m: "-"
            if r[f"vs_{m}"] is None
            else (("< " if m in r["lower_bound"] else "") + f"{r[f'vs_{m}']:.2g}x")
        )
        target = "-" if r["target"] is None else f"< {number(r['target'])} {r['unit']}"
        status = "(info)" if r["target"] is None else ("met" if r.get("met") else "NOT MET")
        body.append(
            [
                r["label"],
                r["unit"],
                value("weir"),
                value("iptables"),
                value("nftables"),
                ratio("iptables"),
                ratio("nftables"),
                target,
                status,
            ]
        )
    return format_table(header, body)


def format_connect_table(connect: dict) -> str:
    stages = list(connect)
    header = ["connect() to", *[f"{s} svc p50/p99" for s in stages], "p50 largest/smallest", "p50 x direct (largest)"]
    body = []
    for key, label, base in CONNECT_ROWS:
        if not all(key in connect[s]["stats"] for s in stages):
            continue
        st = [connect[s]["stats"][key] for s in stages]
        last = connect[stages[-1]]["stats"]
        vs = f"{last[key]['p50_us'] / last[base]['p50_us']:.2f}x" if base and base in last else "-"
        body.append(
            [
                label,
                *[f"{number(x['p50_us'])} / {number(x['p99_us'])}" for x in st],
                f"{st[-1]['p50_us'] / st[0]['p50_us']:.2f}x",
                vs,
            ]
        )
    return format_table(header, body, left=1)


def plot(results: dict, path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"weir": "#2a7ab9", "iptables": "#b03a2e", "nftables": "#e39b3b"}
    fig, axes = plt.subplots(1, 3, figsize=(19, 7), gridspec_kw={"width_ratios": [6, 4, 4]})
    # (a) connect() latency against the number of Services
    ax = axes[0]
    connect = results["connect"]
    stages = [int(s) for s in connect]
    styles = {
        "weir_clusterip_sock": (colors["weir"], "-", "o", "weir, socket LB"),
        "weir_clusterip_pkt": (colors["weir"], "--", "s", "weir, per packet"),
        "iptables_clusterip": (colors["iptables"], "-", "^", "kube-proxy iptables"),
        "nftables_clusterip": (colors["nftables"], "-", "D", "kube-proxy nftables"),
        "weir_direct_pkt": ("#7fa7c9", ":", ".", "direct to the pod (weir node, outside the cgroup)"),
        "iptables_direct": ("#999999", ":", ".", "direct to the pod (iptables node: crosses its nat rules too)"),
    }
    for key, (color, line, marker, label) in styles.items():
        if not all(key in connect[str(s)]["stats"] for s in stages):
            continue
        p50 = [connect[str(s)]["stats"][key]["p50_us"] for s in stages]
        ax.plot(stages, p50, line, color=color, marker=marker, label=label)
        ax.annotate(
            number(p50[-1]),
            (stages[-1], p50[-1]),
            xytext=(6, 0),
            textcoords="offset points",
            fontsize=8,
            va="center",
            color=color,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Services in the API server (10 endpoints each)")
    ax.set_ylabel("connect() to the ClusterIP, us (p50; p99 in the table)")
    ax.set_title("(3) first packet: connect() latency, backend a local pod")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    # (b) change latency
    ax = axes[1]
    change = results["change"]
    subjects = [s for s in SUBJECTS if s in change]
    xs = range(len(subjects))
    p50 = [change[s]["p50_ms"] for s in subjects]
    p99 = [change[s]["p99_ms"] for s in subjects]
    bars = ax.bar(xs, p50, 0.6, color=[colors[s] for s in subjects], edgecolor="black", linewidth=0.4)
    ax.errorbar(
        xs, p50, yerr=[[0] * len(p50), [b - a for a, b in zip(p50, p99)]], fmt="none", ecolor="black", capsize=4
    )
    for bar, a, b in zip(bars, p50, p99):
        ax.annotate(
            f"p50 {a:.0f}\np99 {b:.0f}",
            (bar.get_x() + bar.get_width() / 2, b),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.axhline(
        TARGET_CHANGE_P99_MS, color="red", linestyle="dashed", linewidth=1.2, label="target (weir): p99 < 100 ms"
    )
    ax.set_xticks(list(xs))
    ax.set_xticklabels([LABELS[s] for s in subjects], fontsize=8.5)
    ax.set_ylabel("ms (bar p50, whisker p99)")
    ax.set_title(f"(2) EndpointSlice change -> rules, {results['services']} Services")
    ax.set_yscale("log")
    ax.set_ylim(min(p50 + [TARGET_CHANGE_P99_MS]) / 3, max(p99 + [TARGET_CHANGE_P99_MS]) * 4)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    # (c) start to synced
    ax = axes[2]
    fresh = results["fresh"]
    subjects = [s for s in SUBJECTS if s in fresh]
    values = [fresh[s]["seconds"] for s in subjects]
    bars = ax.bar(
        range(len(subjects)), values, 0.6, color=[colors[s] for s in subjects], edgecolor="black", linewidth=0.4
    )
    for bar, s in zip(bars, subjects):
        if fresh[s].get("timed_out"):
            bar.set_hatch("//")
            bar.set_alpha(0.5)
        ax.annotate(
            ("no complete sync\nafter " if fresh[s].get("timed_out") else "")
            + f"{fresh[s]['seconds']:.1f} s\nRSS {fresh[s]['rss_mb']:.0f} MB",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.axhline(TARGET_SYNC_S, color="red", linestyle="dashed", linewidth=1.2, label="target (weir): < 5 s")
    ax.set_xticks(range(len(subjects)))
    ax.set_xticklabels([LABELS[s] for s in subjects], fontsize=8.5)
    ax.set_ylabel("seconds from start")
    ax.set_yscale("log")
    ax.set_ylim(min(values + [TARGET_SYNC_S]) / 3, max(values + [TARGET_SYNC_S]) * 4)
    ax.set_title(f"(1) start -> rules for {results['services']} Services")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    finish_figure(
        fig,
        path,
        "weir's control plane against upstream kube-proxy (same API server, same objects, same run)",
        subtitle,
    )


# ---------------------------------------------------------------------------------------------


def rules_snapshot() -> dict[str, list[str]]:
    """The root namespace's full rulesets (iptables-save and ip6tables-save without counters)."""
    out = {}
    for name in ("iptables-save", "ip6tables-save"):
        if shutil.which(name) is None:
            continue
        proc = subprocess.run([name], text=True, capture_output=True)
        text = proc.stdout if proc.returncode == 0 else f"<{name} failed: {proc.stderr.strip()}>"
        out[name] = sorted(
            re.sub(r"\[\d+:\d+\]", "[0:0]", l) for l in text.splitlines() if l.strip() and not l.startswith("#")
        )
    proc = subprocess.run(["nft", "list", "ruleset"], text=True, capture_output=True)
    out["nft list ruleset"] = (
        sorted(l.strip() for l in proc.stdout.splitlines() if l.strip())
        if proc.returncode == 0
        else [f"<nft failed: {proc.stderr.strip()}>"]
    )
    return out


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
    parser.add_argument("--quick", action="store_true", help="1000 Services, fewer samples")
    parser.add_argument(
        "--services", type=int, help="Services in the API server at the end (default 10000, quick 1000)"
    )
    parser.add_argument("--changes", type=int, help="EndpointSlice changes per proxy (default 30, quick 10)")
    parser.add_argument("--connects", type=int, help="connect() samples per target and stage (default 1000, quick 200)")
    parser.add_argument("--creators", type=int, default=8, help="API connections in parallel while creating")
    parser.add_argument(
        "--kube-proxy-gap",
        type=float,
        default=1.2,
        help="seconds between kube-proxy changes (its --iptables/nftables-min-sync-period is 1 s)",
    )
    parser.add_argument(
        "--kube-proxy-timeout",
        type=float,
        default=300,
        help="seconds to wait for the long-running proxies to follow a creation stage",
    )
    parser.add_argument(
        "--fresh-timeout",
        type=float,
        help="seconds a freshly started kube-proxy gets to sync everything (default 150, quick 60)",
    )
    parser.add_argument("--no-kube-proxy", action="store_true", help="weir only")
    parser.add_argument("--no-pin", action="store_true", help="do not pin clients to CPU 0 and servers to CPU 1")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for JSON and PNG")
    args = parser.parse_args()
    args.services = args.services or (1000 if args.quick else 10000)
    args.changes = args.changes or (10 if args.quick else 30)
    args.connects = args.connects or (200 if args.quick else 1000)
    args.fresh_timeout = args.fresh_timeout or (60 if args.quick else 150)
    stages = sorted({s for s in (FIXED_SERVICES, 1000, args.services) if FIXED_SERVICES <= s <= args.services})
    if args.services > 250 * 254:
        parser.error("at most 63500 Services (ClusterIPs 10.96.1.1 to 10.96.254.250)")

    if os.geteuid() != 0:
        print("needs root (network namespaces, bpffs, BPF programs, cgroups)", file=sys.stderr)
        return 2
    missing = [str(p) for p in (WEIR_CNI, WEIR_AGENT, WEIRCTL, POLLER) if not p.exists()]
    missing += missing_binaries(names=("etcd", "kube-apiserver", "kubectl", "kube-proxy"))
    tools = ("nsenter", "taskset", "curl", "openssl", "iptables-save", "ip6tables-save", *SNAPSHOT_TOOLS)
    missing += [t for t in tools if shutil.which(t) is None]
    if missing:
        print(
            f"missing: {', '.join(missing)} (build with scripts/build.sh, set WEIR_BUILD_DIR for another build "
            "dir; Kubernetes with weirlab/kube/build_upstream.sh)",
            file=sys.stderr,
        )
        return 2
    if not args.no_pin and (os.cpu_count() or 1) >= 2:
        PIN["client"], PIN["server"] = ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    env = environment(args)
    progress(
        f"load average {' '.join(f'{x:.2f}' for x in env['loadavg_start'])}"
        + ("  (WARNING: other work on this machine adds noise)" if env["loadavg_start"][0] > 0.5 else "")
    )
    progress(
        f"weir from {BUILD}, {env['kube_proxy']} from {kube_bin_dir()}; {args.services} Services, " f"stages {stages}"
    )
    before = root_snapshot()
    rules_before = rules_snapshot()

    results = {"services": args.services, "stages": stages, "creation": {}, "connect": {}, "change": {}, "fresh": {}}
    lab_id = None
    error = None
    try:
        with Lab("cpb") as lab:
            lab_id = lab.id
            bench = Bench(lab, args)
            for i, stage in enumerate(stages):
                if stage > bench.services_total:
                    results["creation"][str(stage)] = bench.grow_to(stage)
                progress(f"connect() with {bench.services_total} Services: {args.connects} per target")
                results["connect"][str(stage)] = bench.connect_runs(i, args.connects)
                st = results["connect"][str(stage)]["stats"]
                progress("  p50 us: " + ", ".join(f"{k} {number(v['p50_us'])}" for k, v in st.items()))
            results["fresh"]["weir"] = bench.fresh_weir()
            for mode in bench.kp:
                results["fresh"][mode] = bench.fresh_kube_proxy(mode)
            for subject in ("weir", *bench.kp):
                progress(f"{LABELS[subject]}: {args.changes} EndpointSlice changes (others paused)")
                results["change"][subject] = bench.change_latency(subject, args.changes)
            results["rss_after_mb"] = {
                "weir node1": rss_mb(bench.node1.agent.pid),
                **{f"kube-proxy {m}": rss_mb(kp.proc.pid) for m, kp in bench.kp.items()},
            }
            results["weir_metrics"] = bench.node1.weirctl("metrics")
            results["logs_tail"] = {
                "weir node1": (bench.node1.dir / "agent.log").read_text(errors="replace").splitlines()[-40:],
                **{f"kube-proxy {m}": kp.all_lines[-40:] for m, kp in bench.kp.items()},
            }
            progress("removing the lab")
    except Exception as e:  # the lab is gone by now; the root namespace is still checked
        error = f"{type(e).__name__}: {e}"
        progress(f"FAILED: {error}")
    left = leftovers(lab_id) if lab_id else []
    diff = root_diff(before, root_snapshot())
    diff.update(root_diff(rules_before, rules_snapshot()))
    env["loadavg_end"] = os.getloadavg()

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = args.out / f"control_plane_bench-{stamp}.json"
    png_path = args.out / f"control_plane_bench-{stamp}.png"
    rows = control_rows(results) if results["fresh"] and results["change"] else []
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
            results,
            png_path,
            f"{env['time']}  load {env['loadavg_start'][0]:.2f} -> {env['loadavg_end'][0]:.2f}  "
            f"kernel {env['kernel']}  {env['cpus']} CPUs  {env['cpu_model']}  {env['kube_proxy']}; "
            f"{args.changes} changes, {args.connects} connects per target and stage",
        )
        print(format_control_table(rows))
        print(
            "(Services created: "
            + ", ".join(
                f"{v['objects']} objects in {v['seconds']:.1f}s ({v['per_second']:.0f}/s)"
                for v in results["creation"].values()
            )
            + f"; changes: {args.changes} per proxy, the others paused, kube-proxy's {args.kube_proxy_gap}s apart)"
        )
        print()
    if results["connect"]:
        print(format_connect_table(results["connect"]))
        print(
            f"(us; {args.connects} connect() per target and stage, a new source port each, closed with a reset. "
            "On the iptables node a direct connect crosses kube-proxy's nat rules too: the first packet of every "
            "new flow walks KUBE-SERVICES, one rule per Service, so it is no clean baseline there)"
        )
        print()
    met = sum(bool(r.get("met")) for r in rows if r["target"] is not None)
    total = sum(r["target"] is not None for r in rows)
    print(
        f"targets met: {met}/{total}  (load average {' '.join(f'{x:.2f}' for x in env['loadavg_start'])} at start, "
        f"{' '.join(f'{x:.2f}' for x in env['loadavg_end'])} at end)"
    )
    return finish_report(diff, left, json_path, png_path if rows else None, error)


if __name__ == "__main__":
    sys.exit(main())
