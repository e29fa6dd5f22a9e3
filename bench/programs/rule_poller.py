#!/usr/bin/env python3
# A poller of one nftables chain's rules in the namespace it runs in (kube-proxy's): a netlink dump
# filtered to that chain (NFT_MSG_GETRULE with table and chain), so that one poll costs tens of
# microseconds, where `nft list chain` reads the whole ruleset first (about 1 s with 10k Services).
# iptables-nft keeps iptables rules in nftables tables too ("nat" here). Driven by JSON lines on stdin:
#   {"table", "chain", "kind", "want", "timeout", "interval"} -> {"value", "t_seen", "polls", "poll_us"}
# "sep" counts the rules that jump to a KUBE-SEP-* chain (iptables: one per endpoint); "numgen" is
# the modulus of the rule's `numgen random mod N` (nftables: N endpoints). want null: one poll.
import json
import socket
import struct
import sys
import time

sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
sock.bind((0, 0))
seq = 0


def attr(t, payload):
    n = 4 + len(payload)
    return struct.pack("HH", n, t) + payload + bytes((4 - n % 4) % 4)


def attrs(buf):
    off = 0
    while off + 4 <= len(buf):
        n, t = struct.unpack_from("HH", buf, off)
        if n < 4:
            return
        yield t & 0x3FFF, buf[off + 4 : off + n]
        off += (n + 3) & ~3


def rules(table, chain):
    global seq
    seq += 1
    body = struct.pack("BBH", socket.AF_INET, 0, 0) + attr(1, table.encode() + b"\0") + attr(2, chain.encode() + b"\0")
    sock.send(struct.pack("IHHII", 16 + len(body), (10 << 8) | 7, 0x1 | 0x300, seq, 0) + body)
    out = []
    while True:
        data = sock.recv(1 << 20)
        off = 0
        while off + 16 <= len(data):
            n, typ, flags, s, pid = struct.unpack_from("IHHII", data, off)
            if typ == 3:  # NLMSG_DONE
                return out
            if typ == 2:  # NLMSG_ERROR
                err = struct.unpack_from("i", data, off + 16)[0]
                if err:
                    return None  # e.g. no such chain yet
                return out
            out.append(data[off + 20 : off + n])  # after nlmsghdr and nfgenmsg
            off += (n + 3) & ~3


def numgen_modulus(rule):
    for t, v in attrs(rule):
        if t != 4:  # NFTA_RULE_EXPRESSIONS
            continue
        for _, elem in attrs(v):
            fields = dict(attrs(elem))
            if fields.get(1, b"").rstrip(b"\0") == b"numgen":
                for t4, v4 in attrs(fields.get(2, b"")):
                    if t4 == 2:  # NFTA_NG_MODULUS
                        return struct.unpack(">I", v4[:4])[0]
    return None


def value(cmd):
    found = rules(cmd["table"], cmd["chain"])
    if found is None:
        return None
    if cmd["kind"] == "sep":
        return sum(1 for r in found if b"KUBE-SEP-" in r)
    return max((numgen_modulus(r) or 0 for r in found), default=0)


print("ready", flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    deadline = time.monotonic() + cmd.get("timeout", 30)
    polls, spent = 0, 0
    while True:
        t0 = time.monotonic_ns()
        v = value(cmd)
        t1 = time.monotonic_ns()
        polls += 1
        spent += t1 - t0
        if cmd.get("want") is None or v == cmd["want"] or time.monotonic() > deadline:
            break
        time.sleep(cmd.get("interval", 0.001))
    print(json.dumps({"value": v, "t_seen": t1, "polls": polls, "poll_us": spent / polls / 1000}), flush=True)
