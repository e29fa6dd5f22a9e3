"""Traffic for the lab, run inside pod namespaces: a TCP/UDP echo server and clients that report
what answered, as JSON. Every loop is bounded in count and time.

    serve PORT[,PORT...] [NAME]          echo server (TCP and UDP, IPv4 and IPv6) on each port;
                                         prints "ready" once every socket listens.
                                         A TCP message that ends in a newline switches that connection
                                         to line mode: every line is answered and the connection stays
                                         open until the client closes it.
    tcp|udp PORT TARGET...               one request to each target: {target: reply}
    peer tcp|udp|udp-connected PORT TARGET [COUNT [INTERVAL [SOURCE_PORT]]]
                                         COUNT requests, one socket each: a JSON list of {reply, peer,
                                         local, elapsed} or {error, errno, step, local, elapsed};
                                         `peer` is the address the socket API shows (getpeername
                                         after connect for tcp/udp-connected, the source of the
                                         reply for unconnected udp)
    hold PORT TARGET [SOURCE_PORT]       long-lived TCP connections driven by commands on stdin, one
                                         JSON line answered per command: "open N" opens N connections
                                         (each says hello), "ping" sends a line on every open
                                         connection, "quit" ends (the client closes first); idle for
                                         120 s it ends by itself.
    probe TIMEOUT PROBES_JSON            many requests at once, one thread each: PROBES_JSON is a
                                         list of [id, tcp|udp, target, port, source port (0: any)];
                                         prints {id: reply or "error: ..."}. For probe matrices.
    SOURCE_PORT (0: any) binds every socket to that local port (SO_REUSEADDR).
"""

import json
import select
import socket
import sys
import threading
import time

TIMEOUT = 2.0
MAX_COUNT = 10000
HOLD_IDLE = 120.0
HOLD_MAX = 256


