"""weir installed as a user installs it: `helm install` on a two-node cluster of upstream kubelet,
containerd and control plane (scripts/cluster.sh), driven by kubectl only. What a user would check
first: pods talk on one node and across nodes, Services answer by ClusterIP, NodePort and DNS name,
hostPort works, pods reach the internet, a deleted pod leaves nothing, and an upgrade under traffic
drops nothing.

The cluster comes up once for the module (a few minutes) and goes down after it, also on failure.
WEIR_CLUSTER_REUSE=1 uses (and leaves up) a cluster that `scripts/cluster.sh up` already made.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from e2e.kcluster import images, topology
from e2e.kcluster.cluster import KUBE_BIN, REPO, Cluster

AGNHOST = images.AGNHOST_IMAGE
REUSE = os.environ.get("WEIR_CLUSTER_REUSE") == "1"


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    if REUSE and c.is_up():
        yield c
        return
    c.up()
    try:
        yield c
    finally:
        c.down()
        assert not topology.existing(), "cluster namespaces left behind"


def pod_manifest(name: str, node: str, labels: dict[str, str] | None = None, host_port: int | None = None) -> dict:
    port = {"containerPort": 8080, "name": "http"}
    if host_port:
        port["hostPort"] = host_port
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "agnhost",
                    "image": AGNHOST,
                    "imagePullPolicy": "Never",
                    "args": ["netexec", "--http-port=8080", "--udp-port=8081"],
                    "ports": [port, {"containerPort": 8081, "protocol": "UDP"}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
                }
            ],
        },
    }


def apply(c: Cluster, *objects: dict) -> None:
    c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def wait_ready(c: Cluster, *names: str, timeout: int = 240) -> None:
    """Waits for the pods; on a timeout the error carries what kubectl describe and the nodes' weir
    agents said, since a pod that never gets ready is otherwise a bare "timed out"."""
    res = c.kubectl("wait", "--for=condition=Ready", f"--timeout={timeout}s", *(f"pod/{n}" for n in names), check=False)
    if res.returncode == 0:
        return
    described = c.kubectl("describe", "pods", *names, check=False).stdout
    agents = c.kubectl(
        "logs", "-n", "kube-system", "-l", "app.kubernetes.io/name=weir", "--tail=30", "--prefix", check=False
    ).stdout
    raise AssertionError(f"pods not ready: {res.stderr}{res.stdout}\n{described[-6000:]}\n{agents[-4000:]}")


def pod_ip(c: Cluster, name: str) -> str:
    return c.kubectl("get", "pod", name, "-o", "jsonpath={.status.podIP}").stdout.strip()


def exec_in(c: Cluster, pod: str, *argv: str, check: bool = True) -> str:
    return c.kubectl("exec", pod, "--", *argv, check=check, timeout=60).stdout


def curl(c: Cluster, pod: str, url: str) -> str:
    return exec_in(c, pod, "curl", "-sS", "--max-time", "5", url)


@pytest.fixture(scope="module")
def workload(cluster):
    """Servers and clients on both nodes, and a NodePort Service over the servers."""
    n1, n2 = (n.name for n in cluster.nodes)
    apply(
        cluster,
        pod_manifest("web-1", n1, {"app": "web"}),
        pod_manifest("web-2", n2, {"app": "web"}),
        pod_manifest("client-1", n1),
        pod_manifest("client-2", n2),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {
                "type": "NodePort",
                "selector": {"app": "web"},
                "ports": [
                    {"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080},
                    {"name": "udp", "port": 81, "targetPort": 8081, "protocol": "UDP", "nodePort": 30081},
                ],
            },
        },
    )
    wait_ready(cluster, "web-1", "web-2", "client-1", "client-2")
    yield {"n1": n1, "n2": n2}


def test_every_kube_system_pod_runs_on_weir(cluster):
    pods = cluster.kubectl_json("get", "pods", "-n", "kube-system")["items"]
    assert {p["metadata"]["name"].split("-")[0] for p in pods} >= {"weir", "coredns"}
    not_running = [p["metadata"]["name"] for p in pods if p["status"]["phase"] != "Running"]
    assert not not_running
    nodes = cluster.kubectl_json("get", "nodes")["items"]
    assert all(any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]) for n in nodes)


def test_pod_to_pod_same_node_and_across(cluster, workload):
    assert curl(cluster, "client-1", f"http://{pod_ip(cluster, 'web-1')}:8080/hostname") == "web-1"
    assert curl(cluster, "client-1", f"http://{pod_ip(cluster, 'web-2')}:8080/hostname") == "web-2"
    assert curl(cluster, "client-2", f"http://{pod_ip(cluster, 'web-1')}:8080/hostname") == "web-1"


def test_cluster_ip_reaches_backends_on_both_nodes(cluster, workload):
    cluster_ip = cluster.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").stdout.strip()
    for client in ("client-1", "client-2"):
        seen = {curl(cluster, client, f"http://{cluster_ip}/hostname") for _ in range(12)}
        assert seen == {"web-1", "web-2"}, f"{client} reached {seen}"


def test_node_port_from_outside_the_nodes(cluster, workload):
    for node in cluster.nodes:
        seen = set()
        for _ in range(12):
            res = cluster.in_cp(["curl", "-sS", "--max-time", "5", f"http://{node.ip}:30080/hostname"])
            seen.add(res.stdout)
        assert seen == {"web-1", "web-2"}, f"NodePort on {node.name} reached {seen}"


def test_dns_names_through_coredns(cluster, workload):
    assert curl(cluster, "client-2", "http://web.default.svc.cluster.local/hostname") in ("web-1", "web-2")
    assert curl(cluster, "client-1", "http://web/hostname") in ("web-1", "web-2")
    answer = exec_in(cluster, "client-1", "dig", "+short", "kubernetes.default.svc.cluster.local")
    assert answer.strip() == "10.96.0.1"


def test_pods_reach_the_api_server_through_the_kubernetes_service(cluster, workload):
    # Any HTTP answer (401 without a token) proves the connection through weir's translation.
    code = exec_in(
        cluster,
        "client-2",
        "curl",
        "-sk",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        "https://kubernetes.default/version",
    )
    assert code in ("200", "401", "403")


def test_host_port(cluster, workload):
    apply(cluster, pod_manifest("hostport", workload["n2"], host_port=31888))
    wait_ready(cluster, "hostport")
    res = cluster.in_cp(["curl", "-sS", "--max-time", "5", f"http://{cluster.nodes[1].ip}:31888/hostname"])
    assert res.stdout == "hostport"
    cluster.kubectl("delete", "pod", "hostport", "--wait=true")


@pytest.fixture
def internet_server(cluster):
    """An HTTP server on the internet host that answers with the address it sees."""
    proc = subprocess.Popen(
        [
            "nsenter",
            f"--net=/run/netns/{topology.netns('inet')}",
            "--",
            str(KUBE_BIN / "agnhost"),
            "netexec",
            "--http-port=8080",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    yield f"http://{topology.INTERNET_HOST_IP}:8080"
    proc.kill()
    proc.wait()


def test_pods_reach_the_internet_with_the_node_address(cluster, workload, internet_server):
    for client, node in (("client-1", cluster.nodes[0]), ("client-2", cluster.nodes[1])):
        seen = curl(cluster, client, f"{internet_server}/clientip")
        assert seen.rsplit(":", 1)[0] == node.ip, f"{client}: the internet saw {seen}"


def weirctl_on(c: Cluster, node_name: str, *args: str) -> str:
    """`weirctl ARGS` in the weir pod of `node_name`, as an operator runs it."""
    weir_pod = "pod/" + agent_pod(c, node_name)["metadata"]["name"]
    return c.kubectl("exec", "-n", "kube-system", weir_pod, "--", "weirctl", *args).stdout


def test_weirctl_json_parses_and_names_services(cluster, workload):
    assert curl(cluster, "client-1", "http://web/hostname") in ("web-1", "web-2")
    for node in cluster.nodes:
        for command in ("status", "services", "conntrack", "affinity", "endpoints", "masquerade", "metrics"):
            json.loads(weirctl_on(cluster, node.name, command, "-o", "json"))
        for line in weirctl_on(cluster, node.name, "events", "-o", "json", "--timeout_s=2").splitlines():
            json.loads(line)
        services = json.loads(weirctl_on(cluster, node.name, "services", "-o", "json"))["services"]
        named = {(s["service"]["namespace"], s["service"]["name"]) for s in services if s["service"]}
        assert {("default", "web"), ("default", "kubernetes"), ("kube-system", "kube-dns")} <= named, named
        status = json.loads(weirctl_on(cluster, node.name, "status", "-o", "json"))
        assert status["agent"]["source"] == "kubernetes" and status["agent"]["last_sync"], status["agent"]
        assert status["agent"]["node"] == node.name
        # Pods' links can outlive a pod by a collection interval; the node's own must be attached.
        assert [link["pin"] for link in status["links"] if link["group"] != "pods" and not link["attached"]] == []
        assert status["errors"] == []


def node_leftovers(c: Cluster, ip: str) -> list[str]:
    found = []
    for node in c.nodes:
        routes = node.run("ip", "route", "show", "table", "main").stdout
        if ip in routes:
            found.append(f"{node.name}: route {ip}")
        # weir's IPAM keeps one file per allocated address, named by it.
        ipam = node.run("sh", "-c", f"ls /var/lib/cni/weir/*/{ip} 2>/dev/null", check=False).stdout.strip()
        if ipam:
            found.append(f"{node.name}: IPAM {ipam}")
        weir_pod = "pod/" + agent_pod(c, node.name)["metadata"]["name"]
        endpoints = c.kubectl(
            "exec",
            "-n",
            "kube-system",
            weir_pod,
            "--",
            "weirctl",
            "--bpf_root=/sys/fs/bpf/weir",
            "endpoints",
            check=False,
        ).stdout
        if f"{ip} " in endpoints or f"{ip}\n" in endpoints:
            found.append(f"{node.name}: endpoint {ip}")
    return found


def test_deleted_pod_leaves_nothing(cluster, workload):
    apply(cluster, pod_manifest("ephemeral", workload["n1"]))
    wait_ready(cluster, "ephemeral")
    ip = pod_ip(cluster, "ephemeral")
    veths = cluster.nodes[0].run("ip", "-o", "link", "show", "type", "veth").stdout.count("\n")
    cluster.kubectl("delete", "pod", "ephemeral", "--wait=true")
    deadline = time.monotonic() + 30
    while node_leftovers(cluster, ip) and time.monotonic() < deadline:
        time.sleep(1)
    assert not node_leftovers(cluster, ip)
    assert cluster.nodes[0].run("ip", "-o", "link", "show", "type", "veth").stdout.count("\n") == veths - 1


def stamp() -> str:
    """The time of day as the agents' logs write it, to find a failure in them."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


