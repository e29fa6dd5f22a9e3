"""A node's dataplane alone: NodePort UDP from outside to a backend on another node, at saturation,
with the packet generator on a CPU of its own, counting what the node forwarded per second and the
node's CPU per forwarded packet. Subjects in one lab and one run:

  - weir XDP (native, SNAT): weir-agent with nodePortAcceleration native; XDP translates and sends
    the packet back out of the uplink (XDP_TX). weir XDP DSR: the same in DSR mode.
  - weir tc (SNAT), weir tc DSR: weir-agent without XDP (tc ingress on the uplink).
  - kube-proxy iptables, kube-proxy nftables: upstream kube-proxy (built from its Go module, as
    service_bench runs it) in a node namespace, watching a kube-apiserver in a lab namespace.
  - routing: a node that only routes (no Service): the client sends to the backend's own address.
  - generator: the generator into a node whose uplink only counts and drops (its limit).

The path of a packet, and who pays for what:

    generator (CPU 0)                   node (CPU 1)                          counter (CPU 0)
    BPF_PROG_TEST_RUN live frames  -->  uplink veth, NAPI in a thread  -->  fabric end of the uplink:
    XDP_TX out of the fabric end        pinned to CPU 1: XDP / tc /         XDP counts and drops every
    of the node's uplink veth           netfilter, routing, send            UDP or IPIP packet

The generator (bench/xdp_traffic_gen.cc) runs in the fabric's namespace pinned to CPU 0 and puts
prebuilt frames (client 192.168.50.100 to the node's NodePort, or to the backend for routing) straight
into the node's uplink veth, as a NIC's receive ring would hold them. The uplink's NAPI runs in a
kernel thread (threaded NAPI, a per-device setting) pinned to CPU 1, so everything the node does for
a packet happens on CPU 1 and nothing else of the bench does. The packets the node sends on are
counted and dropped by an XDP program on the fabric's end of its uplink (bench/bpf/
xdp_forward_counter.bpf.c), whose NAPI thread runs on CPU 0: no bridge, backend or socket after the
node. The backend (10.244.9.2) is a pod address of a "sink" node (192.168.50.9) that only answers
ARP. Before anything is timed, a sample of what each subject forwarded is checked (addresses,
ports, checksums, TTL). Unless --no-rt, the NAPI threads, the generator and this process while it reads
are SCHED_FIFO (the kernel's RT throttling leaves others 5%): on a shared machine a normal thread
gets a share of its CPU and wakes late, and the measurement would be of the machine's load.

Measured per run: forwarded packets per second (the node saturated: the generator offers several
times what any subject forwards) and the node's CPU per forwarded packet (the NAPI thread's run time
from /proc/<pid>/schedstat: the receive, the dataplane and the send to the wire). Subjects
interleaved and rotated every round; values are medians, ratios the median of the rounds' ratios.

Every address, route, rule and program lives in namespaces the lab made; the root namespace is
snapshotted before and compared after, and any change fails the run.

    sudo python3 -m bench.dataplane_bench [--quick] [--subjects xdp,tc,iptables,routing]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

from bench.control_plane_bench import KUBE_PROXY, KubeClient, KubeProxy, rules_snapshot
from bench.lb_bench import format_table, number
from bench.report import SNAPSHOT_TOOLS, finish_figure, finish_report, progress, root_diff, root_snapshot
from bench.service_bench import node_obj
from weirlab.cluster import CLIENT_IP, Cluster, node_ip, node_yaml
from weirlab.frames import internet_checksum
from weirlab.kube.control_plane import ControlPlane, missing_binaries
from weirlab.lab import BUILD, WEIR_AGENT, WEIR_CNI, WEIRCTL, Lab, in_netns, leftovers, run

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
GENERATOR = BUILD / "bench" / "weir_xdp_traffic_gen"
COUNTER = BUILD / "bench" / "xdp_forward_counter.bpf.o"

SUBJECTS = ("xdp", "xdp-dsr", "tc", "tc-dsr", "iptables", "nftables", "routing", "generator")
LABELS = {
    "xdp": "weir XDP",
    "xdp-dsr": "weir XDP DSR",
    "tc": "weir tc",
    "tc-dsr": "weir tc DSR",
    "iptables": "kube-proxy iptables",
    "nftables": "kube-proxy nftables",
    "routing": "routing only",
    "generator": "generator -> drop",
}
# weir's nodes (Cluster: node<i> at 192.168.50.<i>): subject -> (node index, lb mode, XDP)
WEIR_NODES = {
    "xdp": (1, "snat", True),
    "tc": (2, "snat", False),
    "xdp-dsr": (3, "dsr", True),
    "tc-dsr": (4, "dsr", False),
}
# The other measured namespaces on the fabric: subject -> (role, address)
OTHER_NODES = {
    "iptables": ("ipt", "192.168.50.11"),
    "nftables": ("nft", "192.168.50.12"),
    "routing": ("route", "192.168.50.13"),
    "generator": ("drop", "192.168.50.14"),
}
SINK = ("sink", "192.168.50.9", "10.244.9.0/24")
BACKEND_IP, BACKEND_PORT = "10.244.9.2", 9000
API_ADDRESS = "192.168.50.200"
SERVICE = "svc-dataplane"
CLUSTER_IP, SERVICE_PORT, NODE_PORT = "10.96.0.20", 90, 30090
FIRST_SOURCE_PORT = 10000
# The client's TTL. A node that forwards the packet (SNAT, routing) is one hop: the backend's node
# sees one less. DSR wraps the client's packet as it came in a fresh outer header (bpf/lib/dsr.h).
CLIENT_TTL, IPIP_OUTER_TTL = 64, 64
GENERATOR_CPU, NODE_CPU = 0, 1
# Real-time priorities (SCHED_FIFO) unless --no-rt: the counter's thread before the generator on CPU 0
# (what the node sent is counted, never dropped for want of CPU), the node's thread alone on CPU 1.
GENERATOR_RT, COUNTER_RT, NODE_RT = 1, 2, 1
READER_RT = 3  # this process, while it reads the two ends of a window

TARGET_XDP_VS_IPTABLES = 3.0
TARGET_TC_VS_IPTABLES = 1.7


# ---------------------------------------------------------------------------------------------
# Frames


def udp_frame(src_mac: str, dst_mac: str, src: str, dst: str, sport: int, dport: int, payload: int) -> bytes:
    """Ethernet + IPv4 (no options, DF) + UDP with both checksums, `payload` zero bytes."""
    mac = lambda m: bytes(int(x, 16) for x in m.split(":"))
    body = bytes(payload)
    udp_len = 8 + len(body)
    saddr, daddr = socket.inet_aton(src), socket.inet_aton(dst)
    pseudo = saddr + daddr + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + body
    udp_check = internet_checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", udp_check) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, CLIENT_TTL, socket.IPPROTO_UDP, 0, saddr, daddr)
    ip = ip[:10] + struct.pack("!H", internet_checksum(ip)) + ip[12:]
    return mac(dst_mac) + mac(src_mac) + struct.pack("!H", 0x0800) + ip + udp


# ---------------------------------------------------------------------------------------------
# What is read around a run


def must(cmd: list[str]) -> str:
    """Runs a command; its error output in the exception when it fails."""
    proc = run(cmd, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


class BpfArrayEntry:
    """Entry 0 of a BPF array map (per-CPU or not), read with the bpf() syscall: a read takes
    microseconds, so a window's packet count and the node thread's run time are read together even
    when both CPUs are busy (bpftool would take a fork and tens of milliseconds)."""

    SYS_BPF = 321  # x86_64
    BPF_MAP_LOOKUP_ELEM, BPF_MAP_GET_FD_BY_ID = 1, 14

    def __init__(self, map_id: int, value_size: int, per_cpu: bool):
        if platform.machine() != "x86_64":
            raise RuntimeError("the bpf() syscall number here is x86_64's")
        self.libc = ctypes.CDLL(None, use_errno=True)
        attr = ctypes.create_string_buffer(struct.pack("=III", map_id, 0, 0), 128)
        fd = self.libc.syscall(self.SYS_BPF, self.BPF_MAP_GET_FD_BY_ID, attr, 128)
        if fd < 0:
            raise OSError(ctypes.get_errno(), f"BPF_MAP_GET_FD_BY_ID {map_id}")
        self.fd = fd
        self.key = ctypes.c_uint32(0)
        # A per-CPU map's value: one 8-byte aligned slot per possible CPU.
        self.slot = (value_size + 7) // 8 * 8 if per_cpu else value_size
        self.value = ctypes.create_string_buffer(self.slot * (possible_cpus() if per_cpu else 1))
        self.attr = ctypes.create_string_buffer(
            struct.pack("=IIQQQ", fd, 0, ctypes.addressof(self.key), ctypes.addressof(self.value), 0), 128
        )

    def read(self) -> bytes:
        if self.libc.syscall(self.SYS_BPF, self.BPF_MAP_LOOKUP_ELEM, self.attr, 128) != 0:
            raise OSError(ctypes.get_errno(), "BPF_MAP_LOOKUP_ELEM")
        return self.value.raw

    def read_sum(self) -> int:
        """The sum over CPUs of a per-CPU u64."""
        raw = self.read()
        return sum(struct.unpack_from("=Q", raw, i)[0] for i in range(0, len(raw), self.slot))

    def close(self) -> None:
        os.close(self.fd)


def parse_sample(raw: bytes) -> dict:
    """The counter's sample (struct sample: u32 length, the packet's first bytes) as a backend's
    node would see it: the IPv4 header (and for IP-in-IP the inner one) and UDP ports, with whether
    each checksum is right."""
    length = struct.unpack_from("=I", raw)[0]
    frame = raw[4 : 4 + length]
    if length < 42 or frame[12:14] != b"\x08\x00":
        raise RuntimeError(f"no IPv4 sample ({length} bytes)")

    def ipv4(packet: bytes) -> dict:
        ihl = (packet[0] & 0x0F) * 4
        header = packet[:ihl]
        out = {
            "src": socket.inet_ntoa(header[12:16]),
            "dst": socket.inet_ntoa(header[16:20]),
            "proto": header[9],
            "ttl": header[8],
            "id": struct.unpack_from("!H", header, 4)[0],
            "header_bytes": ihl,
            "ip_checksum_ok": internet_checksum(header) == 0,
        }
        if out["proto"] == socket.IPPROTO_UDP:
            udp = packet[ihl:]
            sport, dport, udp_len, udp_check = struct.unpack_from("!HHHH", udp)
            pseudo = header[12:20] + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_len)
            whole = len(udp) >= udp_len
            out.update(sport=sport, dport=dport, udp_checksum=udp_check)
            out["udp_checksum_ok"] = (not udp_check) or not whole or internet_checksum(pseudo + udp[:udp_len]) == 0
        elif out["proto"] == socket.IPPROTO_IPIP:
            out["inner"] = ipv4(packet[ihl:])
        return out

    return ipv4(frame[14:])


def check_forwarded(subject: str, node_address: str, packet: dict) -> str:
    """Raises unless the sample is what the subject should send a backend on another node: SNAT
    (weir, kube-proxy): node -> backend:port; DSR (weir, IP-in-IP): node -> backend with the
    backend port in the outer IP id, around the client's packet to the NodePort; routing: the
    client's packet. The TTL: one hop fewer than the client's, or for DSR the client's inside a
    fresh outer header. Returns a description."""
    problems = []
    if subject in ("xdp-dsr", "tc-dsr"):
        inner = packet.get("inner") or {}
        got = (packet["src"], packet["dst"], packet["id"], inner.get("src"), inner.get("dst"), inner.get("dport"))
        want = (node_address, BACKEND_IP, BACKEND_PORT, CLIENT_IP, node_address, NODE_PORT)
        got_ttl, want_ttl = (packet["ttl"], inner.get("ttl")), (IPIP_OUTER_TTL, CLIENT_TTL)
        text = (
            f"IPIP {packet['src']} -> {packet['dst']} (id {packet['id']}) around "
            f"{inner.get('src')}:{inner.get('sport')} -> {inner.get('dst')}:{inner.get('dport')}"
        )
        checks = [packet["ip_checksum_ok"], inner.get("ip_checksum_ok"), inner.get("udp_checksum_ok")]
    else:
        source = CLIENT_IP if subject == "routing" else node_address
        got = (packet["src"], packet["dst"], packet.get("dport"))
        want = (source, BACKEND_IP, BACKEND_PORT)
        got_ttl, want_ttl = packet["ttl"], CLIENT_TTL - 1
        text = f"{packet['src']}:{packet.get('sport')} -> {packet['dst']}:{packet.get('dport')}"
        checks = [packet["ip_checksum_ok"], packet.get("udp_checksum_ok")]
    text += f", TTL {packet['ttl']}" + (f" (inner {packet['inner'].get('ttl')})" if "inner" in packet else "")
    if got != want:
        problems.append(f"expected {want}, got {got}")
    if got_ttl != want_ttl:
        problems.append(f"TTL {got_ttl}, expected {want_ttl}")
    if not all(checks):
        problems.append("a checksum is wrong")
    if problems:
        raise RuntimeError(f"{subject}: a forwarded packet is wrong ({'; '.join(problems)}): {text} {packet}")
    return text + ", checksums right"


def possible_cpus() -> int:
    """The per-CPU map's value count: the highest possible CPU + 1."""
    last = Path("/sys/devices/system/cpu/possible").read_text().strip().split(",")[-1].split("-")[-1]
    return int(last) + 1


