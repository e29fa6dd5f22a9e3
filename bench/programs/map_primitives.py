#!/usr/bin/env python3
# What one BPF map operation costs on this machine and kernel: the floor under a NetworkPolicy verdict,
# for bench/policy_bench.py. Each case is a tiny tc program run with BPF_PROG_TEST_RUN (repeat R) that
# builds a peers-map-like key from a random number (bpf_get_prandom_u32() % N, as an IPv4 address
# 10.0.0.0 + i, network order) and does one operation on a map of N entries:
#   base         the key only (subtracted from the others)
#   lpm_lookup   an LPM trie of N /32s (weir_pol_peers, weir_pol_rules are tries)
#   hash_lookup  a hash of N keys of the same 24 bytes
#   lru_insert   an LRU hash (BPF_F_NO_COMMON_LRU, as weir_pol_ct) update of a key not seen before
# Prints one JSON object: {"cases": [{"op", "entries", "ns"}]}, ns per operation (median of runs).
# Maps and programs are only held by this process' fds: nothing is pinned or attached, and all of it
# goes when the process ends.
import ctypes
import json
import os
import statistics
import struct
import sys

BPF_MAP_CREATE, BPF_MAP_UPDATE_ELEM, BPF_PROG_LOAD, BPF_PROG_TEST_RUN = 0, 2, 5, 10
BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LPM_TRIE = 1, 9, 11
BPF_F_NO_PREALLOC, BPF_F_NO_COMMON_LRU = 1, 2
BPF_PROG_TYPE_SCHED_CLS = 3
FAMILY_IPV4 = 4  # enum weir_ip_family
KEY_SIZE = 24  # struct weir_policy_peer_key: prefixlen, family, pad[3], 16 address bytes
FIRST_ADDRESS = 0x0A000000

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
BPF_SYSCALL = {"x86_64": 321, "aarch64": 280}[os.uname().machine]


def bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = libc.syscall(BPF_SYSCALL, cmd, buf, len(attr))
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"bpf({cmd}): {os.strerror(ctypes.get_errno())}")
    return fd, buf


def map_create(map_type: int, key_size: int, value_size: int, entries: int, flags: int) -> int:
    fd, _ = bpf(BPF_MAP_CREATE, struct.pack("IIIII", map_type, key_size, value_size, entries, flags).ljust(72, b"\0"))
    return fd


def map_update(fd: int, key: bytes, value: bytes) -> None:
    k, v = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(value, len(value))
    attr = struct.pack("IIQQQ", fd, 0, ctypes.addressof(k), ctypes.addressof(v), 0)
    bpf(BPF_MAP_UPDATE_ELEM, attr)


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def ld_map_fd(dst: int, fd: int) -> bytes:
    return insn(0x18, dst, 1, 0, fd) + insn(0, 0, 0, 0, 0)  # BPF_LD|BPF_IMM|BPF_DW, BPF_PSEUDO_MAP_FD


R0, R1, R2, R3, R4, FP = 0, 1, 2, 3, 4, 10
CALL, EXIT = 0x85, 0x95
MOV64_IMM, MOV64_REG, ADD64_IMM = 0xB7, 0xBF, 0x07
MOD32_IMM, ADD32_IMM, TO_BE = 0x94, 0x04, 0xDC
ST_W, STX_W, ST_DW = 0x62, 0x63, 0x7A
HELPER_LOOKUP, HELPER_UPDATE, HELPER_PRANDOM = 1, 2, 7


