"""Whether this kernel has netkit devices (Linux 6.7 or later built with CONFIG_NETKIT).

iproute2 before 6.7 cannot create them, so the probe speaks rtnetlink itself, in a network namespace
of its own (unshare) that disappears with it."""

from __future__ import annotations

import functools
import subprocess
import sys

# Creates a netkit pair with the kernel's defaults and exits with 0 on success, 3 when the kernel
# does not know the link kind (EOPNOTSUPP), 4 on any other error.
_PROBE = r"""
import socket, struct, sys
def attr(kind, payload):
    length = 4 + len(payload)
    return struct.pack("HH", length, kind) + payload + b"\0" * (-length % 4)
IFLA_IFNAME, IFLA_LINKINFO, IFLA_INFO_KIND = 3, 18, 1
RTM_NEWLINK, NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 16, 1, 4, 0x200, 0x400
body = struct.pack("BxHiII", 0, 0, 0, 0, 0) + attr(IFLA_IFNAME, b"probe0\0")
body += attr(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"netkit\0"))
flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
sock.send(struct.pack("IHHII", 16 + len(body), RTM_NEWLINK, flags, 1, 0) + body)
error = -struct.unpack("i", sock.recv(4096)[16:20])[0]
sys.exit(0 if error == 0 else 3 if error == 95 else 4)
"""


@functools.cache
def kernel_has_netkit() -> bool:
    proc = subprocess.run(["unshare", "--net", sys.executable, "-c", _PROBE], capture_output=True, text=True)
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"netkit probe failed ({proc.returncode}): {proc.stderr}")
    return proc.returncode == 0