def napi_threads() -> dict[int, str]:
    threads = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                comm = (proc / "comm").read_text().strip()
            except OSError:
                continue
            if comm.startswith("napi/"):
                threads[int(proc.name)] = comm
    return threads


def run_time_ns(pid: int) -> int:
    """Time the task has run on a CPU (schedstat's first field). Without IRQ time accounting (this
    kernel's configuration is checked at start) softirqs run in its context are in it."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def sleeps(pid: int) -> int:
    """Times a thread went to sleep (voluntary context switches): each one is a wake-up to pay for."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def link_info(netns: str, dev: str) -> dict:
    return json.loads(run(in_netns(netns, ["ip", "-j", "-d", "link", "show", "dev", dev])).stdout)[0]


def irq_time_accounting() -> bool | None:
    config = Path(f"/boot/config-{platform.release()}")
    if not config.exists():
        return None
    return "CONFIG_IRQ_TIME_ACCOUNTING=y" in config.read_text()


class Subject:
    """A measured node: where its uplink is, where the counter sits, what the frames look like."""

    def __init__(self, name: str, netns: str, uplink: str, fabric_port: str, dst: str, dport: int):
        self.name, self.netns, self.uplink, self.fabric_port = name, netns, uplink, fabric_port
        self.dst, self.dport = dst, dport
        self.napi_pid = 0
        self.counter_pid = 0
        self.counter: BpfArrayEntry | None = None
        self.sample: BpfArrayEntry | None = None
        self.frame_hex = ""


