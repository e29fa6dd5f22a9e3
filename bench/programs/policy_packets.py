#!/usr/bin/env python3
# Runs weir's pinned tc programs on hand-made packets with BPF_PROG_TEST_RUN, for bench/policy_bench.py.
# It runs inside a lab node's network namespace (the ifindexes and bpf_fib_lookup are that namespace's),
# on the programs the node's agent pinned, with the maps the agent filled from the manifests: the
# datapath is measured in the state the policies put it in, whatever its map layout.
#
# One JSON command per stdin line, one JSON answer per stdout line. A flow is
# {"prog", "ifindex", "src_mac", "dst_mac", "src", "dst", "dport"}; "targets" lists [src, dst, dport].
#   {"cmd": "new_flows", "flow", "targets", "count"}  the first packet (SYN) of `count` new flows, each
#        to a random target from a source port not used before, one test run each (repeat 1), every one
#        preceded by the same run of an empty program: {"ns": [...], "empty_ns": [...], "retvals": {..}}
#   {"cmd": "established", "flow", "repeat", "count"}  a flow's SYN, then `count` runs of its ACK with
#        `repeat` (below 250: a packet delivered to a local pod loses a TTL each time, from 255):
#        {"ns": [per-packet ns per run], "retvals": {..}}
#   {"cmd": "verdict", "flow"}  one new flow's first packet: {"retval", "passed"}
#   {"cmd": "wait", "flow", "passed", "timeout"}  new flows until the verdict is `passed` (true/false):
#        {"at": CLOCK_MONOTONIC of that packet or null, "tries"}
# Nothing is attached and no packet leaves a test run.
import ctypes
import json
import os
import random
import socket
import struct
import sys
import time
from pathlib import Path

# Run as a script in the node's namespace, outside the package: the repository's root on the path
# gives it the lab's one RFC 1071 checksum.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from weirlab.frames import internet_checksum  # noqa: E402

BPF_PROG_LOAD, BPF_OBJ_GET, BPF_PROG_TEST_RUN = 5, 7, 10
BPF_PROG_TYPE_SCHED_CLS = 3
TC_ACT_SHOT = 2
SKB_CTX_SIZE = 192  # struct __sk_buff
SKB_INGRESS_IFINDEX, SKB_IFINDEX = 36, 40

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