def serve(ports: list[int], name: str = "") -> None:
    prefix = f"{name}: " if name else ""

    def answer(conn, peer):
        with conn:
            conn.settimeout(600)
            try:
                data = conn.recv(1024)
                if not data.endswith(b"\n"):
                    conn.sendall(prefix.encode() + data + f" from {peer[0]}".encode())
                    return
                buffer = data
                while True:
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        conn.sendall(prefix.encode() + line + f" from {peer[0]}\n".encode())
                    more = conn.recv(1024)
                    if not more:
                        return
                    buffer += more
            except OSError:
                return

    def bound(family, kind, port):
        s = socket.socket(family, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        return s

    def tcp(s):
        while True:
            conn, peer = s.accept()
            threading.Thread(target=answer, args=(conn, peer), daemon=True).start()

    def udp(s):
        while True:
            data, peer = s.recvfrom(1024)
            s.sendto(prefix.encode() + data + f" from {peer[0]}".encode(), peer)

    # Every socket is bound before "ready" (here, so that a bind error ends the process).
    for port in ports:
        for family in (socket.AF_INET, socket.AF_INET6):
            listener = bound(family, socket.SOCK_STREAM, port)
            listener.listen(128)
            threading.Thread(target=tcp, args=(listener,), daemon=True).start()
            threading.Thread(target=udp, args=(bound(family, socket.SOCK_DGRAM, port),), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


def check(proto: str, targets: list[str], port: int, timeout: float = TIMEOUT) -> dict:
    results = {}
    for target in targets:
        family = socket.AF_INET6 if ":" in target else socket.AF_INET
        try:
            if proto == "tcp":
                with socket.create_connection((target, port), timeout=timeout) as s:
                    s.sendall(b"ping")
                    reply = s.recv(1024).decode()
            else:
                with socket.socket(family, socket.SOCK_DGRAM) as s:
                    s.settimeout(timeout)
                    if proto == "udpc":
                        # Connected: ICMP errors (port unreachable) are reported to the socket.
                        s.connect((target, port))
                        s.send(b"ping")
                        reply = s.recv(1024).decode()
                    else:
                        s.sendto(b"ping", (target, port))
                        reply = s.recvfrom(1024)[0].decode()
            results[target] = reply
        except OSError as e:
            results[target] = f"error: {e}"
    return results


def _address(sockaddr) -> str:
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind(s: socket.socket, family, source_port: int) -> None:
    if source_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", source_port))


def one_request(proto: str, target: str, port: int, timeout: float = TIMEOUT, source_port: int = 0) -> dict:
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    start = time.monotonic()
    result = {}
    local = ""
    step = "connect"
    try:
        with socket.socket(family, kind) as s:
            s.settimeout(timeout)
            try:
                _bind(s, family, source_port)
                if proto == "udp":
                    step = "send"
                    s.sendto(b"ping", (target, port))
                    local = _address(s.getsockname())
                    step = "receive"
                    data, peer = s.recvfrom(1024)
                else:
                    s.connect((target, port))
                    local = _address(s.getsockname())
                    peer = s.getpeername()
                    step = "send"
                    s.sendall(b"ping")
                    step = "receive"
                    data = s.recv(1024)
            finally:
                local = local or _local(s)
            result = {"reply": data.decode(), "peer": _address(peer), "local": local}
    except OSError as e:
        result = {"error": f"{type(e).__name__}: {e}", "errno": e.errno, "step": step, "local": local}
    result["elapsed"] = round(time.monotonic() - start, 4)
    return result


def _local(s: socket.socket) -> str:
    try:
        return _address(s.getsockname())
    except OSError:
        return ""


def peer(proto: str, port: int, target: str, count: int = 1, interval: float = 0.0, source_port: int = 0) -> list:
    results = []
    for i in range(min(count, MAX_COUNT)):
        if i and interval:
            time.sleep(interval)
        results.append(one_request(proto, target, port, source_port=source_port))
    return results


def _read_line(s: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(1024)
        if not chunk:
            raise ConnectionError("closed by peer")
        data += chunk
    return data.decode().rstrip("\n")


def hold(port: int, target: str, source_port: int = 0) -> None:
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    conns: dict[int, socket.socket] = {}
    next_id = 0

    def reply(obj):
        print(json.dumps(obj), flush=True)

    while True:
        ready, _, _ = select.select([sys.stdin], [], [], HOLD_IDLE)
        if not ready:
            break
        line = sys.stdin.readline()
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] == "open":
            opened = []
            for _ in range(int(words[1]) if len(words) > 1 else 1):
                if len(conns) >= HOLD_MAX:
                    opened.append({"error": "too many connections"})
                    break
                cid = next_id
                next_id += 1
                s = socket.socket(family, socket.SOCK_STREAM)
                s.settimeout(TIMEOUT)
                try:
                    _bind(s, family, source_port)
                    s.connect((target, port))
                    s.sendall(f"hello {cid}\n".encode())
                    opened.append({"id": cid, "reply": _read_line(s), "peer": _address(s.getpeername())})
                    conns[cid] = s
                except OSError as e:
                    s.close()
                    opened.append({"id": cid, "error": f"{type(e).__name__}: {e}"})
            reply(opened)
        elif words[0] == "ping":
            results = {}
            for cid, s in conns.items():
                try:
                    s.sendall(f"ping {cid}\n".encode())
                    results[str(cid)] = _read_line(s)
                except OSError as e:
                    results[str(cid)] = f"error: {type(e).__name__}: {e}"
            reply(results)
        else:
            reply({"error": f"unknown command {words[0]!r}"})
    for s in conns.values():
        s.close()


def probe(timeout: float, probes: list) -> dict:
    """All probes at once (one thread each): a full matrix row takes one timeout, not one per probe."""
    results: dict[str, str] = {}

    def one(probe_id, proto, target, port, source_port):
        result = one_request(proto, target, port, timeout, source_port)
        results[str(probe_id)] = result.get("reply", f"error: {result.get('error')}")

    threads = [threading.Thread(target=one, args=tuple(p), daemon=True) for p in probes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return results


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve([int(p) for p in sys.argv[2].split(",")], sys.argv[3] if len(sys.argv) > 3 else "")
    elif sys.argv[1] == "probe":
        print(json.dumps(probe(float(sys.argv[2]), json.loads(sys.argv[3]))))
    elif sys.argv[1] == "peer":
        print(
            json.dumps(
                peer(
                    sys.argv[2],
                    int(sys.argv[3]),
                    sys.argv[4],
                    int(sys.argv[5]) if len(sys.argv) > 5 else 1,
                    float(sys.argv[6]) if len(sys.argv) > 6 else 0.0,
                    int(sys.argv[7]) if len(sys.argv) > 7 else 0,
                )
            )
        )
    elif sys.argv[1] == "hold":
        hold(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    else:
        print(json.dumps(check(sys.argv[1], sys.argv[3:], int(sys.argv[2]))))
