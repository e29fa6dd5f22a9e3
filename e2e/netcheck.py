"""Traffic for the lab, run inside pod namespaces: a TCP/UDP echo server and a client that reports
which targets answered, as JSON. Every loop is bounded in count and time."""
import json
import socket
import sys
import threading


def serve(port: int, name: str = "") -> None:
    prefix = f"{name}: " if name else ""

    def tcp(family):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        s.listen(128)
        while True:
            conn, peer = s.accept()
            with conn:
                data = conn.recv(1024)
                conn.sendall(prefix.encode() + data + f" from {peer[0]}".encode())

    def udp(family):
        s = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        while True:
            data, peer = s.recvfrom(1024)
            s.sendto(prefix.encode() + data + f" from {peer[0]}".encode(), peer)

    for fn in (tcp, udp):
        for family in (socket.AF_INET, socket.AF_INET6):
            threading.Thread(target=fn, args=(family,), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


def check(proto: str, targets: list[str], port: int, timeout: float = 2.0) -> dict:
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
                    s.sendto(b"ping", (target, port))
                    reply = s.recvfrom(1024)[0].decode()
            results[target] = reply
        except OSError as e:
            results[target] = f"error: {e}"
    return results


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "")
    else:
        print(json.dumps(check(sys.argv[1], sys.argv[3:], int(sys.argv[2]))))