# ---------------------------------------------------------------------------------------------
# The lab


class DataplaneLab:
    def __init__(self, lab: Lab, subjects: list[str], args: argparse.Namespace):
        self.lab = lab
        self.paused: list[int] = []
        self.cp: ControlPlane | None = None
        # The generator pinned to CPU 0; real-time too (a busy loop that ends on its own timer), so it
        # offers the node more than it can take however busy the machine is.
        self.rt = not args.no_rt
        self.generator_prefix = ["taskset", "-c", str(GENERATOR_CPU)]
        if not args.no_rt:
            self.generator_prefix = ["chrt", "-f", str(GENERATOR_RT), *self.generator_prefix]
        weir = [s for s in subjects if s in WEIR_NODES]
        # Cluster numbers its nodes from 1 (and makes the fabric and the client): every weir node is
        # made, measured or not (an idle one costs nothing).
        modes = [mode for _, (_, mode, _) in sorted(WEIR_NODES.items(), key=lambda item: item[1][0])]
        self.cluster = Cluster(lab, len(WEIR_NODES), modes, start_agents=False)
        for s in weir:
            index, _, xdp = WEIR_NODES[s]
            if xdp:
                self.cluster.agent_args[f"node{index}"].append("--node_port_acceleration=native")
        self.fabric, self.client = self.cluster.fabric, self.cluster.client
        # The sink: a node of the cluster (its Node object routes the backend's /24 to it) that only
        # answers ARP; nothing reaches it while the bench runs (the counter drops what is sent to it).
        sink_name, sink_ip, sink_cidr = SINK
        self.cluster.add_client(sink_name, sink_ip)
        self.cluster.apply("node-sink", node_yaml(sink_name, [sink_cidr], [sink_ip]))
        self.cluster.apply("svc", json.dumps(service_obj()))
        self.cluster.apply("eps", json.dumps(slice_obj()))
        self.cluster.start_agents()
        for node in self.cluster.nodes:
            self.cluster.wait_for_frontend(f"{CLUSTER_IP}:{SERVICE_PORT}", backends=1, timeout=20, nodes=[node])

        self.subjects: dict[str, Subject] = {}
        for s in subjects:
            if s in WEIR_NODES:
                index = WEIR_NODES[s][0]
                node = self.cluster.nodes[index - 1]
                port = f"{lab.id}n{index}"[-15:]
                self.subjects[s] = Subject(s, node.netns, "uplink0", port, node_ip(index), NODE_PORT)
            else:
                role, address = OTHER_NODES[s]
                netns = self.cluster.add_client(role, address)
                run(in_netns(netns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]))
                run(in_netns(netns, ["ip", "route", "add", sink_cidr, "via", sink_ip]))
                port = f"{lab.id}{role[-4:]}"[-15:]
                dst, dport = (BACKEND_IP, BACKEND_PORT) if s == "routing" else (address, NODE_PORT)
                self.subjects[s] = Subject(s, netns, "eth0", port, dst, dport)

        kube = [s for s in subjects if s in ("iptables", "nftables")]
        self.kube_proxy: dict[str, KubeProxy] = {}
        if kube:
            self.start_kube_proxies(kube)

        client_mac = link_info(self.client, "eth0")["address"]
        for subject in self.subjects.values():
            self.prepare(subject, client_mac, args)
        self.pause_control_plane()

    def start_kube_proxies(self, subjects: list[str]) -> None:
        self.cp = ControlPlane(
            self.lab.dir / "cp", netns=self.cluster.add_client("api", API_ADDRESS), address=API_ADDRESS
        )
        self.lab.cleanups.insert(0, self.cp.stop)  # cleanups run newest first: this one last
        self.lab.cleanups.append(self.resume_control_plane)
        progress(f"control plane: etcd + kube-apiserver in {self.cp.netns}")
        self.cp.start()
        client = KubeClient(self.lab, self.cp)
        items = [["/api/v1/nodes", node_obj(OTHER_NODES[s][0], OTHER_NODES[s][1])] for s in subjects]
        items.append(["/api/v1/namespaces/default/services", service_obj()])
        items.append(["/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", slice_obj()])
        client.bulk(items, 1, "kube-proxy's Nodes, Service and EndpointSlice")
        client.proc.stdin.close()
        for s in subjects:
            role, address = OTHER_NODES[s]
            progress(f"kube-proxy {s} in {self.subjects[s].netns}")
            self.kube_proxy[s] = KubeProxy(self.lab, self.subjects[s].netns, role, s, address, self.cp.admin_kubeconfig)
        for s, kp in self.kube_proxy.items():
            kp.wait_synced(1, timeout=90)
            progress(f"  kube-proxy {s}: synced")

    def prepare(self, subject: Subject, client_mac: str, args: argparse.Namespace) -> None:
        """The counter on the wire's far end (on the generator's target: on the uplink itself), NAPI
        on the uplink (GRO on: a veth without XDP takes frames through NAPI only then), its thread
        pinned to the node's CPU, the next hop's neighbour entry, and the frame."""
        netns, uplink = subject.netns, subject.uplink
        counted_ns, counted_dev = (netns, uplink) if subject.name == "generator" else (self.fabric, subject.fabric_port)
        must(
            in_netns(
                counted_ns,
                ["ip", "link", "set", "dev", counted_dev, "xdpdrv", "object", str(COUNTER), "section", "xdp.frags"],
            )
        )
        prog = link_info(counted_ns, counted_dev).get("xdp", {}).get("prog", {}).get("id")
        if not prog:
            raise RuntimeError(f"{subject.name}: no XDP counter on {counted_dev}")
        for map_id in json.loads(run(["bpftool", "-j", "prog", "show", "id", str(prog)]).stdout).get("map_ids", []):
            info = json.loads(run(["bpftool", "-j", "map", "show", "id", str(map_id)]).stdout)
            if info.get("name") == "forwarded_packe":  # the kernel keeps 15 characters of a map's name
                subject.counter = BpfArrayEntry(map_id, 8, per_cpu=True)
            elif info.get("name") == "sample_packet":
                subject.sample = BpfArrayEntry(map_id, info["bytes_value"], per_cpu=False)
        if subject.counter is None or subject.sample is None:
            raise RuntimeError(f"{subject.name}: the counter's maps are not there")
        self.lab.cleanups += [subject.counter.close, subject.sample.close]
        run(in_netns(netns, ["ethtool", "-K", uplink, "gro", "on"]))
        # The client is on the fabric's subnet and the node forwards out of the device the packet
        # came in on: the stack would look up whether to send the client an ICMP redirect for every
        # packet (rate-limited sends, a per-packet peer lookup). A client reaches a NodePort through
        # a router as a rule; the lab's clients share the link only for want of one.
        for key in ("all", uplink):
            run(in_netns(netns, ["sysctl", "-qw", f"net.ipv4.conf.{key}.send_redirects=0"]))
        subject.napi_pid = self.napi_thread(netns, uplink, NODE_CPU, args)
        if subject.name != "generator":
            # The counter's NAPI in a thread of its own on the generator's CPU: what the node sends
            # waits in the counter's ring for CPU 0, not for the node's CPU (nor for ksoftirqd).
            subject.counter_pid = self.napi_thread(self.fabric, subject.fabric_port, GENERATOR_CPU, args, COUNTER_RT)
        if subject.name in WEIR_NODES:
            xdp = link_info(netns, uplink).get("xdp")
            if WEIR_NODES[subject.name][2] != bool(xdp):
                raise RuntimeError(f"{subject.name}: XDP on {uplink} is {xdp}, expected the opposite")
        if subject.name != "generator":
            run(in_netns(netns, ["ping", "-c", "1", "-W", "2", SINK[1]]))  # the next hop's MAC
        node_mac = link_info(netns, uplink)["address"]
        subject.frame_hex = udp_frame(
            client_mac, node_mac, CLIENT_IP, subject.dst, FIRST_SOURCE_PORT, subject.dport, args.udp_size
        ).hex()

    @contextlib.contextmanager
    def reader_priority(self):
        """This process real-time above the generator and the threads while it reads a window's
        ends (it sleeps in between): with both CPUs busy at real-time priority it would otherwise
        wake up late, and read the counter and the run time at different moments."""
        if self.rt:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(READER_RT))
        try:
            yield
        finally:
            if self.rt:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))

    def napi_thread(self, netns: str, dev: str, cpu: int, args: argparse.Namespace, priority: int = NODE_RT) -> int:
        """Puts `dev`'s NAPI in a kernel thread (threaded NAPI, a per-device setting), pins it to `cpu`
        and (unless --no-rt) makes it real-time: it runs as soon as frames wait in its ring, not
        behind other work on a shared machine (the kernel's RT throttling still leaves others 5%). It
        is the lab's own thread and ends with its device. Returns its pid."""
        before = napi_threads()
        run(["ip", "netns", "exec", netns, "sh", "-c", f"echo 1 > /sys/class/net/{dev}/threaded"])
        new = [pid for pid, comm in napi_threads().items() if pid not in before and comm.startswith(f"napi/{dev}-")]
        if len(new) != 1:
            raise RuntimeError(f"expected one new NAPI thread for {dev} in {netns}, found {new}")
        run(["taskset", "-pc", str(cpu), str(new[0])])
        if not args.no_rt:
            run(["chrt", "-f", "-p", str(priority), str(new[0])])
        return new[0]

    def counted(self, subject: Subject) -> int:
        return subject.counter.read_sum()

    def start_generator(self, subject: Subject, flows: int, seconds: float, stdout: int) -> subprocess.Popen:
        """The generator in the fabric's namespace, sending `subject`'s frame from `flows` source
        ports into its uplink for `seconds` (its JSON summary on stdout)."""
        return self.lab.spawn(
            in_netns(
                self.fabric,
                [
                    *self.generator_prefix,
                    str(GENERATOR),
                    subject.fabric_port,
                    subject.frame_hex,
                    str(flows),
                    str(FIRST_SOURCE_PORT),
                    f"{seconds:.3f}",
                ],
            ),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )

    def measure(self, subject: Subject, seconds: float, flows: int, warmup: float = 0.3) -> dict:
        gen = self.start_generator(subject, flows, seconds + warmup + 0.2, stdout=subprocess.PIPE)
        with self.reader_priority():
            time.sleep(warmup)
            c0, r0, t0 = self.counted(subject), run_time_ns(subject.napi_pid), time.monotonic()
            s0 = {pid: sleeps(pid) for pid in (subject.napi_pid, subject.counter_pid) if pid}
            time.sleep(seconds)
            c1, r1, t1 = self.counted(subject), run_time_ns(subject.napi_pid), time.monotonic()
            s1 = {pid: sleeps(pid) for pid in s0}
        out, err = gen.communicate(timeout=seconds + 30)
        if gen.returncode != 0:
            raise RuntimeError(f"generator into {subject.name} failed: {err.strip()}")
        generated = json.loads(out)
        packets, elapsed, node_s = c1 - c0, t1 - t0, (r1 - r0) / 1e9
        return {
            "pps": packets / elapsed,
            "ns_per_packet": node_s * 1e9 / packets if packets else None,
            "node_cpu_share": node_s / elapsed,
            "pps_per_node_cpu": packets / node_s if node_s else None,
            "offered_pps": generated["frames"] / generated["seconds"],
            "packets": packets,
            "seconds": elapsed,
            # per second: how often the node's thread ran out of work, and how often the counter's
            # thread (on CPU 0) had to be woken by the node's sends
            "node_sleeps_per_s": (s1[subject.napi_pid] - s0[subject.napi_pid]) / elapsed,
            "counter_wakeups_per_s": (s1[subject.counter_pid] - s0[subject.counter_pid]) / elapsed
            if subject.counter_pid
            else None,
        }

    def profile(self, subject: Subject, seconds: float, flows: int) -> list[list]:
        """Where the node's thread spends its time under the same load (perf samples of that thread
        only; a run of its own, not one of the measured ones): [[percent, symbol], ...]."""
        data = self.lab.dir / f"perf-{subject.name}.data"
        # perf samples the node's CPU (its per-thread mode misses a kernel thread), starts first, and
        # is real-time above the threads (else it waits for the CPU share they leave to write out).
        rt = ["chrt", "-f", str(READER_RT)] if self.rt else []
        perf = self.lab.spawn(
            [*rt, "perf", "record", "-q", "-o", str(data), "-C", str(NODE_CPU), "--", "sleep", str(seconds + 1.5)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)
        gen = self.start_generator(subject, flows, seconds, stdout=subprocess.DEVNULL)
        gen.communicate(timeout=seconds + 30)
        _, err = perf.communicate(timeout=seconds + 30)
        if perf.returncode != 0:
            raise RuntimeError(f"perf record: {err.strip()}")
        report = must(
            [
                "perf",
                "report",
                "-i",
                str(data),
                "--tid",
                str(subject.napi_pid),
                "--percentage",
                "relative",
                "--no-children",
                "--sort",
                "sym",
                "-q",
                "--stdio",
                "-g",
                "none",
                "--percent-limit",
                "0.5",
            ]
        )
        top = []
        for line in report.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[0].endswith("%"):
                top.append([float(fields[0][:-1]), " ".join(fields[2:])])
        return top

    def pause_control_plane(self) -> None:
        """The API server and etcd are stopped while traffic runs (as in service_bench): their work is
        nobody's dataplane."""
        if self.cp:
            for proc in (self.cp.apiserver, self.cp.etcd):
                os.kill(proc.popen.pid, signal.SIGSTOP)
                self.paused.append(proc.popen.pid)

    def resume_control_plane(self) -> None:
        while self.paused:
            try:
                os.kill(self.paused.pop(), signal.SIGCONT)
            except ProcessLookupError:
                pass


def service_obj() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": "default"},
        "spec": {
            "type": "NodePort",
            "clusterIP": CLUSTER_IP,
            "clusterIPs": [CLUSTER_IP],
            "externalTrafficPolicy": "Cluster",
            "ports": [
                {
                    "name": "udp",
                    "port": SERVICE_PORT,
                    "targetPort": BACKEND_PORT,
                    "protocol": "UDP",
                    "nodePort": NODE_PORT,
                }
            ],
        },
    }


