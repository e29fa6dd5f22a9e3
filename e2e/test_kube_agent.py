"""weir-agent against a real upstream kube-apiserver (weirlab/kube/control_plane.py): Services and
EndpointSlices written with kubectl reach the datapath of a two-node lab (weirlab/cluster.py), through
restarts of the API server and of an agent, with the agents holding only the read-only ClusterRole of
manifests/weir.yaml; objects the API accepts but weir cannot use are ignored.

Network safety: the control plane runs in a lab namespace ("api", 192.168.50.200) on the lab's fabric,
like the outside client; the agents reach it over the fabric, never the machine's own loopback, and
nothing routes between the lab and the machine's namespace. Skipped when the upstream binaries are
not built (weirlab/kube/build_upstream.sh).
"""

from __future__ import annotations

import errno
import json
import os
import statistics
import subprocess
import time

import pytest
import yaml

from e2e.conftest import wait_until
from e2e.test_services import failures, placed, tally, until_all_seen
from weirlab.cluster import FABRIC_PREFIX, Cluster, endpoint_slice_yaml, node_ip, service_yaml
from weirlab.kube.control_plane import KUBE_VERSION, ControlPlane, kube_bin_dir, missing_binaries
from weirlab.lab import NETCHECK, REPO, Node, Pod, in_netns

pytestmark = pytest.mark.skipif(
    bool(missing_binaries(names=("etcd", "kube-apiserver", "kubectl"))),
    reason=f"upstream Kubernetes {KUBE_VERSION} binaries not built in {kube_bin_dir()} "
    "(run weirlab/kube/build_upstream.sh, or scripts/setup.sh with WEIR_KUBE=1)",
)

API_IP = f"{FABRIC_PREFIX}.200"
KUBERNETES_SERVICE = "10.96.0.1:443/TCP"  # the apiserver's own Service: every agent syncs it
CLUSTER_IP = "10.96.0.10"
NODE_PORT = 30080
PORTS = [("http", 80, 8080, "TCP"), ("udp", 80, 8080, "UDP")]
SLICE_PORTS = [("http", 8080, "TCP"), ("udp", 8080, "UDP")]
ALT_PORT = 9090  # second echo server in every web pod, naming itself "<pod>-alt"
CONVERGE = 20.0  # seconds for an agent to follow a change (watch latency is sub-second; slack for load)


# ---------------------------------------------------------------------------------------------------
# Helpers


def agent_rbac_yaml() -> str:
    """The ClusterRole of manifests/weir.yaml (the chart rendered), bound to the User of the agents'
    kubeconfig (its client certificate's CN), instead of the in-cluster ServiceAccount."""
    docs = yaml.safe_load_all((REPO / "manifests" / "weir.yaml").read_text())
    (role,) = [d for d in docs if d and d["kind"] == "ClusterRole"]
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "weir-agent-user"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role["metadata"]["name"]},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "weir-agent"}],
    }
    return json.dumps(role) + "\n---\n" + json.dumps(binding) + "\n"


def can_i(cp: ControlPlane, verb: str, resource: str, *extra: str) -> bool:
    res = cp.kubectl("auth", "can-i", verb, resource, "--as=weir-agent", *extra, check=False)
    assert res.stdout.strip() in ("yes", "no"), res
    return res.stdout.strip() == "yes"


def grant_agent_rbac(cp: ControlPlane) -> None:
    cp.kubectl("apply", "-f", "-", input=agent_rbac_yaml())
    # The RBAC authorizer reads roles through an informer: wait until the grant is in force.
    assert wait_until(lambda: can_i(cp, "watch", "endpointslices.discovery.k8s.io", "-A"), timeout=10)


def assert_in_netns(cp: ControlPlane) -> None:
    """Every control-plane process runs in the control plane's lab namespace, none in ours."""
    want = os.stat(f"/run/netns/{cp.netns}").st_ino
    for proc in (cp.etcd, cp.apiserver, cp.controller_manager):
        if proc is not None:
            assert os.stat(f"/proc/{proc.popen.pid}/ns/net").st_ino == want, proc.name