class Traffic:
    """Requests in a loop until stopped: from a pod to the ClusterIP, from outside to a NodePort."""

    def __init__(self, cluster: Cluster, client_pod: str, cluster_ip: str, node_ip: str):
        self.failures: list[str] = []
        self.requests = 0
        self._stop = threading.Event()
        # One kubectl exec for the whole run: the loop runs in the pod and prints one line a request.
        script = (
            f"while [ ! -e /tmp/stop ]; do "
            f"curl -s -o /dev/null -w '%{{http_code}}\\n' --max-time 2 http://{cluster_ip}/hostname "
            f'|| echo "fail $?"; sleep 0.05; done'
        )
        exec_in(cluster, client_pod, "rm", "-f", "/tmp/stop")
        self._pod = subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{topology.netns('cp')}",
                "--",
                str(KUBE_BIN / "kubectl"),
                f"--kubeconfig={cluster.kubeconfig}",
                "exec",
                client_pod,
                "--",
                "sh",
                "-c",
                script,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._cluster, self._client = cluster, client_pod
        self._threads = [
            threading.Thread(target=self._read_pod),
            threading.Thread(target=self._node_port, args=(node_ip,)),
        ]
        for t in self._threads:
            t.start()

    def _read_pod(self) -> None:
        for line in self._pod.stdout:
            said = line.strip()
            if said.startswith("fail") and self.failures:  # curl's exit code, after the code it printed
                self.failures[-1] += f" (curl exit {said.split()[-1]})"
                continue
            self.requests += 1
            if said != "200":
                self.failures.append(f"{stamp()} ClusterIP from pod: {said}")

    def _node_port(self, node_ip: str) -> None:
        while not self._stop.is_set():
            res = self._cluster.in_cp(
                [
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "2",
                    f"http://{node_ip}:30080/hostname",
                ],
                check=False,
            )
            self.requests += 1
            if res.stdout != "200":
                self.failures.append(f"{stamp()} NodePort from outside: {res.stdout} (curl exit {res.returncode})")
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        exec_in(self._cluster, self._client, "touch", "/tmp/stop")
        self._pod.wait(30)
        for t in self._threads:
            t.join()