def slice_obj() -> dict:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{SERVICE}-1",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": SERVICE, "endpointslice.kubernetes.io/managed-by": "bench"},
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [BACKEND_IP],
                "nodeName": SINK[0],
                "conditions": {"ready": True, "serving": True, "terminating": False},
            }
        ],
        "ports": [{"name": "udp", "port": BACKEND_PORT, "protocol": "UDP"}],
    }


# ---------------------------------------------------------------------------------------------
# The runs


def check_paths(dl: DataplaneLab, args: argparse.Namespace) -> None:
    """Every subject forwards before anything is timed (and its flows exist from here on)."""
    for name, subject in dl.subjects.items():
        res = dl.measure(subject, 0.5, args.flows)
        if res["packets"] < 1000:
            raise RuntimeError(f"{name} forwarded {res['packets']} packets in 0.5 s: {res}")
        if name == "generator":
            progress(f"{LABELS[name]:20} drops ({res['pps']:.0f} pkt/s)")
            continue
        address = node_ip(WEIR_NODES[name][0]) if name in WEIR_NODES else OTHER_NODES[name][1]
        text = check_forwarded(name, address, parse_sample(subject.sample.read()))
        progress(f"{LABELS[name]:20} forwards ({res['pps']:.0f} pkt/s): {text}")


