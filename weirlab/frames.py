"""Helpers for hand-built packets shared by the lab's tests and benchmarks."""

from __future__ import annotations

import struct


def internet_checksum(data: bytes) -> int:
    """The one's-complement sum of RFC 1071 (IPv4 header, UDP, TCP, ICMP): 0 over data that
    already carries a correct checksum."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