def kube_apply(cp: ControlPlane, *docs: str) -> float:
    """kubectl apply (server-side) of the documents; how long kubectl took. Server-side: a client-side
    apply's strategic merge keys Service ports by number alone, so changing the port of a Service
    with TCP and UDP on the same port drops one of them (an upstream kubectl limitation)."""
    started = time.monotonic()
    cp.kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=weir-e2e", "-f", "-", input="---\n".join(docs)
    )
    return time.monotonic() - started


def slice_yaml(pods: list[Pod], ports=SLICE_PORTS, service: str = "web") -> str:
    return endpoint_slice_yaml(service, placed(pods), list(ports))


def web_service_yaml(ports=PORTS, type_: str = "NodePort") -> str:
    return service_yaml("web", list(ports), cluster_ip=CLUSTER_IP, type_=type_, node_port=NODE_PORT)


def served(node: Node) -> dict[str, set[str]]:
    """{"10.96.0.10:80/TCP": {"10.244.1.2:8080", ...}} from `weirctl services` (every scope)."""
    table: dict[str, set[str]] = {}
    current = None
    for line in node.weirctl("services").splitlines()[1:]:
        if not line.strip():
            continue
        if not line.startswith(" "):
            current = table.setdefault(line.split()[0], set())
        elif current is not None and not line.strip().startswith("("):
            current.add(line.split()[0].split("/")[0])
    return table


def wait_served(cluster: Cluster, want: dict[str, dict[str, set[str] | None]], timeout: float = CONVERGE) -> float:
    """Until each node (by name) serves each frontend with exactly those backends (None: no such
    frontend); the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    for name, frontends in want.items():
        node = next(n for n in cluster.nodes if n.name == name)
        while True:
            table = served(node)
            if all(table.get(f) == b for f, b in frontends.items()):
                break
            if time.monotonic() > deadline:
                log = (node.dir / "agent.log").read_text()[-3000:]
                raise AssertionError(
                    f"{node.name} did not converge to {frontends}; serves "
                    f"{ {f: table.get(f) for f in frontends} }\nagent log tail:\n{log}"
                )
            time.sleep(0.05)
    return time.monotonic() - started


def web_frontends(cluster: Cluster, backends: set[str] | None, port: int = 80) -> dict[str, dict]:
    """What both nodes should serve for "web": its ClusterIP (TCP and UDP) and the NodePort on the
    node's own address."""
    want = {}
    for i, node in enumerate(cluster.nodes, start=1):
        want[node.name] = {
            f"{CLUSTER_IP}:{port}/TCP": backends,
            f"{CLUSTER_IP}:{port}/UDP": backends,
            f"{node_ip(i)}:{NODE_PORT}/TCP": backends,
        }
    return want


def endpoints_of(pods: list[Pod], port: int = 8080) -> set[str]:
    return {f"{p.ipv4}:{port}" for p in pods}