def bench(dl: DataplaneLab, args: argparse.Namespace) -> dict:
    names = list(dl.subjects)
    runs: dict[str, list[dict]] = {s: [] for s in names}
    for r in range(args.rounds):
        for s in names[r % len(names) :] + names[: r % len(names)]:
            res = dl.measure(dl.subjects[s], args.duration, args.flows)
            runs[s].append(res)
            progress(
                f"round {r + 1}/{args.rounds} {LABELS[s]:20} {res['pps']:9.0f} pkt/s forwarded  "
                f"{number(res['ns_per_packet'])} ns node CPU/pkt  node CPU {res['node_cpu_share']:.0%}  "
                f"offered {res['offered_pps']:.0f}/s"
            )
    profiles = {}
    if args.profile:
        for s in names:
            profiles[s] = dl.profile(dl.subjects[s], args.duration, args.flows)
            progress(f"profile {LABELS[s]:20} " + ", ".join(f"{sym} {pct:.0f}%" for pct, sym in profiles[s][:6]))
    med = lambda values: statistics.median(values) if values else None
    keys = ("pps", "ns_per_packet", "node_cpu_share", "pps_per_node_cpu", "offered_pps")
    median = {s: {k: med([x[k] for x in rs if x.get(k) is not None]) for k in keys} for s, rs in runs.items()}
    return {"runs": runs, "median": median, "profiles": profiles}