# -- the operator's side: kube-proxy's health and metrics, the probes -------------------------------


def node_http(node, port: int, path: str, host: str | None = None) -> tuple[int, str]:
    """GET from inside the node's namespaces, as a load balancer's health check or a scraper would."""
    url = f"http://{host or node.ip}:{port}{path}"
    res = node.run("curl", "-s", "-m", "5", "-w", "\n%{http_code}", url, check=False)
    body, _, code = res.stdout.rpartition("\n")
    return int(code or 0), body


def samples(text: str) -> dict[str, float]:
    """Prometheus text format: 'name{labels}' -> value."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_kube_proxy_healthz_on_10256_answers_as_kube_proxy_does(cluster, workload):
    for node in cluster.nodes:
        code, body = node_http(node, 10256, "/healthz")
        assert code == 200, body
        health = json.loads(body)
        assert set(health) >= {"lastUpdated", "currentTime", "nodeEligible"}, health
        code, mode = node_http(node, 10249, "/proxyMode", host="127.0.0.1")  # kube-proxy's default bind
        assert code == 200 and mode.strip(), mode


def test_metrics_scrape_with_kube_proxy_names(cluster, workload):
    for node in cluster.nodes:
        for port, host in ((9876, None), (10249, "127.0.0.1")):  # the agent's metrics port, and kube-proxy's
            code, text = node_http(node, port, "/metrics", host)
            assert code == 200, text[:500]
            m = samples(text)
            assert time.time() - m["kubeproxy_sync_proxy_rules_last_timestamp_seconds"] < 600
            assert m["kubeproxy_sync_full_proxy_rules_duration_seconds_count"] >= 1
            # The workload's pods became ready: the EndpointSlice controller stamped the changes.
            assert m["kubeproxy_network_programming_duration_seconds_count"] >= 1
            assert m["process_resident_memory_bytes"] > 0 and m["process_open_fds"] > 0
            maps = {k for k in m if k.startswith("weir_map_capacity{")}
            assert 'weir_map_capacity{map="weir_ct"}' in maps, sorted(maps)  # conntrack


def agent_pods(c: Cluster, node_name: str | None = None) -> list[dict]:
    """The weir DaemonSet's pods (on `node_name` only, when given)."""
    on_node = [f"--field-selector=spec.nodeName={node_name}"] if node_name else []
    return c.kubectl_json("get", "pods", "-n", "kube-system", "-l", "app.kubernetes.io/name=weir", *on_node)["items"]