def serve_alt(cluster: Cluster, pod: Pod) -> None:
    proc = cluster.lab.spawn(
        in_netns(pod.netns, ["python3", str(NETCHECK), "serve", str(ALT_PORT), f"{pod.name}-alt"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready", pod.name


def assert_traffic(cluster: Cluster, shell: Pod, lb_shell: Pod, wanted: set[str], port: int = 80) -> None:
    """Requests reach exactly the `wanted` backends (reply names) through the ClusterIP at the
    socket (lb_shell, in node1's socket-LB cgroup) and per packet (shell), and from the outside
    client through the NodePort of both nodes."""
    node1 = cluster.nodes[0]
    paths = {
        "ClusterIP socket LB tcp": lambda n: cluster.requests(
            lb_shell.netns, "tcp", CLUSTER_IP, port, count=n, node=node1
        ),
        "ClusterIP per-packet tcp": lambda n: cluster.requests(shell.netns, "tcp", CLUSTER_IP, port, count=n),
        "ClusterIP per-packet udp": lambda n: cluster.requests(shell.netns, "udp", CLUSTER_IP, port, count=n),
        "NodePort node1 tcp": lambda n: cluster.requests(cluster.client, "tcp", node_ip(1), NODE_PORT, count=n),
        "NodePort node2 tcp": lambda n: cluster.requests(cluster.client, "tcp", node_ip(2), NODE_PORT, count=n),
    }
    for path, fetch in paths.items():
        results = until_all_seen(fetch, wanted, first=3 * len(wanted) + 3)
        assert failures(results) == [], (path, failures(results)[:3])
        assert set(tally(results)) == wanted, (path, tally(results))


def agent_problems(node: Node, since: int = 0) -> list[str]:
    """Log lines of `node`'s agent that tell of a crash or a failed sync."""
    text = (node.dir / "agent.log").read_text(errors="replace")[since:]
    bad = ("critical", "sync: ", "Segmentation", "terminate called", "Aborted", "AddressSanitizer")
    return [line for line in text.splitlines() if any(b in line for b in bad)]


def assert_agents_healthy(cluster: Cluster) -> None:
    for node in cluster.nodes:
        assert node.agent is not None and node.agent.poll() is None, f"{node.name}'s agent exited"
        assert agent_problems(node) == [], node.name


@pytest.fixture
def kube(lab):
    """A two-node cluster whose agents watch a control plane in the lab namespace "api" on the
    fabric, as User weir-agent with manifests/weir.yaml's ClusterRole; the agents have synced once
    (they serve the `kubernetes` Service). The control plane is stopped first at teardown, then the lab."""
    cp = ControlPlane(lab.dir / "cp", netns=f"{lab.id}-api", address=API_IP)
    cluster = Cluster(lab, 2, ["snat", "snat"], kubeconfig=cp.agent_kubeconfig, start_agents=False)
    assert cluster.add_client("api", API_IP) == cp.netns
    lab.cleanups.append(cp.stop)  # also if the test is interrupted between here and `with`
    with cp:
        assert_in_netns(cp)
        grant_agent_rbac(cp)
        cluster.start_agents()
        wait_served(cluster, {node.name: {KUBERNETES_SERVICE: set()} for node in cluster.nodes})
        # Every collection the agents list is one the chart's ClusterRole grants (a forbidden one
        # would be retried, and warned about, forever).
        for node in cluster.nodes:
            assert "HTTP 403" not in (node.dir / "agent.log").read_text(errors="replace"), node.name
        yield cluster, cp


def web_pods(cluster: Cluster, alt: bool = False) -> tuple[list[Pod], Pod, Pod]:
    """web-1 on node1, web-2 and web-3 on node2 (echo servers on 8080, and on ALT_PORT with `alt`);
    `shell` (per-packet) and `lb_shell` (socket LB) on node1."""
    node1, node2 = cluster.nodes
    web = [node1.add_pod("web-1"), node2.add_pod("web-2"), node2.add_pod("web-3")]
    for pod in web:
        cluster.serve(pod)
        if alt:
            serve_alt(cluster, pod)
    return web, node1.add_pod("shell"), node1.add_pod("lb-shell")


# ---------------------------------------------------------------------------------------------------
# 1. Services and EndpointSlices from the API: apply, scale, change ports, delete


def test_services_follow_the_api(kube):
    cluster, cp = kube
    web, shell, lb_shell = web_pods(cluster, alt=True)

    kube_apply(cp, web_service_yaml(), slice_yaml(web[:2]))
    wait_served(cluster, web_frontends(cluster, endpoints_of(web[:2])))
    assert_traffic(cluster, shell, lb_shell, {"web-1", "web-2"})

    # Scale: a third backend in the slice.
    kube_apply(cp, slice_yaml(web))
    wait_served(cluster, web_frontends(cluster, endpoints_of(web)))
    assert_traffic(cluster, shell, lb_shell, {"web-1", "web-2", "web-3"})

    # Change ports: the Service port 80 -> 81, targetPort and the slice's port 8080 -> 9090.
    alt_ports = [(name, 81, ALT_PORT, proto) for name, _, _, proto in PORTS]
    alt_slice_ports = [(name, ALT_PORT, proto) for name, _, proto in SLICE_PORTS]
    kube_apply(cp, web_service_yaml(alt_ports), slice_yaml(web, alt_slice_ports))
    want = web_frontends(cluster, endpoints_of(web, ALT_PORT), port=81)
    for node in cluster.nodes:
        want[node.name].update({f"{CLUSTER_IP}:80/TCP": None, f"{CLUSTER_IP}:80/UDP": None})
    wait_served(cluster, want)
    assert_traffic(cluster, shell, lb_shell, {"web-1-alt", "web-2-alt", "web-3-alt"}, port=81)
    # weirctl names the Services as the API does, after these partial syncs too.
    for node in cluster.nodes:
        named = {s["frontend"]: s["service"] for s in json.loads(node.weirctl("services", "-o", "json"))["services"]}
        assert named[KUBERNETES_SERVICE] | {"id": 0} == {
            "id": 0,
            "namespace": "default",
            "name": "kubernetes",
            "port_name": "https",
        }, named
        assert named[f"{CLUSTER_IP}:81/UDP"] | {"id": 0} == {
            "id": 0,
            "namespace": "default",
            "name": "web",
            "port_name": "udp",
        }, named

    # Delete: every frontend of the Service goes, on both nodes.
    cp.kubectl("delete", "service", "web")
    cp.kubectl("delete", "endpointslice", "web-v4")
    wait_served(cluster, web_frontends(cluster, None, port=81))
    results = cluster.requests(cluster.client, "tcp", node_ip(1), NODE_PORT, count=2)
    assert len(failures(results)) == 2, results
    assert all(served(node).keys() == {KUBERNETES_SERVICE} for node in cluster.nodes)
    status = json.loads(cluster.nodes[0].weirctl("status", "-o", "json"))
    assert status["agent"]["source"] == "kubernetes" and status["counts"]["services"] == 1, status
    assert_agents_healthy(cluster)


# ---------------------------------------------------------------------------------------------------
# 2. kube-apiserver restart: the watches reconnect and the agents converge on later changes


def test_agents_recover_from_an_apiserver_restart(kube):
    cluster, cp = kube
    web, shell, lb_shell = web_pods(cluster)
    kube_apply(cp, web_service_yaml(), slice_yaml(web[:1]))
    wait_served(cluster, web_frontends(cluster, endpoints_of(web[:1])))
    logs = {node.name: len((node.dir / "agent.log").read_text()) for node in cluster.nodes}

    cp.stop_apiserver()
    # With the API gone the datapath keeps serving what it has, also across an agent restart: the
    # new agent adopts the pinned maps and, with nothing listed, must not sync (that would empty them).
    node2 = cluster.nodes[1]
    log2 = node2.dir / "agent.log"
    cluster.restart_agent(node2)
    assert wait_until(lambda: "adopted 5 frontends" in log2.read_text()[logs["node2"] :], timeout=10), log2.read_text()[
        logs["node2"] :
    ]
    time.sleep(1)
    for source, target, port in ((shell.netns, CLUSTER_IP, 80), (cluster.client, node_ip(2), NODE_PORT)):
        results = cluster.requests(source, "tcp", target, port, count=5)
        assert failures(results) == [] and set(tally(results)) == {"web-1"}, (target, results)
    assert "synced" not in log2.read_text()[logs["node2"] :], log2.read_text()[logs["node2"] :]
    cp.start_apiserver()
    started = time.monotonic()
    kube_apply(cp, slice_yaml(web))
    # A reconnect may wait out a backoff of up to ~13 s after a ~8 s outage (200 ms doubling).
    wait_served(cluster, web_frontends(cluster, endpoints_of(web)), timeout=45)
    recovered = time.monotonic() - started
    assert_traffic(cluster, shell, lb_shell, {"web-1", "web-2", "web-3"})

    for node in cluster.nodes:
        since = (node.dir / "agent.log").read_text()[logs[node.name] :]
        # The watch broke and was resumed (or relisted), never the process restarted.
        assert "kube: endpointslices:" in since, since[-2000:]
    assert_agents_healthy(cluster)

    # A later change still arrives over the resumed watches, promptly.
    kube_apply(cp, slice_yaml(web[1:]))
    again = wait_served(cluster, web_frontends(cluster, endpoints_of(web[1:])))
    print(f"\napiserver back -> converged after {recovered:.2f} s; next change {again:.2f} s")


# ---------------------------------------------------------------------------------------------------
# 3. Agent restart under traffic


def test_agent_restart_under_traffic(kube):
    cluster, cp = kube
    node1 = cluster.nodes[0]
    web, shell, lb_shell = web_pods(cluster)
    kube_apply(cp, web_service_yaml(), slice_yaml(web))
    wait_served(cluster, web_frontends(cluster, endpoints_of(web)))

    loops = {
        "ClusterIP per-packet tcp": (shell.netns, "tcp", CLUSTER_IP, 80, None),
        "ClusterIP per-packet udp": (shell.netns, "udp", CLUSTER_IP, 80, None),
        "ClusterIP socket LB tcp": (lb_shell.netns, "tcp", CLUSTER_IP, 80, node1),
        "NodePort tcp": (cluster.client, "tcp", node_ip(1), NODE_PORT, None),
        "NodePort udp": (cluster.client, "udp", node_ip(1), NODE_PORT, None),
    }
    count = 150
    procs = {}
    for name, (netns, proto, target, port, node) in loops.items():
        cmd = ["python3", str(NETCHECK), "peer", proto, str(port), target, str(count), "0.02"]
        argv = cluster.node_cgroup_cmd(node, netns, cmd) if node else in_netns(netns, cmd)
        procs[name] = cluster.lab.spawn(argv, stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    log = node1.dir / "agent.log"
    before = len(log.read_text())
    new_lines = lambda: log.read_text()[before:]
    started = time.monotonic()
    cluster.restart_agent(node1)
    # The new agent adopts the pinned maps, lists the API and syncs, all under traffic.
    assert wait_until(lambda: "synced " in new_lines(), timeout=15), new_lines()
    restart_time = time.monotonic() - started
    assert any(proc.poll() is None for proc in procs.values()), "the request loops ended before the restart"
    synced = [line for line in new_lines().splitlines() if "synced " in line]
    # The API holds what the maps already hold: the first sync of the new agent rewrites nothing.
    assert "(0 writes, 0 deletes)" in synced[0], new_lines()

    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=60)
        results = json.loads(out)
        assert len(results) == count, name
        failed = [(i, r) for i, r in enumerate(results) if "error" in r]
        assert failed == [], f"{name}: {len(failed)} of {count} failed: {failed[:5]}"
    assert_agents_healthy(cluster)
    # The restarted agent follows the API as before.
    kube_apply(cp, slice_yaml(web[:2]))
    wait_served(cluster, web_frontends(cluster, endpoints_of(web[:2])))
    print(f"\nagent restart (SIGTERM to synced from the API) took {restart_time:.2f} s")


# ---------------------------------------------------------------------------------------------------
# 4. RBAC: the agent's identity can read what it watches and nothing else


def test_agent_identity_is_read_only(lab):
    """Also the control plane in a lab namespace on the namespace's own loopback (the default
    address), and the agent's kubeconfig used directly."""
    netns = lab.make_netns("api")
    with ControlPlane(lab.dir / "cp", netns=netns) as cp:
        assert_in_netns(cp)
        assert cp.server.startswith("https://127.0.0.1:")
        grant_agent_rbac(cp)
        # The last three are NetworkPolicy's inputs (policy.enabled, on by default).
        for resource in (
            "services",
            "endpointslices.discovery.k8s.io",
            "nodes",
            "pods",
            "namespaces",
            "networkpolicies.networking.k8s.io",
        ):
            for verb in ("list", "watch"):
                assert can_i(cp, verb, resource, "-A"), (verb, resource)
        for verb, resource in (
            ("create", "services"),
            ("update", "services"),
            ("delete", "services"),
            ("patch", "endpointslices.discovery.k8s.io"),
            ("create", "endpointslices.discovery.k8s.io"),
            ("update", "nodes"),
            ("get", "secrets"),
            ("list", "secrets"),
            ("list", "configmaps"),
            ("create", "pods"),
            ("get", "pods"),
            ("update", "networkpolicies.networking.k8s.io"),
            ("create", "clusterrolebindings"),
            ("*", "*"),
        ):
            assert not can_i(cp, verb, resource, "-A"), (verb, resource)

        # The agent's own credentials, as the agent uses them.
        agent = cp.agent_kubeconfig
        assert (
            cp.kubectl("get", "services", "-A", "-o", "name", kubeconfig=agent).stdout.strip() == "service/kubernetes"
        )
        denied = cp.kubectl("create", "service", "clusterip", "nope", "--tcp=80:80", kubeconfig=agent, check=False)
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied
        denied = cp.kubectl("get", "secrets", "-A", kubeconfig=agent, check=False)
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied


# ---------------------------------------------------------------------------------------------------
# 5. Objects the API accepts but weir cannot use

BAD_INPUT = [
    # A slice for a Service that does not exist.
    """apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: missing-v4, namespace: default, labels: {kubernetes.io/service-name: missing}}
addressType: IPv4
endpoints:
- addresses: [10.244.1.250]
ports:
- {name: http, port: 8080, protocol: TCP}
""",
    # FQDN endpoints (deprecated, still accepted): weir resolves no names.
    """apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-fqdn, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: FQDN
endpoints:
- addresses: [backend.example.com]
ports:
- {name: http, port: 8080, protocol: TCP}
""",
    # A port without a number ("all ports"): nothing weir can translate to.
    """apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-noport, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: [10.244.2.250]
ports:
- {name: http, protocol: TCP}
""",
    # A Service whose port name no slice port has: a frontend without backends (rejects at once).
    service_yaml("unmatched", [("other", 80, 8080, "TCP")], cluster_ip="10.96.0.21"),
    # ExternalName and headless Services: no frontend at all.
    """apiVersion: v1
kind: Service
metadata: {name: external, namespace: default}
spec: {type: ExternalName, externalName: backend.example.com}
""",
    """apiVersion: v1
kind: Service
metadata: {name: headless, namespace: default}
spec:
  clusterIP: None
  ports: [{name: http, port: 80, targetPort: 8080}]
""",
]


def legacy_lb_ip_service(cluster_ip: str) -> str:
    """A LoadBalancer Service with a non-standard (leading-zero) spec.loadBalancerIP: the API only
    warns ("non-standard IP address ... is invalid") and stores it, for compatibility."""
    return f"""apiVersion: v1
kind: Service
metadata: {{name: legacy-lbip, namespace: default}}
spec:
  type: LoadBalancer
  clusterIP: {cluster_ip}
  loadBalancerIP: 203.0.113.010
  ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}]
"""


def test_unusable_objects_are_ignored(kube):
    cluster, cp = kube
    node1, node2 = cluster.nodes
    web, shell, lb_shell = web_pods(cluster)
    unmatched_slice = endpoint_slice_yaml("unmatched", placed(web[:1]), SLICE_PORTS)
    kube_apply(
        cp, web_service_yaml(), slice_yaml(web[:2]), *BAD_INPUT, unmatched_slice, legacy_lb_ip_service("10.96.0.22")
    )

    want = web_frontends(cluster, endpoints_of(web[:2]))
    for node in cluster.nodes:
        want[node.name].update({"10.96.0.21:80/TCP": set()})
    wait_served(cluster, want)
    for node in cluster.nodes:
        table = served(node)
        # Nothing from the orphan slice, the FQDN or port-less slices, ExternalName or headless.
        assert not any("10.244.1.250" in b or "10.244.2.250" in b for b in set().union(*table.values())), table
        unexpected = {
            f
            for f in table
            if not f.startswith(
                ("10.96.0.1:", "10.96.0.10:", "10.96.0.21:", "10.96.0.22:", f"{node_ip(1)}:", f"{node_ip(2)}:")
            )
        }
        assert unexpected == set(), table
    assert_traffic(cluster, shell, lb_shell, {"web-1", "web-2"})
    # The Service without matching endpoints rejects at once rather than black-holing.
    (rejected,) = cluster.requests(shell.netns, "tcp", "10.96.0.21", 80)
    assert rejected.get("errno") == errno.ECONNREFUSED and rejected["elapsed"] < 1.0, rejected

    # An update of the good Service to the legacy loadBalancerIP, then a slice change: "web" keeps
    # working (weir keeps the last version it could decode, or takes the update once it can).
    bad_update = web_service_yaml(type_="LoadBalancer").replace(
        "spec:\n", "spec:\n  loadBalancerIP: 203.0.113.010\n", 1
    )
    kube_apply(cp, bad_update)
    kube_apply(cp, slice_yaml(web))
    wait_served(cluster, web_frontends(cluster, endpoints_of(web)))
    assert_traffic(cluster, shell, lb_shell, {"web-1", "web-2", "web-3"})
    assert_agents_healthy(cluster)
    for node in (node1, node2):
        log = (node.dir / "agent.log").read_text()
        legacy = "10.96.0.22:80/TCP" in served(node)
        print(
            f"\n{node.name}: legacy-lbip Service served: {legacy}; decode warnings: "
            f"{[line.split('] ', 2)[-1] for line in log.splitlines() if 'kube: services:' in line][:3]}"
        )


def test_service_with_non_standard_load_balancer_ip_keeps_its_cluster_ip(kube):
    cluster, cp = kube
    node1 = cluster.nodes[0]
    web = node1.add_pod("web-1")
    cluster.serve(web)
    kube_apply(
        cp, legacy_lb_ip_service(CLUSTER_IP), endpoint_slice_yaml("legacy-lbip", placed([web]), [("http", 8080, "TCP")])
    )
    wait_served(cluster, {node1.name: {f"{CLUSTER_IP}:80/TCP": endpoints_of([web])}}, timeout=5)


# ---------------------------------------------------------------------------------------------------
# 6. Latency: kubectl apply of an EndpointSlice change -> the backend in node1's service maps


def test_endpoint_slice_change_latency(kube):
    cluster, cp = kube
    node1 = cluster.nodes[0]
    web, _, _ = web_pods(cluster)
    kube_apply(cp, web_service_yaml(), slice_yaml(web[:1]))
    wait_served(cluster, web_frontends(cluster, endpoints_of(web[:1])))
    frontend = f"{CLUSTER_IP}:80/TCP"

    samples, kubectl_times = [], []
    for i in range(8):
        # Alternately add and remove web-2 (the change is the new backend's arrival or departure).
        pods = web[:2] if i % 2 == 0 else web[:1]
        want = endpoints_of(pods)
        started = time.monotonic()
        kubectl_times.append(kube_apply(cp, slice_yaml(pods)))
        while served(node1).get(frontend) != want:
            assert time.monotonic() - started < CONVERGE, (i, served(node1))
            time.sleep(0.005)
        samples.append(time.monotonic() - started)
    ms = sorted(round(s * 1000) for s in samples)
    print(
        f"\nkubectl apply -> node1 weirctl services: median {statistics.median(ms):.0f} ms, "
        f"min {ms[0]} ms, max {ms[-1]} ms over {len(ms)} changes (kubectl itself: median "
        f"{statistics.median(kubectl_times) * 1000:.0f} ms); samples {ms}"
    )
    assert statistics.median(samples) < 5.0