def ratio(runs: dict, subject: str, other: str, key: str) -> float | None:
    """The median of the rounds' ratios (a round runs every subject back to back)."""
    pairs = zip(runs.get(subject, []), runs.get(other, []))
    per_round = [a[key] / b[key] for a, b in pairs if a.get(key) and b.get(key)]
    return statistics.median(per_round) if per_round else None


def summary(results: dict) -> list[dict]:
    runs, median = results["runs"], results["median"]
    rows = []
    for s in SUBJECTS:
        if s not in median:
            continue
        m = median[s]
        rows.append(
            {
                "subject": s,
                "pps": m["pps"],
                "ns_per_packet": m["ns_per_packet"],
                "pps_per_node_cpu": m["pps_per_node_cpu"],
                "node_cpu_share": m["node_cpu_share"],
                "offered_pps": m["offered_pps"],
                # pkt/s ratios; CPU ratios as the other's ns per packet over this one's (higher is better)
                "pps_vs": {o: ratio(runs, s, o, "pps") for o in ("iptables", "routing")},
                "cpu_vs": {o: ratio(runs, o, s, "ns_per_packet") for o in ("iptables", "routing")},
            }
        )
    return rows


def targets(rows: list[dict]) -> list[dict]:
    by = {r["subject"]: r for r in rows}
    out = []
    for subject, wanted in (
        ("xdp", TARGET_XDP_VS_IPTABLES),
        ("xdp-dsr", TARGET_XDP_VS_IPTABLES),
        ("tc", TARGET_TC_VS_IPTABLES),
    ):
        if subject in by and "iptables" in by:
            got = by[subject]["pps_vs"]["iptables"]
            cpu = by[subject]["cpu_vs"]["iptables"]
            out.append(
                {
                    "subject": subject,
                    "wanted": wanted,
                    "pps_ratio": got,
                    "cpu_ratio": cpu,
                    "met": got is not None and got >= wanted,
                }
            )
    return out


