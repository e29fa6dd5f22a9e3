#!/usr/bin/env python3
# An API client in the control plane's namespace, driven by JSON lines on stdin:
#   {"op": "bulk", "file": F, "threads": T}: POSTs every [path, object] line of F over T keep-alive
#     connections; progress lines, then {"done": n, "seconds": s, "errors": [...]}
#   {"op": "request", "method", "path", "body", "content_type"}: one request; {"status", "t_send"
#     (CLOCK_MONOTONIC ns, just before sending), "t_send_wall", "t_done", "body"}
import http.client
import json
import ssl
import sys
import threading
import time

server, ca, cert, key = sys.argv[1:5]
host, port = server[len("https://") :].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
out = threading.Lock()


def emit(obj):
    with out:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


class Conn:
    def __init__(self):
        self.c = None

    def do(self, method, path, body, ctype="application/json"):
        for attempt in range(6):
            try:
                if self.c is None:
                    self.c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)
                self.c.request(method, path, body=body, headers={"Content-Type": ctype, "Accept": "application/json"})
                r = self.c.getresponse()
                data = r.read()
                if r.status in (429, 500, 503, 504) and attempt < 5:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                return r.status, data
            except (OSError, http.client.HTTPException):
                self.c = None
                if attempt == 5:
                    raise
                time.sleep(0.2 * (attempt + 1))


def bulk(path, threads):
    with open(path) as f:
        items = [json.loads(line) for line in f]
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "errors": []}
    t0 = time.monotonic()

    def worker():
        conn = Conn()
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= len(items):
                return
            api_path, obj = items[i]
            try:
                status, data = conn.do("POST", api_path, json.dumps(obj))
            except Exception as e:
                status, data = -1, str(e).encode()
            with lock:
                if status not in (200, 201):
                    state["errors"].append(
                        [api_path, obj["metadata"]["name"], status, data[:300].decode(errors="replace")]
                    )
                state["done"] += 1
                done = state["done"]
            if done % 2000 == 0:
                emit({"progress": done, "of": len(items), "seconds": time.monotonic() - t0})

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    emit(
        {
            "done": state["done"],
            "seconds": time.monotonic() - t0,
            "errors": state["errors"][:20],
            "error_count": len(state["errors"]),
        }
    )


main = Conn()
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "bulk":
        bulk(cmd["file"], cmd["threads"])
    elif cmd["op"] == "request":
        body = cmd.get("body")
        t_wall = time.time_ns()
        t_send = time.monotonic_ns()
        status, data = main.do(cmd["method"], cmd["path"], body, cmd.get("content_type", "application/json"))
        t_done = time.monotonic_ns()
        emit(
            {
                "status": status,
                "t_send": t_send,
                "t_send_wall": t_wall,
                "t_done": t_done,
                "body": data[:2000].decode(errors="replace"),
            }
        )