def agent_pod_names(c: Cluster) -> set[str]:
    return {p["metadata"]["name"] for p in agent_pods(c)}


def agent_pod(c: Cluster, node_name: str) -> dict:
    pods = agent_pods(c, node_name)
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def upgrade_weir(c: Cluster, *args: str) -> None:
    """`helm upgrade` of the installed release from this tree's chart, keeping its values."""
    c.helm("upgrade", "weir", str(REPO / "charts/weir"), "-n", "kube-system", "--reuse-values", *args)


def condition(pod: dict, kind: str) -> bool:
    return any(c["type"] == kind and c["status"] == "True" for c in pod["status"].get("conditions", []))


def agent_pid(node) -> int:
    """The weir-agent process in the node's network namespace."""
    netns = os.stat(f"/proc/{node.pid('holder')}/ns/net").st_ino
    for pid in subprocess.run(["pgrep", "-x", "weir-agent"], capture_output=True, text=True).stdout.split():
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino == netns:
                return int(pid)
        except FileNotFoundError:
            pass
    raise AssertionError(f"no weir-agent in {node.name}'s namespace")


# A tracer of its own: it stops the thread, then reaps it when it dies. (A tracee's exit reaches its
# parent, here containerd's shim, only after its tracer has waited for it: a tracer that never waits
# keeps the killed container "running".)
TRACER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
tid = int(sys.argv[1])
for request in (0x4206, 0x4207):  # PTRACE_SEIZE, PTRACE_INTERRUPT
    if libc.ptrace(request, tid, None, None) != 0:
        sys.exit(f"ptrace {request:#x}: errno {ctypes.get_errno()}")
print("stopped", flush=True)
while True:  # every stop is left stopped; only the tracee's death ends this
    _, status = os.waitpid(tid, 0x40000000)  # __WALL
    if os.WIFEXITED(status) or os.WIFSIGNALED(status):
        break