def format_summary(rows: list[dict]) -> str:
    fmt = lambda x: "-" if x is None else f"{x:.2f}x"
    header = [
        "subject",
        "pkt/s forwarded",
        "ns node CPU/pkt",
        "pkt/s per node CPU",
        "node CPU",
        "offered pkt/s",
        "pkt/s vs ipt",
        "pkt/s vs routing",
        "CPU vs ipt",
        "CPU vs routing",
    ]
    body = [
        [
            LABELS[r["subject"]],
            number(r["pps"]),
            number(r["ns_per_packet"]),
            number(r["pps_per_node_cpu"]),
            f"{r['node_cpu_share']:.0%}",
            number(r["offered_pps"]),
            fmt(r["pps_vs"]["iptables"]),
            fmt(r["pps_vs"]["routing"]),
            fmt(r["cpu_vs"]["iptables"]),
            fmt(r["cpu_vs"]["routing"]),
        ]
        for r in rows
    ]
    return format_table(header, body)


COLORS = {
    "xdp": "#1f4e79",
    "xdp-dsr": "#4f7fb0",
    "tc": "#2a7ab9",
    "tc-dsr": "#7fb2d9",
    "iptables": "#e39b3b",
    "nftables": "#3b9e5a",
    "routing": "#9a9a9a",
    "generator": "#d0d0d0",
}


def plot(rows: list[dict], tgts: list[dict], path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(16, 6.5))
    by = {r["subject"]: r for r in rows}
    panels = [
        (
            "pps",
            "NodePort UDP forwarded to another node, node saturated\n(packets/s counted past the node)",
            "packets/s",
            "pps_vs",
        ),
        (
            "ns_per_packet",
            "Node CPU per forwarded packet\n(its NAPI thread: receive, dataplane, send)",
            "ns per packet",
            "cpu_vs",
        ),
    ]
    if "generator" in by:  # an order of magnitude above the rest: a number in the title, not a bar
        panels[0] = (
            "pps",
            panels[0][1] + f"; the generator alone into a drop: {number(by['generator']['pps'])}",
            *panels[0][2:],
        )
    for ax, (key, title, ylabel, vs) in zip(axes, panels):
        subjects = [
            r["subject"] for r in rows if r[key] is not None and not (key == "pps" and r["subject"] == "generator")
        ]
        values = [by[s][key] for s in subjects]
        bars = ax.bar(
            range(len(subjects)), values, color=[COLORS[s] for s in subjects], edgecolor="black", linewidth=0.4
        )
        for bar, s, value in zip(bars, subjects, values):
            r = by[s][vs]["iptables"]
            text = number(value) + (f"\n{r:.2f}x ipt" if r and s != "iptables" else "")
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
        if key == "pps" and "iptables" in by:
            for name, wanted in (("XDP", TARGET_XDP_VS_IPTABLES), ("tc", TARGET_TC_VS_IPTABLES)):
                level = by["iptables"]["pps"] * wanted
                top = max(top, level)
                mine = [t for t in tgts if t["wanted"] == wanted]
                met = "met" if mine and all(t["met"] for t in mine) else "NOT MET"
                ax.axhline(level, color="red", linestyle="dashed", linewidth=1.1)
                ax.annotate(
                    f"target: weir {name} >= {wanted}x kube-proxy iptables ({met})",
                    (0.99, level),
                    xycoords=("axes fraction", "data"),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="right",
                    fontsize=8,
                    color="red",
                )
        ax.set_xticks(range(len(subjects)))
        ax.set_xticklabels(
            [LABELS[s].replace("kube-proxy ", "kube-proxy\n").replace(" -> ", "\n-> ") for s in subjects], fontsize=8.5
        )
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, top * 1.3)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    finish_figure(
        fig,
        path,
        "A node's dataplane alone: NodePort UDP to a backend on another node (generator on CPU 0, node on CPU 1)",
        subtitle,
    )


# ---------------------------------------------------------------------------------------------