class TestRunAttr(ctypes.Structure):
    _fields_ = [
        ("prog_fd", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("data_in", ctypes.c_uint64),
        ("data_out", ctypes.c_uint64),
        ("repeat", ctypes.c_uint32),
        ("duration", ctypes.c_uint32),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_uint64),
        ("ctx_out", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


class ObjGetAttr(ctypes.Structure):
    _fields_ = [("pathname", ctypes.c_uint64), ("bpf_fd", ctypes.c_uint32), ("file_flags", ctypes.c_uint32)]


class ProgLoadAttr(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
    ]


BPF_SYSCALL = {"x86_64": 321, "aarch64": 280}[os.uname().machine]


def bpf(cmd: int, attr) -> int:
    fd = libc.syscall(BPF_SYSCALL, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"bpf({cmd}): {os.strerror(ctypes.get_errno())}")
    return fd


def pinned(path: str) -> int:
    name = ctypes.create_string_buffer(path.encode())
    return bpf(BPF_OBJ_GET, ObjGetAttr(pathname=ctypes.addressof(name)))


def empty_program() -> int:
    """`return TC_ACT_OK`: what a test run costs around the program."""
    insns = ctypes.create_string_buffer(bytes([0xB7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]), 16)
    license_ = ctypes.create_string_buffer(b"GPL")
    return bpf(
        BPF_PROG_LOAD,
        ProgLoadAttr(
            prog_type=BPF_PROG_TYPE_SCHED_CLS,
            insn_cnt=2,
            insns=ctypes.addressof(insns),
            license=ctypes.addressof(license_),
        ),
    )


OUT = ctypes.create_string_buffer(4096)


def test_run(prog: int, packet: bytes, ifindex: int, repeat: int = 1) -> tuple[int, int]:
    """(retval, ns per repetition)."""
    data = ctypes.create_string_buffer(packet, len(packet))
    ctx = bytearray(SKB_CTX_SIZE)
    struct.pack_into("<I", ctx, SKB_INGRESS_IFINDEX, ifindex)
    struct.pack_into("<I", ctx, SKB_IFINDEX, ifindex)
    ctx_buf = ctypes.create_string_buffer(bytes(ctx), SKB_CTX_SIZE)
    attr = TestRunAttr(
        prog_fd=prog,
        data_size_in=len(packet),
        data_size_out=len(OUT),
        data_in=ctypes.addressof(data),
        data_out=ctypes.addressof(OUT),
        repeat=repeat,
        ctx_size_in=SKB_CTX_SIZE,
        ctx_in=ctypes.addressof(ctx_buf),
    )
    bpf(BPF_PROG_TEST_RUN, attr)
    return attr.retval, attr.duration


def tcp_packet(flow: dict, sport: int, src: str, dst: str, dport: int, flags: int) -> bytes:
    """Ethernet + IPv4 (TTL 255) + TCP (SYN 0x02 or ACK 0x10), checksums right."""
    src_ip, dst_ip = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1000, 0 if flags == 0x02 else 1, 5 << 4, flags, 65535, 0, 0)
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", internet_checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 255, 6, 0, src_ip, dst_ip)
    ip = ip[:10] + struct.pack("!H", internet_checksum(ip)) + ip[12:]
    eth = bytes.fromhex(flow["dst_mac"].replace(":", "")) + bytes.fromhex(flow["src_mac"].replace(":", ""))
    return eth + b"\x08\x00" + ip + tcp


class Runner:
    def __init__(self, bpf_root: str):
        self.bpf_root = bpf_root
        self.progs: dict[str, int] = {}
        self.empty = empty_program()
        self.next_sport = 1024
        self.rng = random.Random(1)

    def prog(self, name: str) -> int:
        if name not in self.progs:
            self.progs[name] = pinned(f"{self.bpf_root}/progs/{name}")
        return self.progs[name]

    def sport(self) -> int:
        port = self.next_sport
        self.next_sport = 1024 if port >= 65535 else port + 1
        return port

    def first_packet(self, flow: dict, target=None) -> bytes:
        src, dst, dport = target or (flow["src"], flow["dst"], flow["dport"])
        return tcp_packet(flow, self.sport(), src, dst, dport, 0x02)

    def handle(self, c: dict) -> dict:
        flow = c.get("flow", {})
        if c["cmd"] == "new_flows":
            prog, ns, empty_ns, retvals = self.prog(flow["prog"]), [], [], {}
            for _ in range(c["count"]):
                packet = self.first_packet(flow, self.rng.choice(c["targets"]))
                empty_ns.append(test_run(self.empty, packet, flow["ifindex"])[1])
                retval, duration = test_run(prog, packet, flow["ifindex"])
                ns.append(duration)
                retvals[str(retval)] = retvals.get(str(retval), 0) + 1
            return {"ns": ns, "empty_ns": empty_ns, "retvals": retvals}
        if c["cmd"] == "established":
            prog, sport = self.prog(flow["prog"]), self.sport()
            addresses = (flow["src"], flow["dst"], flow["dport"])
            first = test_run(prog, tcp_packet(flow, sport, *addresses, 0x02), flow["ifindex"])[0]
            ack = tcp_packet(flow, sport, *addresses, 0x10)
            ns, retvals = [], {"first": first}
            for _ in range(c["count"]):
                retval, duration = test_run(prog, ack, flow["ifindex"], c["repeat"])
                ns.append(duration)
                retvals[str(retval)] = retvals.get(str(retval), 0) + 1
            return {"ns": ns, "retvals": retvals}
        if c["cmd"] == "verdict":
            retval = test_run(self.prog(flow["prog"]), self.first_packet(flow), flow["ifindex"])[0]
            return {"retval": retval, "passed": retval != TC_ACT_SHOT}
        if c["cmd"] == "wait":
            end = time.monotonic() + c["timeout"]
            tries = 0
            while time.monotonic() < end:
                tries += 1
                retval = test_run(self.prog(flow["prog"]), self.first_packet(flow), flow["ifindex"])[0]
                if (retval != TC_ACT_SHOT) == c["passed"]:
                    return {"at": time.monotonic(), "tries": tries}
                time.sleep(0.0005)
            return {"at": None, "tries": tries}
        raise ValueError(f"unknown command {c['cmd']!r}")


def main() -> None:
    runner = Runner(sys.argv[1])
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = runner.handle(json.loads(line))
        except OSError as e:
            answer = {"error": str(e)}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