def program(op: str, map_fd: int, entries: int) -> bytes:
    """The key of a random entry at fp-24, then the operation (none for "base")."""
    code = insn(CALL, imm=HELPER_PRANDOM)
    code += insn(MOD32_IMM, R0, imm=entries)
    code += insn(ADD32_IMM, R0, imm=FIRST_ADDRESS)
    code += insn(TO_BE, R0, imm=32)
    code += insn(ST_W, FP, off=-24, imm=64)  # prefixlen: family bits (32) + the address's 32
    code += insn(ST_W, FP, off=-20, imm=FAMILY_IPV4)
    code += insn(STX_W, FP, R0, off=-16)
    code += insn(ST_W, FP, off=-12, imm=0)
    code += insn(ST_DW, FP, off=-8, imm=0)
    code += insn(ST_DW, FP, off=-32, imm=0)  # a value for updates
    code += insn(ST_DW, FP, off=-40, imm=0)
    if op != "base":
        code += ld_map_fd(R1, map_fd)
        code += insn(MOV64_REG, R2, FP) + insn(ADD64_IMM, R2, imm=-24)
        if op == "lru_insert":
            code += insn(MOV64_REG, R3, FP) + insn(ADD64_IMM, R3, imm=-40)
            code += insn(MOV64_IMM, R4, imm=0)
            code += insn(CALL, imm=HELPER_UPDATE)
        else:
            code += insn(CALL, imm=HELPER_LOOKUP)
    code += insn(MOV64_IMM, R0, imm=0) + insn(EXIT)
    return code


def load(code: bytes) -> int:
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")
    attr = struct.pack(
        "IIQQIIQ", BPF_PROG_TYPE_SCHED_CLS, len(code) // 8, ctypes.addressof(insns), ctypes.addressof(license_), 0, 0, 0
    )
    fd, _ = bpf(BPF_PROG_LOAD, attr.ljust(128, b"\0"))
    return fd


PACKET = ctypes.create_string_buffer(bytes(64), 64)  # any 64 bytes: the program does not read them


def test_run(prog: int, repeat: int) -> float:
    attr = bytearray(struct.pack("IIIIQQII", prog, 0, 64, 0, ctypes.addressof(PACKET), 0, repeat, 0).ljust(80, b"\0"))
    _, buf = bpf(BPF_PROG_TEST_RUN, bytes(attr))
    return struct.unpack_from("I", buf.raw, 36)[0]  # duration, ns per repetition


def key(i: int) -> bytes:
    return struct.pack("<IB3x", 64, FAMILY_IPV4) + struct.pack("!I", FIRST_ADDRESS + i) + bytes(12)


def filled(map_type: int, entries: int, flags: int) -> int:
    fd = map_create(map_type, KEY_SIZE, 4, entries, flags)
    for i in range(entries):
        map_update(fd, key(i), struct.pack("I", 256 + i % 1000))
    return fd


def measure(prog: int, repeat: int, runs: int) -> float:
    return statistics.median(test_run(prog, repeat) for _ in range(runs))


def main() -> None:
    sizes = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "100,10000,100000").split(",")]
    repeat, runs = 20000, 9
    cases = []
    for entries in sizes:
        lpm = filled(BPF_MAP_TYPE_LPM_TRIE, entries, BPF_F_NO_PREALLOC)
        table = filled(BPF_MAP_TYPE_HASH, entries, BPF_F_NO_PREALLOC)
        base = measure(load(program("base", 0, entries)), repeat, runs)
        cases.append({"op": "base", "entries": entries, "ns": base})
        for op, fd in (("lpm_lookup", lpm), ("hash_lookup", table)):
            cases.append(
                {"op": op, "entries": entries, "ns": measure(load(program(op, fd, entries)), repeat, runs) - base}
            )
        os.close(lpm)
        os.close(table)
    # New keys: random among 2^24 addresses in a map as large as weir_pol_ct's default: nearly all inserts.
    lru = map_create(BPF_MAP_TYPE_LRU_HASH, KEY_SIZE, 16, 262144, BPF_F_NO_COMMON_LRU)
    base = measure(load(program("base", 0, 1 << 24)), repeat, runs)
    cases.append(
        {
            "op": "lru_insert",
            "entries": 262144,
            "ns": measure(load(program("lru_insert", lru, 1 << 24)), repeat, runs) - base,
        }
    )
    print(json.dumps({"cases": cases}))


if __name__ == "__main__":
    main()