"""


class StuckThread:
    """Stops one thread (the agent's main thread, which runs the sync loop) with ptrace, leaving the
    process's other threads (the HTTP servers) running: a sync loop stuck, as a deadlock would."""

    def __init__(self, tid: int):
        self._tracer = subprocess.Popen([sys.executable, "-c", TRACER, str(tid)], stdout=subprocess.PIPE, text=True)
        line = self._tracer.stdout.readline().strip()
        if line != "stopped":
            self._tracer.kill()
            raise RuntimeError(f"could not stop thread {tid}: {line or self._tracer.wait()}")

    def release(self) -> None:
        """Ends the tracer: a thread still alive (the test failed) resumes."""
        self._tracer.kill()
        self._tracer.wait()


def test_liveness_restarts_an_agent_whose_sync_loop_is_stuck_and_traffic_goes_on(cluster, workload):
    node = cluster.nodes[1]
    before = agent_pod(cluster, node.name)
    restarts = before["status"]["containerStatuses"][0]["restartCount"]
    cluster_ip = cluster.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").stdout.strip()
    traffic = Traffic(cluster, "client-2", cluster_ip, node.ip)
    stuck = StuckThread(agent_pid(node))
    try:
        # The loop's stall limit (60 s), three failed liveness probes 10 s apart, the grace period.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            now = agent_pod(cluster, node.name)["status"]["containerStatuses"][0]
            if now["restartCount"] > restarts:
                break
            time.sleep(5)
        else:
            raise AssertionError("the agent with a stuck sync loop was not restarted")
        cluster.kubectl(
            "-n", "kube-system", "wait", "--for=condition=Ready", f"pod/{before['metadata']['name']}", "--timeout=120s"
        )
    finally:
        stuck.release()
        traffic.stop()
    assert traffic.requests > 50
    assert traffic.failures == [], f"{len(traffic.failures)} of {traffic.requests} failed: {traffic.failures[:10]}"


def test_an_agent_that_cannot_reach_the_api_is_alive_and_unready(cluster, workload):
    unreachable = "192.168.77.99"  # in the nodes' subnet, answered by no one
    before = agent_pod_names(cluster)
    upgrade_weir(cluster, "--set", f"k8sServiceHost={unreachable}")
    try:
        deadline = time.monotonic() + 120
        new = None
        while time.monotonic() < deadline and new is None:
            for pod in agent_pods(cluster):
                if pod["metadata"]["name"] not in before and pod["status"].get("phase") == "Running":
                    new = pod["metadata"]["name"]
            time.sleep(2)
        assert new, "no agent pod with the unreachable API server started"
        # Long enough for the startup probe to have passed or failed, and a readiness probe or ten.
        time.sleep(30)
        pod = cluster.kubectl_json("get", "pod", "-n", "kube-system", new)
        status = pod["status"]["containerStatuses"][0]
        assert status["restartCount"] == 0 and status.get("started") is True, status
        assert not condition(pod, "Ready"), pod["status"]["conditions"]
    finally:
        cluster.helm("rollback", "weir", "-n", "kube-system", "--wait", "--timeout", "5m")
        cluster.kubectl("-n", "kube-system", "rollout", "status", "daemonset/weir", "--timeout=300s")


def test_helm_upgrade_rolls_the_daemonset_without_dropping_a_request(cluster, workload):
    """Also with other map sizes: each new agent migrates the pinned conntrack and Maglev maps it
    finds (docs/install.md, "Changing a map size") while the requests go on."""
    cluster_ip = cluster.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").stdout.strip()
    before = agent_pod_names(cluster)
    sizes = ["--set", "agent.conntrackMax=131072", "--set", "agent.maglevTableSize=2039"]
    traffic = Traffic(cluster, "client-1", cluster_ip, cluster.nodes[1].ip)
    try:
        time.sleep(2)
        upgrade_weir(cluster, "--set", "agent.logLevel=debug", *sizes, "--wait", "--timeout", "5m")
        cluster.kubectl("-n", "kube-system", "rollout", "status", "daemonset/weir", "--timeout=300s")
        time.sleep(2)
    finally:
        traffic.stop()
    after = agent_pod_names(cluster)
    assert not before & after, "the DaemonSet's pods were not replaced"
    logs = {pod: cluster.kubectl("logs", "-n", "kube-system", pod).stdout for pod in after}
    assert traffic.requests > 50
    assert traffic.failures == [], (
        f"{len(traffic.failures)} of {traffic.requests} failed: {traffic.failures[:10]}\n"
        + "\n".join(f"== {pod}:\n" + "\n".join(said.splitlines()[:60]) for pod, said in logs.items())
    )
    for said in logs.values():
        assert "migrated pinned map weir_ct: 262144 entries, this agent is configured for 131072" in said, said


def test_helm_uninstall_cleans_the_nodes(cluster, workload):
    cluster.helm("uninstall", "weir", "-n", "kube-system", "--wait", "--timeout", "2m")
    deadline = time.monotonic() + 60

    def left():
        found = []
        for node in cluster.nodes:
            if node.run("ls", "/etc/cni/net.d").stdout.strip():
                found.append(f"{node.name}: conflist")
            # (The bpffs itself always shows the kernel's maps.debug and progs.debug.)
            if node.run("ls", "/sys/fs/bpf/weir", check=False).returncode == 0:
                found.append(f"{node.name}: pinned objects")
        return found

    while left() and time.monotonic() < deadline:
        time.sleep(1)
    assert not left()