def environment(args: argparse.Namespace) -> dict:
    kube = (
        subprocess.run([str(KUBE_PROXY), "--version"], text=True, capture_output=True).stdout.strip()
        if KUBE_PROXY.exists()
        else None
    )
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
        "irq_time_accounting": irq_time_accounting(),
        "build_dir": str(BUILD),
        "kube_proxy": kube,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "loadavg_start": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round of 2-second runs")
    parser.add_argument("--rounds", type=int, help="rounds over every subject (default 5, quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per run (default 3, quick 2)")
    parser.add_argument("--flows", type=int, default=8, help="UDP source ports of the stream (default 8)")
    parser.add_argument(
        "--udp-size", type=int, default=18, help="UDP payload bytes (default 18: 64-byte frames with FCS)"
    )
    parser.add_argument("--subjects", default=",".join(SUBJECTS), help=f"comma-separated, of {','.join(SUBJECTS)}")
    parser.add_argument("--profile", action="store_true", help="after the rounds, perf samples of each node's thread")
    parser.add_argument("--no-rt", action="store_true", help="leave the node's NAPI thread at normal priority")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for JSON and PNG")
    args = parser.parse_args()
    subjects = [s for s in args.subjects.split(",") if s]
    unknown = [s for s in subjects if s not in SUBJECTS]
    if unknown or not subjects:
        parser.error(f"--subjects: unknown {unknown}; choose from {','.join(SUBJECTS)}")
    subjects = [s for s in SUBJECTS if s in subjects]
    if not 18 <= args.udp_size <= 1472:
        parser.error("--udp-size: 18 to 1472 bytes")
    if not 1 <= args.flows <= 50000:
        parser.error("--flows: 1 to 50000")
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.duration = args.duration or (2 if args.quick else 3)
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds: at least 1; --duration: more than 0 seconds")

    if os.geteuid() != 0:
        print("needs root (network namespaces, bpffs, BPF programs)", file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("needs 2 CPUs (the generator on one, the node on the other)", file=sys.stderr)
        return 2
    missing = [str(p) for p in (WEIR_CNI, WEIR_AGENT, WEIRCTL, GENERATOR, COUNTER) if not p.exists()]
    if any(s in ("iptables", "nftables") for s in subjects):
        missing += missing_binaries(names=("etcd", "kube-apiserver", "kubectl", "kube-proxy"))
    tools = ("perf",) if args.profile else ()
    tools += (
        "nsenter",
        "taskset",
        "chrt",
        "ethtool",
        "bpftool",
        "ping",
        "iptables-save",
        "ip6tables-save",
        *SNAPSHOT_TOOLS,
    )
    missing += [t for t in tools if shutil.which(t) is None]
    if missing:
        print(
            f"missing: {', '.join(missing)} (build with scripts/build.sh, set WEIR_BUILD_DIR for another build "
            "dir; Kubernetes with weirlab/kube/build_upstream.sh; scripts/setup.sh installs the rest)",
            file=sys.stderr,
        )
        return 2
    env = environment(args)
    progress(f"load average {' '.join(f'{x:.2f}' for x in env['loadavg_start'])}; subjects {', '.join(subjects)}")
    if env["irq_time_accounting"]:
        progress("WARNING: IRQ time accounting is on: the node thread's run time leaves out softirqs run in it")
    before = root_snapshot()
    rules_before = rules_snapshot()

    results: dict = {}
    lab_id = None
    error = None
    try:
        with Lab("xb") as lab:
            lab_id = lab.id
            dl = DataplaneLab(lab, subjects, args)
            check_paths(dl, args)
            results = bench(dl, args)
            results["weir_metrics"] = {
                s: dl.cluster.nodes[WEIR_NODES[s][0] - 1].weirctl("metrics") for s in subjects if s in WEIR_NODES
            }
            progress("removing the lab")
    except Exception as e:  # the lab is gone by now; the root namespace is still checked
        error = f"{type(e).__name__}: {e}"
        progress(f"FAILED: {error}")
    left = leftovers(lab_id) if lab_id else []
    diff = root_diff(before, root_snapshot())
    diff.update(root_diff(rules_before, rules_snapshot()))
    env["loadavg_end"] = os.getloadavg()

    rows = summary(results) if "median" in results else []
    tgts = targets(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = args.out / f"dataplane_bench-{stamp}.json"
    png_path = args.out / f"dataplane_bench-{stamp}.png"
    json_path.write_text(
        json.dumps(
            {
                "environment": env,
                "summary": rows,
                "targets": tgts,
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
            tgts,
            png_path,
            f"{env['time']}  load {env['loadavg_start'][0]:.2f} -> {env['loadavg_end'][0]:.2f}  "
            f"kernel {env['kernel']}  {env['cpus']} CPUs  {env['cpu_model']}  {env['kube_proxy'] or ''}; "
            f"median of {args.rounds} x {args.duration:g}s, {args.flows} flows of {args.udp_size}-byte datagrams",
        )
        print(format_summary(rows))
        print(
            f"(values: median of {args.rounds} run(s) of {args.duration:g}s; ratios: median of the rounds' ratios; "
            "pkt/s: counted past the node; node CPU: its NAPI thread's run time on CPU 1 (receive, dataplane, "
            "send, and the counter); CPU ratios: the other's ns per packet over the subject's)"
        )
        for t in tgts:
            got = "-" if t["pps_ratio"] is None else f"{t['pps_ratio']:.2f}x"
            print(
                f"target {LABELS[t['subject']]} >= {t['wanted']}x kube-proxy iptables in pkt/s: {got} "
                f"({'met' if t['met'] else 'NOT MET'}); by CPU per packet {number(t['cpu_ratio'])}x"
            )
        for s, top in results.get("profiles", {}).items():
            print(
                f"where {LABELS[s]}'s node thread spends its time: "
                + ", ".join(f"{sym} {pct:.1f}%" for pct, sym in top[:12])
            )
        print(
            f"(load average {' '.join(f'{x:.2f}' for x in env['loadavg_start'])} at start, "
            f"{' '.join(f'{x:.2f}' for x in env['loadavg_end'])} at end)"
        )
    return finish_report(diff, left, json_path, png_path if rows else None, error)


if __name__ == "__main__":
    sys.exit(main())
