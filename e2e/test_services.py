"""Service load balancing end to end on a two-node lab (weirlab/cluster.py): ClusterIPs through socket LB
and per-packet translation, NodePorts in SNAT and DSR mode (IPv4 and IPv6), LoadBalancer ingress IPs and externalIPs,
externalTrafficPolicy Local, sessionAffinity, Services without endpoints, endpoint removal and agent
restarts under traffic, and 5,000 Services from one manifest. Every request is real TCP/UDP between
the lab's namespaces."""

from __future__ import annotations

import collections
import errno
import json
import subprocess
import time
from pathlib import Path

import pytest

from e2e.conftest import metrics, wait_until
from e2e.runtime_clients import AGENT_HEALTH_PORT, agent_metrics, metric_value
from weirlab.cluster import CLIENT_IP, CLIENT_IP6, Cluster, endpoint_slice_yaml, node_ip, node_ip6, service_yaml
from weirlab.lab import NETCHECK, WEIR_AGENT, WEIRCTL, Pod, in_netns, run

CLUSTER_IP = "10.96.0.10"
PORTS = [("http", 80, 8080, "TCP"), ("udp", 80, 8080, "UDP")]
SLICE_PORTS = [("http", 8080, "TCP"), ("udp", 8080, "UDP")]
LB_IP = "203.0.113.10"
EXTERNAL_IP = "198.51.100.20"
FAST_REJECT = 1.0  # seconds: a rejected connection fails at once, not by a timeout


# ---------------------------------------------------------------------------------------------------
# Helpers


def backend(result: dict) -> str:
    """The pod that answered a request ("web-1: ping from 10.244.1.2" -> "web-1")."""
    assert "reply" in result, f"request failed: {result}"
    return result["reply"].split(":")[0]


def seen_from(result: dict) -> str:
    """The client address the backend saw."""
    assert "reply" in result, f"request failed: {result}"
    return result["reply"].rsplit(" from ", 1)[1].strip()


def failures(results: list[dict]) -> list[dict]:
    return [r for r in results if "error" in r]


def tally(results: list[dict]) -> collections.Counter:
    return collections.Counter(backend(r) for r in results)


def web_cluster(
    lab, lb_modes=("snat", "snat"), agent_args=(), agent_binary=WEIR_AGENT
) -> tuple[Cluster, list[Pod], Pod, Pod]:
    """web-1 on node1, web-2 and web-3 on node2 (echo servers on 8080); on node1 `shell` (its
    requests are translated per packet) and `lb_shell` (its requests run in node1's socket-LB
    cgroup). Two pods: one pod reaching a backend both directly (socket LB) and through the
    ClusterIP (per packet) can reuse a source port for both, which weir's conntrack does not tell
    apart (see test_direct_connection_after_cluster_ip_connection_from_same_port)."""
    cluster = Cluster(lab, 2, list(lb_modes), agent_args=list(agent_args), agent_binary=agent_binary)
    node1, node2 = cluster.nodes
    web = [node1.add_pod("web-1"), node2.add_pod("web-2"), node2.add_pod("web-3")]
    shell = node1.add_pod("shell")
    lb_shell = node1.add_pod("lb-shell")
    for pod in web:
        cluster.serve(pod)
    return cluster, web, shell, lb_shell


def placed(pods: list[Pod]) -> list[tuple[Pod, str]]:
    """(pod, node name) from the pods' namespace names ("<lab>-node2-web-2")."""
    return [(p, p.netns.split("-")[1]) for p in pods]


def placed_on_nodes(endpoints: list[Pod]) -> list[tuple[Pod, str]]:
    """(endpoint, node name) for hostNetwork endpoints, whose name is their node's."""
    return [(e, e.name) for e in endpoints]


def apply_service(cluster: Cluster, name: str, pods: list[Pod], **service) -> None:
    cluster.apply(
        name, service_yaml(name, PORTS, **service) + "---\n" + endpoint_slice_yaml(name, placed(pods), SLICE_PORTS)
    )


def client_route(cluster: Cluster, address: str, via_node: int = 1) -> None:
    run(in_netns(cluster.client, ["ip", "route", "add", f"{address}/32", "via", node_ip(via_node)]))


def until_all_seen(fetch, wanted: set[str], first: int = 20, most: int = 60) -> list[dict]:
    """Requests in batches of `first` until every backend in `wanted` answered (or `most` were made)."""
    results: list[dict] = []
    while len(results) < most:
        results += fetch(first if not results else 10)
        if failures(results) or set(tally(results)) >= wanted:
            break
    return results


def conntrack_lines(node, needle: str) -> list[str]:
    return [line for line in node.weirctl("conntrack").splitlines() if needle in line]


def frontend_count(node) -> int:
    listing = node.weirctl("services").splitlines()
    return sum(1 for line in listing[1:] if line and not line.startswith(" "))


# ---------------------------------------------------------------------------------------------------
# 1-2. ClusterIP: socket LB and per-packet


@pytest.mark.parametrize("proto", ["tcp", "udp", "udp-connected"])
def test_cluster_ip_socket_lb_reaches_every_backend(lab, proto):
    cluster, web, _, shell = web_cluster(lab)
    node1 = cluster.nodes[0]
    apply_service(cluster, "web", web, cluster_ip=CLUSTER_IP)
    cluster.wait_for_frontend(f"{CLUSTER_IP}:80", backends=3)

    results = until_all_seen(
        lambda n: cluster.requests(shell.netns, proto, CLUSTER_IP, 80, count=n, node=node1), {"web-1", "web-2", "web-3"}
    )
    assert failures(results) == []
    assert set(tally(results)) == {"web-1", "web-2", "web-3"}, tally(results)
    # The socket API shows the Service, never the backend it was rewritten to.
    assert {r["peer"] for r in results} == {f"{CLUSTER_IP}:80"}
    # Rewritten at the socket: the backends see the pod itself and the datapath tracked nothing.
    assert {seen_from(r) for r in results} == {shell.ipv4}
    assert conntrack_lines(node1, CLUSTER_IP) == []


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_cluster_ip_per_packet(lab, proto):
    cluster, web, shell, _ = web_cluster(lab)
    node1 = cluster.nodes[0]
    apply_service(cluster, "web", web, cluster_ip=CLUSTER_IP)
    cluster.wait_for_frontend(f"{CLUSTER_IP}:80", backends=3)

    results = until_all_seen(
        lambda n: cluster.requests(shell.netns, proto, CLUSTER_IP, 80, count=n), {"web-1", "web-2", "web-3"}
    )
    assert failures(results) == []
    assert set(tally(results)) == {"web-1", "web-2", "web-3"}, tally(results)
    # Unconnected UDP: recvfrom() names the reply's real source address, which the datapath has
    # translated back to the ClusterIP (for TCP the handshake itself needs that).
    assert {r["peer"] for r in results} == {f"{CLUSTER_IP}:80"}
    assert {seen_from(r) for r in results} == {shell.ipv4}
    # Translated per packet at the pod's veth: conntrack holds the flows.
    assert conntrack_lines(node1, f"{CLUSTER_IP}:80")


# ---------------------------------------------------------------------------------------------------
# 3. NodePort (SNAT), LoadBalancer ingress IP, externalIPs


def test_node_port_snat_load_balancer_and_external_ips(lab):
    cluster = Cluster(lab, 2, ["snat", "snat"])
    node1, node2 = cluster.nodes
    web = [node1.add_pod("web-1"), node2.add_pod("web-2")]
    for pod in web:
        cluster.serve(pod)
    client_route(cluster, LB_IP)
    client_route(cluster, EXTERNAL_IP)
    apply_service(
        cluster,
        "web",
        web,
        cluster_ip=CLUSTER_IP,
        type_="LoadBalancer",
        node_port=30080,
        lb_ips=[LB_IP],
        external_ips=[EXTERNAL_IP],
    )
    cluster.wait_for_frontend(f"{node_ip(1)}:30080", backends=2, nodes=[node1])
    cluster.wait_for_frontend(f"{LB_IP}:80", backends=2)
    cluster.wait_for_frontend(f"{EXTERNAL_IP}:80", backends=2)
    # The backend on node1 sees the client; the one on node2 sees node1 (SNAT, so replies return
    # through node1 to be translated back).
    expected_seen = {"web-1": CLIENT_IP, "web-2": node_ip(1)}

    for target, port in ((node_ip(1), 30080), (LB_IP, 80), (EXTERNAL_IP, 80)):
        for proto in ("tcp", "udp"):
            results = until_all_seen(
                lambda n: cluster.requests(cluster.client, proto, target, port, count=n), {"web-1", "web-2"}
            )
            assert failures(results) == [], (target, proto)
            assert set(tally(results)) == {"web-1", "web-2"}, (target, proto, tally(results))
            for r in results:
                assert seen_from(r) == expected_seen[backend(r)], (target, proto, r)
            assert {r["peer"] for r in results} == {f"{target}:{port}"}, (target, proto)


# ---------------------------------------------------------------------------------------------------
# 4. DSR


def uplink_mac(node) -> str:
    return json.loads(node.exec(["ip", "-j", "link", "show", "uplink0"]).stdout)[0]["address"]


def capture(lab, netns: str, ifname: str, count: int, expression: str, *flags: str) -> subprocess.Popen:
    """tcpdump in `netns` for the first `count` packets matching `expression`; returns once it listens."""
    capture = lab.spawn(
        in_netns(
            netns,
            [
                "timeout",
                "10",
                "tcpdump",
                "-e",
                "-n",
                "-l",
                "--immediate-mode",
                *flags,
                "-c",
                str(count),
                "-i",
                ifname,
                expression,
            ],
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    banner = [capture.stderr.readline()]  # ("verbose output suppressed" without -v), "listening on"
    if "listening on" not in banner[-1]:
        banner.append(capture.stderr.readline())
    assert "listening on" in banner[-1], banner
    return capture


def dsr_round_trip(lab, family: int) -> None:
    """Three TCP requests from the client to node2's NodePort, whose one backend is on node1 (node2 in
    DSR mode): the backend sees the client, and every packet back to the client (SYN-ACK, reply,
    FIN, ...) is sent by node1 with the NodePort as its source."""
    cluster = Cluster(lab, 2, ["snat", "dsr"])
    node1, node2 = cluster.nodes
    web = node1.add_pod("web-1")
    cluster.serve(web)
    frontend, client = (node_ip(2), CLIENT_IP) if family == 4 else (node_ip6(2), CLIENT_IP6)
    cluster_ip = CLUSTER_IP if family == 4 else "fd00:96::10"
    cluster.apply(
        "web",
        service_yaml("web", PORTS, cluster_ip=cluster_ip, type_="NodePort", node_port=30080)
        + "---\n"
        + endpoint_slice_yaml("web", placed([web]), SLICE_PORTS, family=family),
    )
    cluster.wait_for_frontend(f"{frontend if family == 4 else f'[{frontend}]'}:30080", backends=1, nodes=[node2])
    mac1, mac2 = uplink_mac(node1), uplink_mac(node2)
    assert mac1 != mac2

    replies = capture(lab, cluster.client, "eth0", 6, f"tcp and src host {frontend} and src port 30080")
    # The client's first packet as node1 receives it: wrapped, the backend port (8080 = 0x1f90) in the
    # outer IP id (IPv4) or flow label (IPv6).
    wrapped = capture(lab, node1.netns, "uplink0", 1, "ip[9] == 4" if family == 4 else "ip6[6] == 41", "-v")
    results = cluster.requests(cluster.client, "tcp", frontend, 30080, count=3)
    assert failures(results) == []
    assert [backend(r) for r in results] == ["web-1"] * 3
    # No SNAT: the backend sees the client's own address.
    assert {seen_from(r) for r in results} == {client}
    assert {r["peer"] for r in results} == {f"{frontend}:30080" if family == 4 else f"[{frontend}]:30080"}

    out, _ = wrapped.communicate(timeout=15)
    assert ("id 8080," if family == 4 else "flowlabel 0x01f90,") in out, out
    assert f"{node_ip(2) if family == 4 else node_ip6(2)} > {web.ipv4 if family == 4 else web.ipv6}:" in out, out
    out, _ = replies.communicate(timeout=15)
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 6, f"captured:\n{out}"
    for line in lines:
        # "<time> <src mac> > <dst mac>, ethertype IPv4 (0x0800), length N: <src ip.port> > <dst>: ..."
        src_mac = line.split()[1]
        assert src_mac == mac1, f"reply not sent by node1 ({mac1}); node2 is {mac2}:\n{line}"
        assert f"{frontend}.30080 > {client}." in line, line
        assert f"ethertype IPv{family}" in line, line


def test_node_port_dsr_reply_skips_the_entry_node(lab):
    dsr_round_trip(lab, 4)


def test_node_port_dsr_over_ipv6_reply_skips_the_entry_node(lab):
    """The same over IPv6: node2 wraps the client's packets in IPv6-in-IPv6 (backend port in the
    flow label), node1 unwraps them and answers the client itself."""
    dsr_round_trip(lab, 6)


def test_hybrid_over_ipv6_load_balancer_and_external_ips(lab):
    """Hybrid mode with IPv6 frontends: TCP goes by DSR (the backend sees the client), UDP by SNAT (the
    backend sees the entry node); both answer as the address the client used."""
    cluster = Cluster(lab, 2, ["snat", "hybrid"])
    node1, node2 = cluster.nodes
    web = node1.add_pod("web-1")
    cluster.serve(web)
    lb_ip, external_ip = "2001:db8:113::10", "2001:db8:20::20"
    for address in (lb_ip, external_ip):
        run(in_netns(cluster.client, ["ip", "-6", "route", "add", f"{address}/128", "via", node_ip6(2)]))
    cluster.apply(
        "web",
        service_yaml(
            "web",
            PORTS,
            cluster_ip="fd00:96::11",
            type_="LoadBalancer",
            node_port=30080,
            lb_ips=[lb_ip],
            external_ips=[external_ip],
        )
        + "---\n"
        + endpoint_slice_yaml("web", placed([web]), SLICE_PORTS, family=6),
    )
    for address in (lb_ip, external_ip):
        cluster.wait_for_frontend(f"[{address}]:80", backends=1, nodes=[node2])

    for target in (lb_ip, external_ip):
        for proto, seen in (("tcp", CLIENT_IP6), ("udp", node_ip6(2))):
            results = cluster.requests(cluster.client, proto, target, 80, count=3)
            assert failures(results) == [], (target, proto)
            assert {seen_from(r) for r in results} == {seen}, (target, proto)
            assert {r["peer"] for r in results} == {f"[{target}]:80"}, (target, proto)
    assert any("dsr" in line for line in conntrack_lines(node2, f"[{lb_ip}]:80")), node2.weirctl("conntrack")


# ---------------------------------------------------------------------------------------------------
# 5. externalTrafficPolicy Local


def test_external_traffic_policy_local(lab):
    cluster = Cluster(lab, 2, ["snat", "snat"])
    node1, node2 = cluster.nodes
    local = [node1.add_pod("web-1a"), node1.add_pod("web-1b")]
    remote = node2.add_pod("web-2")
    for pod in local + [remote]:
        cluster.serve(pod)
    # Endpoints on both nodes, and endpoints on node1 only.
    apply_service(
        cluster, "both", local + [remote], cluster_ip="10.96.0.11", type_="NodePort", node_port=30081, etp="Local"
    )
    apply_service(cluster, "only1", local, cluster_ip="10.96.0.12", type_="NodePort", node_port=30082, etp="Local")
    cluster.wait_for_frontend(f"{node_ip(1)}:30081", backends=2, nodes=[node1])
    cluster.wait_for_frontend(f"{node_ip(1)}:30082", backends=2, nodes=[node1])
    cluster.wait_for_frontend(f"{node_ip(2)}:30081", backends=1, nodes=[node2])
    cluster.wait_for_frontend(f"{node_ip(2)}:30082", nodes=[node2])

    for port in (30081, 30082):
        results = until_all_seen(
            lambda n: cluster.requests(cluster.client, "tcp", node_ip(1), port, count=n), {"web-1a", "web-1b"}
        )
        assert failures(results) == []
        assert set(tally(results)) == {"web-1a", "web-1b"}, (port, tally(results))
        assert {seen_from(r) for r in results} == {CLIENT_IP}, port
    results = cluster.requests(cluster.client, "tcp", node_ip(2), 30081, count=10)
    assert failures(results) == []
    assert set(tally(results)) == {"web-2"}
    assert {seen_from(r) for r in results} == {CLIENT_IP}

    # node2 has no local endpoint of "only1": rejected at once.
    results = cluster.requests(cluster.client, "tcp", node_ip(2), 30082, count=5)
    for r in results:
        assert r.get("errno") in (errno.ECONNREFUSED, errno.ECONNRESET), r
        assert r["elapsed"] < FAST_REJECT, r


# ---------------------------------------------------------------------------------------------------
# 6. sessionAffinity ClientIP


def test_session_affinity_client_ip(lab):
    cluster, web, _, _ = web_cluster(lab)
    node1 = cluster.nodes[0]
    apply_service(cluster, "sticky", web, cluster_ip="10.96.0.13", type_="NodePort", node_port=30083, affinity=True)
    apply_service(cluster, "spread", web, cluster_ip="10.96.0.14", type_="NodePort", node_port=30084)
    cluster.wait_for_frontend(f"{node_ip(1)}:30083", backends=3, nodes=[node1])
    cluster.wait_for_frontend(f"{node_ip(1)}:30084", backends=3, nodes=[node1])

    sticky = cluster.requests(cluster.client, "tcp", node_ip(1), 30083, count=10)
    assert failures(sticky) == []
    assert len(tally(sticky)) == 1, tally(sticky)
    assert CLIENT_IP in node1.weirctl("affinity")

    spread = cluster.requests(cluster.client, "tcp", node_ip(1), 30084, count=10)
    assert failures(spread) == []
    assert len(tally(spread)) > 1, tally(spread)


# ---------------------------------------------------------------------------------------------------
# 7. No endpoints


@pytest.mark.parametrize("proto", ["tcp", "udp-connected"])
def test_service_without_endpoints_rejects_at_once(lab, proto):
    """TCP: the socket LB fails connect() with ECONNREFUSED, per-packet translation answers the SYN
    with a RST. UDP (connected socket, so that ICMP errors reach it): connect() is refused at the
    socket, an ICMP port unreachable per packet. The socket LB's refusals are counted where an
    operator looks: the agent's /metrics and `weirctl metrics`."""
    cluster = Cluster(lab, 2, ["snat", "snat"], agent_args=[f"--health_port={AGENT_HEALTH_PORT}"])
    node1 = cluster.nodes[0]
    shell = node1.add_pod("shell")
    cluster.apply("empty", service_yaml("empty", PORTS, cluster_ip="10.96.0.20", type_="NodePort", node_port=30085))
    cluster.wait_for_frontend("10.96.0.20:80", backends=0)
    cluster.wait_for_frontend(f"{node_ip(1)}:30085", backends=0, nodes=[node1])

    paths = {
        "socket LB": lambda: cluster.requests(shell.netns, proto, "10.96.0.20", 80, count=3, node=node1),
        "per-packet": lambda: cluster.requests(shell.netns, proto, "10.96.0.20", 80, count=3),
        "NodePort": lambda: cluster.requests(cluster.client, proto, node_ip(1), 30085, count=3),
    }
    for path, fetch in paths.items():
        for r in fetch():
            assert r.get("errno") == errno.ECONNREFUSED, (path, r)
            assert r["elapsed"] < FAST_REJECT, (path, r)
    # Three connect()s reached the socket LB (a connected UDP socket's connect() too); the other
    # paths never pass its hooks.
    scraped = agent_metrics(node1)
    assert metric_value(scraped, 'weir_socket_lb_calls_total{outcome="connect_refused"}') == 3, scraped
    assert metrics(node1)["sock_connect_refused"] == 3


# ---------------------------------------------------------------------------------------------------
# 8. Removing a backend under traffic

GC_CONFIG = "conntrackGCIntervalSeconds: 1\n"


def open_until_every_backend(held, wanted: set[str], most: int = 40) -> dict[int, str]:
    """Opens connections one at a time until each backend in `wanted` holds one: {id: backend}."""
    owners: dict[int, str] = {}
    while set(owners.values()) < wanted and len(owners) < most:
        (opened,) = held.open(1)
        assert "reply" in opened, opened
        owners[opened["id"]] = opened["reply"].split(":")[0]
    assert set(owners.values()) >= wanted, owners
    return owners


def test_removing_a_backend_under_traffic(lab):
    config = lab.dir / "agent.yaml"
    config.write_text(GC_CONFIG)  # conntrack collection every second, so it runs during the test
    cluster, web, shell, lb_shell = web_cluster(lab, agent_args=[f"--config={config}"])
    node1 = cluster.nodes[0]
    apply_service(cluster, "web", web, cluster_ip=CLUSTER_IP)
    cluster.wait_for_frontend(f"{CLUSTER_IP}:80", backends=3)
    everyone = {"web-1", "web-2", "web-3"}

    per_packet = cluster.hold(shell.netns, CLUSTER_IP, 80)
    socket_lb = cluster.hold(lb_shell.netns, CLUSTER_IP, 80, node=node1)
    held = {
        "per-packet": (per_packet, open_until_every_backend(per_packet, everyone)),
        "socket LB": (socket_lb, open_until_every_backend(socket_lb, everyone)),
    }
    sources = {"per-packet": shell.ipv4, "socket LB": lb_shell.ipv4}
    for path, (client, owners) in held.items():
        replies = client.ping()
        assert replies == {i: f"{owners[i]}: ping {i} from {sources[path]}" for i in owners}, path

    removed = "web-2"
    kept = [p for p in web if p.name != removed]
    cluster.apply(
        "web",
        service_yaml("web", PORTS, cluster_ip=CLUSTER_IP)
        + "---\n"
        + endpoint_slice_yaml("web", placed(kept), SLICE_PORTS),
    )
    cluster.wait_for_frontend(f"{CLUSTER_IP}:80", backends=2)
    time.sleep(2.5)  # conntrack collection runs at least twice on every node

    for path, (client, owners) in held.items():
        replies = client.ping()
        for i, owner in owners.items():
            if owner != removed:
                assert replies[i] == f"{owner}: ping {i} from {sources[path]}", (path, i, replies)
        # New connections on the same client only go to the remaining backends.
        fresh = client.open(12)
        assert [o for o in fresh if "error" in o] == [], (path, fresh)
        assert {o["reply"].split(":")[0] for o in fresh} <= {"web-1", "web-3"}, (path, fresh)
    for pod, node in ((shell, None), (lb_shell, node1)):
        for proto in ("tcp", "udp"):
            results = cluster.requests(pod.netns, proto, CLUSTER_IP, 80, count=15, node=node)
            assert failures(results) == []
            assert removed not in tally(results), (proto, node, tally(results))
    per_packet.close()
    socket_lb.close()


# ---------------------------------------------------------------------------------------------------
# 9. Agent restart under traffic


def test_agent_restart_under_traffic(lab):
    cluster, web, shell, lb_shell = web_cluster(lab)
    node1 = cluster.nodes[0]
    apply_service(cluster, "web", web, cluster_ip=CLUSTER_IP, type_="NodePort", node_port=30086)
    cluster.wait_for_frontend(f"{CLUSTER_IP}:80", backends=3)
    cluster.wait_for_frontend(f"{node_ip(1)}:30086", backends=3, nodes=[node1])

    holders = [
        cluster.hold(shell.netns, CLUSTER_IP, 80),
        cluster.hold(lb_shell.netns, CLUSTER_IP, 80, node=node1),
        cluster.hold(cluster.client, node_ip(1), 30086),
    ]
    for held in holders:
        assert [o for o in held.open(4) if "error" in o] == []

    loops = {
        "ClusterIP per-packet tcp": (shell.netns, "tcp", CLUSTER_IP, 80, None),
        "ClusterIP per-packet udp": (shell.netns, "udp", CLUSTER_IP, 80, None),
        "ClusterIP socket LB tcp": (lb_shell.netns, "tcp", CLUSTER_IP, 80, node1),
        "ClusterIP socket LB udp": (lb_shell.netns, "udp", CLUSTER_IP, 80, node1),
        "NodePort tcp": (cluster.client, "tcp", node_ip(1), 30086, None),
        "NodePort udp": (cluster.client, "udp", node_ip(1), 30086, None),
    }
    procs = {}
    for name, (netns, proto, target, port, node) in loops.items():
        cmd = ["python3", str(NETCHECK), "peer", proto, str(port), target, "200", "0.02"]
        argv = cluster.node_cgroup_cmd(node, netns, cmd) if node else in_netns(netns, cmd)
        procs[name] = lab.spawn(argv, stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    log = node1.dir / "agent.log"
    new_lines = lambda: log.read_text()[before:]
    started = time.monotonic()
    node1.stop_agent()
    before = len(log.read_text())
    cluster.restart_agent(node1)
    # The new agent adopts the pinned state and syncs the manifests again, all under traffic.
    assert wait_until(lambda: "synced " in new_lines(), timeout=10), new_lines()
    restart_time = time.monotonic() - started
    assert any(proc.poll() is None for proc in procs.values()), "the request loops ended before the restart"
    # ClusterIP and NodePort, TCP and UDP: 4 frontends; 3 backends per protocol. Nothing rewritten.
    assert "adopted 4 frontends, 6 backends" in new_lines(), new_lines()
    assert "(0 writes, 0 deletes)" in new_lines(), new_lines()

    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=60)
        results = json.loads(out)
        assert len(results) == 200, name
        failed = [(i, r) for i, r in enumerate(results) if "error" in r]
        assert failed == [], f"{name}: {len(failed)} of 200 failed: {failed[:5]}"
    for held in holders:
        replies = held.ping()
        assert len(replies) == 4 and all(" from " in r and not r.startswith("error") for r in replies.values()), replies
        held.close()
    assert node1.agent.poll() is None, "the restarted agent exited"
    cluster.wait_for_frontend(f"{CLUSTER_IP}:80", backends=3)
    print(f"\nagent restart (SIGTERM to synced again) took {restart_time:.2f} s")


# ---------------------------------------------------------------------------------------------------
# 10. 5,000 Services


def many_services_yaml(count: int, pods: list[tuple[Pod, str]]) -> tuple[str, list[str]]:
    docs, addresses = [], []
    for i in range(count):
        address = f"10.100.{i // 250}.{i % 250 + 1}"
        addresses.append(address)
        name = f"svc-{i:05d}"
        docs.append(service_yaml(name, [("http", 80, 8080, "TCP")], cluster_ip=address))
        docs.append(endpoint_slice_yaml(name, pods, [("http", 8080, "TCP")]))
    return "---\n".join(docs), addresses


def test_five_thousand_services(lab):
    cluster = Cluster(lab, 2, ["snat", "snat"])
    node1, node2 = cluster.nodes
    web = [node1.add_pod("web-1"), node2.add_pod("web-2")]
    shell = node1.add_pod("shell")
    for pod in web:
        cluster.serve(pod)
    text, addresses = many_services_yaml(5000, placed(web))

    started = time.monotonic()
    cluster.apply("many", text)
    converged = {}
    deadline = started + 60
    while len(converged) < 2 and time.monotonic() < deadline:
        for node in cluster.nodes:
            if node.name not in converged and frontend_count(node) == 5000:
                converged[node.name] = round(time.monotonic() - started, 2)
        time.sleep(0.25)
    print(f"\n5000 Services: converged after {converged} s (of a 60 s bound)")
    assert set(converged) == {"node1", "node2"}, f"converged: {converged}; node1 has {frontend_count(node1)}"

    for target in (addresses[0], addresses[-1]):
        for node in (None, node1):
            results = cluster.requests(shell.netns, "tcp", target, 80, count=4, node=node)
            assert failures(results) == [], (target, node)
            assert set(tally(results)) <= {"web-1", "web-2"}


# ---------------------------------------------------------------------------------------------------
# hostNetwork endpoints: the backend is a node's own address, served by a process in the node's namespace

HOST_PORT = 9080
HOST_PORTS = [("http", 80, HOST_PORT, "TCP"), ("udp", 80, HOST_PORT, "UDP")]
HOST_SLICE_PORTS = [("http", HOST_PORT, "TCP"), ("udp", HOST_PORT, "UDP")]


def host_network_endpoint(cluster: Cluster, index: int) -> Pod:
    """A hostNetwork "pod" of node<index>: its address is the node's, its echo server (on HOST_PORT,
    naming itself "node<index>") runs in the node's own namespace, as a hostNetwork pod's would."""
    node = cluster.nodes[index - 1]
    endpoint = Pod(
        name=node.name,
        netns=node.netns,
        container_id="",
        ifname="uplink0",
        result={"ips": [{"address": f"{node_ip(index)}/24"}, {"address": f"{node_ip6(index)}/64"}]},
    )
    cluster.serve(endpoint, HOST_PORT)
    return endpoint


def host_network_node_port(lab, lb_mode: str) -> tuple[Cluster, Pod]:
    """Both nodes in `lb_mode`, a NodePort (30080) whose endpoints are both nodes' own addresses, and
    a pod `shell` on node2."""
    cluster = Cluster(lab, 2, [lb_mode, lb_mode])
    node1, node2 = cluster.nodes
    shell = node2.add_pod("shell")
    endpoints = [host_network_endpoint(cluster, 1), host_network_endpoint(cluster, 2)]
    cluster.apply(
        "web",
        service_yaml("web", HOST_PORTS, cluster_ip=CLUSTER_IP, type_="NodePort", node_port=30080)
        + "---\n"
        + endpoint_slice_yaml("web", placed_on_nodes(endpoints), HOST_SLICE_PORTS),
    )
    cluster.wait_for_frontend(f"{node_ip(1)}:30080", backends=2, nodes=[node1])
    return cluster, shell


def assert_node_port_reaches_both_hosts(cluster: Cluster, client: str, node=None) -> None:
    for proto in ("tcp", "udp"):
        results = until_all_seen(
            lambda n: cluster.requests(client, proto, node_ip(1), 30080, count=n, node=node), {"node1", "node2"}
        )
        where = (client, "socket-LB cgroup" if node else "per packet", proto)
        assert failures(results) == [], (where, failures(results)[:3], conntrack_lines(cluster.nodes[0], ":30080"))
        assert set(tally(results)) == {"node1", "node2"}, (where, tally(results))
        assert {r["peer"] for r in results} == {f"{node_ip(1)}:30080"}, where


@pytest.mark.parametrize("lb_mode", ["snat", "dsr"])
def test_node_port_with_host_network_endpoints_from_outside(lab, lb_mode):
    """node1's NodePort reaches both nodes' host processes from outside. node1's own process answers
    a flow that came in on node1's uplink and was translated to node1's address: its reply leaves
    through that uplink and must carry the NodePort as its source (to_uplink). With DSR, node2's
    process answers the client itself, with node1's NodePort as the source, the same way."""
    cluster, _ = host_network_node_port(lab, lb_mode)
    assert_node_port_reaches_both_hosts(cluster, cluster.client)


def test_node_port_with_host_network_endpoints_from_a_pod_on_another_node(lab):
    """The upstream spec "Services should function for service endpoints using hostNetwork" (SNAT, as
    the chart's default): a pod on node2 dials node1's NodePort, per packet and from node2's socket-LB
    cgroup (node2 has no frontend for node1's address, so both go out as they are), and reaches node1's
    host process as well as node2's."""
    cluster, shell = host_network_node_port(lab, "snat")
    assert_node_port_reaches_both_hosts(cluster, shell.netns)
    assert_node_port_reaches_both_hosts(cluster, shell.netns, node=cluster.nodes[1])


@pytest.mark.xfail(
    strict=True,
    reason="DSR to a hostNetwork endpoint on the client pod's own node: the host's "
    "reply reaches the pod through its veth, where no weir program translates it back",
)
def test_dsr_node_port_to_host_network_endpoint_on_the_client_pods_node(lab):
    cluster, shell = host_network_node_port(lab, "dsr")
    assert_node_port_reaches_both_hosts(cluster, shell.netns)


@pytest.mark.parametrize("path", ["socket LB", "per-packet"])
def test_cluster_ip_with_host_network_endpoint_on_another_node(lab, path):
    """A pod on node1 reaches a ClusterIP whose one endpoint is node2's own address."""
    cluster = Cluster(lab, 2, ["snat", "snat"])
    node1, _ = cluster.nodes
    shell = node1.add_pod("shell")
    endpoint = host_network_endpoint(cluster, 2)
    cluster.apply(
        "web",
        service_yaml("web", HOST_PORTS, cluster_ip=CLUSTER_IP)
        + "---\n"
        + endpoint_slice_yaml("web", placed_on_nodes([endpoint]), HOST_SLICE_PORTS),
    )
    cluster.wait_for_frontend(f"{CLUSTER_IP}:80", backends=1)

    for proto in ("tcp", "udp"):
        results = cluster.requests(
            shell.netns, proto, CLUSTER_IP, 80, count=3, node=node1 if path == "socket LB" else None
        )
        assert failures(results) == [], (proto, results)
        assert set(tally(results)) == {"node2"}
        assert {seen_from(r) for r in results} == {shell.ipv4}, proto
        assert {r["peer"] for r in results} == {f"{CLUSTER_IP}:80"}, proto


@pytest.mark.xfail(
    strict=True,
    reason="per-packet translation from a pod to its own node's address: the host's "
    "reply reaches the pod through its veth, where no weir program translates it back "
    "(socket LB, the default for pods, is not affected)",
)
def test_cluster_ip_per_packet_to_host_network_endpoint_on_the_pods_node(lab):
    cluster = Cluster(lab, 2, ["snat", "snat"])
    node1, _ = cluster.nodes
    shell = node1.add_pod("shell")
    endpoint = host_network_endpoint(cluster, 1)
    cluster.apply(
        "web",
        service_yaml("web", HOST_PORTS, cluster_ip=CLUSTER_IP)
        + "---\n"
        + endpoint_slice_yaml("web", placed_on_nodes([endpoint]), HOST_SLICE_PORTS),
    )
    cluster.wait_for_frontend(f"{CLUSTER_IP}:80", backends=1)
    results = cluster.requests(shell.netns, "tcp", CLUSTER_IP, 80, count=2)
    assert failures(results) == [], results


# ---------------------------------------------------------------------------------------------------
# Hairpin: a backend reaching its own Service


@pytest.mark.parametrize(
    "path",
    [
        "socket LB",
        "per-packet",
    ],
)
def test_backend_reaches_itself_through_its_service(lab, path):
    cluster = Cluster(lab, 2, ["snat", "snat"])
    node1 = cluster.nodes[0]
    web = node1.add_pod("web-1")
    cluster.serve(web)
    apply_service(cluster, "web", [web], cluster_ip=CLUSTER_IP)
    cluster.wait_for_frontend(f"{CLUSTER_IP}:80", backends=1)

    for proto in ("tcp", "udp"):
        results = cluster.requests(
            web.netns, proto, CLUSTER_IP, 80, count=3, node=node1 if path == "socket LB" else None
        )
        assert failures(results) == [], (proto, results)
        assert set(tally(results)) == {"web-1"}
        assert {r["peer"] for r in results} == {f"{CLUSTER_IP}:80"}, proto


# ---------------------------------------------------------------------------------------------------
# Flows whose translated tuples coincide


def test_direct_connection_after_cluster_ip_connection_from_same_port(lab):
    cluster = Cluster(lab, 2, ["snat", "snat"])
    node1, node2 = cluster.nodes
    web = node2.add_pod("web-2")
    shell = node1.add_pod("shell")
    cluster.serve(web)
    apply_service(cluster, "web", [web], cluster_ip=CLUSTER_IP)
    cluster.wait_for_frontend(f"{CLUSTER_IP}:80", backends=1)

    via_service = cluster.hold(shell.netns, CLUSTER_IP, 80, source_port=40000)
    (opened,) = via_service.open(1)
    assert opened.get("reply") == f"web-2: hello 0 from {shell.ipv4}", opened
    via_service.close()  # the client closes first: the server keeps no TIME_WAIT for the tuple

    # The same source port is free again for another destination (the kernel reuses it too).
    results = cluster.requests(shell.netns, "tcp", web.ipv4, 8080, source_port=40000)
    assert failures(results) == [], (results, conntrack_lines(node1, ":40000"))
    assert backend(results[0]) == "web-2"


def test_node_port_snat_clients_sharing_a_source_port(lab):
    cluster = Cluster(lab, 2, ["snat", "snat"])
    node1, node2 = cluster.nodes
    web = node2.add_pod("web-2")
    cluster.serve(web)
    apply_service(cluster, "web", [web], cluster_ip=CLUSTER_IP, type_="NodePort", node_port=30080)
    cluster.wait_for_frontend(f"{node_ip(1)}:30080", backends=1, nodes=[node1])
    client2_ip = f"{CLIENT_IP.rsplit('.', 1)[0]}.101"
    client2 = cluster.add_client("client2", client2_ip)

    first = cluster.hold(cluster.client, node_ip(1), 30080, source_port=40001)
    second = cluster.hold(client2, node_ip(1), 30080, source_port=40001)
    opened = first.open(1) + second.open(1)
    assert [o.get("reply") for o in opened] == [f"web-2: hello 0 from {node_ip(1)}"] * 2, opened
    replies = [first.ping(), second.ping()]
    assert replies == [{0: f"web-2: ping 0 from {node_ip(1)}"}] * 2, (replies, conntrack_lines(node1, ":40001"))
    first.close()
    second.close()


# ---------------------------------------------------------------------------------------------------
# 13. weirctl: -o json on every command, Services by name, filters, events from now on


def weirctl_json(node, *args: str):
    """`weirctl ARGS -o json`, parsed: exactly one JSON document."""
    return json.loads(node.weirctl(*args, "-o", "json"))


def weirctl_events(lab, node, *args: str) -> subprocess.Popen:
    """`weirctl events -o json ARGS` running in `node`'s namespace (killed with the lab)."""
    return lab.spawn(
        in_netns(node.netns, [str(WEIRCTL), f"--bpf_root={node.bpf_root}", "events", "-o", "json", *args]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def event_records(proc: subprocess.Popen) -> list[dict]:
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_weirctl_json_names_filters_and_events(lab):
    cluster, web, shell, lb_shell = web_cluster(lab)
    node1 = cluster.nodes[0]
    apply_service(cluster, "web", web, cluster_ip=CLUSTER_IP, type_="NodePort", node_port=30086, affinity=True)
    cluster.apply("empty", service_yaml("empty", PORTS, cluster_ip="10.96.0.20"))
    cluster.wait_for_frontend(f"{CLUSTER_IP}:80", backends=3)
    cluster.wait_for_frontend("10.96.0.20:80", backends=0)
    # Records that are in the ring before any weirctl events runs: translations and drops.
    assert failures(cluster.requests(shell.netns, "tcp", CLUSTER_IP, 80, count=5)) == []
    assert cluster.requests(shell.netns, "tcp", "10.96.0.20", 80, count=3)[0].get("errno") == errno.ECONNREFUSED
    assert failures(cluster.requests(cluster.client, "tcp", node_ip(1), 30086, count=3)) == []

    # Every command's JSON parses; Services carry their namespace/name:port.
    services = weirctl_json(node1, "services")["services"]
    by_frontend = {s["frontend"]: s for s in services}
    web_tcp = by_frontend[f"{CLUSTER_IP}:80/TCP"]
    assert web_tcp["service"] | {"id": 0} == {"id": 0, "namespace": "default", "name": "web", "port_name": "http"}
    assert by_frontend[f"{CLUSTER_IP}:80/UDP"]["service"]["port_name"] == "udp"
    assert {b["address"] for b in web_tcp["backends"]} == {p.ipv4 for p in web}
    assert "affinity" in web_tcp["flags"] and web_tcp["affinity_timeout_seconds"] == 300
    assert (
        by_frontend["10.96.0.20:80/TCP"]["backends"] == []
        and by_frontend["10.96.0.20:80/TCP"]["service"]["name"] == "empty"
    )
    assert any(
        line.startswith(f"{CLUSTER_IP}:80/TCP") and "default/web:http" in line
        for line in node1.weirctl("services").splitlines()
    )
    only_empty = weirctl_json(node1, "services", "--service", "default/empty")["services"]
    assert {s["frontend"] for s in only_empty} == {"10.96.0.20:80/TCP", "10.96.0.20:80/UDP"}

    conntrack = weirctl_json(node1, "conntrack")
    assert conntrack["capacity"] > 0 and conntrack["total"] >= len(conntrack["entries"]) > 0
    assert {e["service"]["name"] for e in conntrack["entries"] if e["service"]} == {"web"}
    tcp_to_web = weirctl_json(node1, "conntrack", "--addr", CLUSTER_IP, "--proto", "tcp", "--port", "80")["entries"]
    assert tcp_to_web and all(e["protocol"] == "TCP" for e in tcp_to_web)
    assert all(
        CLUSTER_IP in (e["source"]["address"], e["destination"]["address"], e["nat"]["address"]) for e in tcp_to_web
    )
    assert weirctl_json(node1, "conntrack", "--proto", "sctp")["entries"] == []

    affinity = weirctl_json(node1, "affinity")["entries"]
    assert any(e["client"] == CLIENT_IP and e["service"]["name"] == "web" for e in affinity), affinity
    endpoints = weirctl_json(node1, "endpoints")["endpoints"]
    assert {e["address"] for e in endpoints} >= {web[0].ipv4, shell.ipv4}
    assert weirctl_json(node1, "masquerade")["uplinks"][0]["name"] == "uplink0"
    counters = {c["name"]: c["packets"] for c in weirctl_json(node1, "metrics")["counters"]}
    assert counters["service_translated"] > 0 and counters["no_backend"] > 0

    status = weirctl_json(node1, "status")
    agent = status["agent"]
    assert agent["version"] == (Path(__file__).parent.parent / "VERSION").read_text().strip()
    assert agent["node"] == "node1" and agent["source"] == "manifests" and agent["last_sync"] is not None
    assert agent["lb_mode"] == "snat" and agent["socket_lb_cgroup"] == str(cluster.cgroups[0])
    assert status["counts"]["services"] == 2
    assert status["counts"]["frontends"] == len(services) and status["counts"]["conntrack"] > 0
    maps = {m["name"]: m for m in status["maps"]}
    assert maps["weir_ct"]["capacity"] > 0 and maps["weir_ct"]["entries"] == status["counts"]["conntrack"]
    assert maps["weir_services"]["entries"] == len(services)
    links = {link["pin"]: link for link in status["links"]}
    assert links["uplinks/uplink0"]["attached"] and links["uplinks/uplink0"]["program"] == "from_uplink"
    assert links["uplinks/uplink0"]["interface"] == "uplink0"
    assert links["uplinks-egress/uplink0"]["attached"] and links["uplinks-egress/uplink0"]["program"] == "to_uplink"
    assert links["cgroup/connect4"]["attached"] and links["cgroup/connect4"]["cgroup"] == str(cluster.cgroups[0])
    assert {p["name"] for p in status["programs"]} >= {"from_pod", "from_uplink", "to_uplink", "sock_connect4"}
    assert status["errors"] == []
    assert "last sync" in node1.weirctl("status")

    # The ring holds the records made above; --replay shows them, the default does not.
    replayed = event_records(weirctl_events(lab, node1, "--replay", "--count=1", "--timeout_s=5"))
    assert len(replayed) == 1 and replayed[0]["timestamp_ns"] < time.monotonic_ns()

    started = time.monotonic_ns()
    events = weirctl_events(lab, node1, "--timeout_s=6")
    time.sleep(1.5)
    assert cluster.requests(shell.netns, "tcp", "10.96.0.20", 80, count=2)[0].get("errno") == errno.ECONNREFUSED
    assert failures(cluster.requests(shell.netns, "tcp", CLUSTER_IP, 80, count=2)) == []
    # Refused at the socket (lb_shell is in node1's socket-LB cgroup): no packet, so no source.
    refused = cluster.requests(lb_shell.netns, "tcp", "10.96.0.20", 80, count=1, node=node1)
    assert refused[0].get("errno") == errno.ECONNREFUSED, refused
    records = event_records(events)
    assert records and all(r["timestamp_ns"] >= started for r in records), records
    drops = [r for r in records if r["type"] == "drop"]
    assert drops and all(r["verdict"] == "dropped" and r["reason"] == "no_backend" for r in drops), records
    assert {(r["service"]["namespace"], r["service"]["name"]) for r in drops} == {("default", "empty")}
    translations = [r for r in records if r["type"] == "translate"]
    assert translations and {r["backend"]["address"] for r in translations} <= {p.ipv4 for p in web}
    assert all(r["service"]["name"] == "web" and r["destination"]["address"] == CLUSTER_IP for r in translations)
    sockets = [r for r in records if r["type"] == "socket"]
    assert [(r["verdict"], r["outcome"], r["service"]["name"], r["source"]) for r in sockets] == [
        ("refused", "sock_connect_refused", "empty", None)
    ], records
    assert sockets[0]["socket"].startswith("sk:") and sockets[0]["cgroup_id"] > 0

    # Filters: only drops, only to the empty Service's address.
    events = weirctl_events(lab, node1, "--type", "drop", "--addr", "10.96.0.20", "--timeout_s=5")
    time.sleep(1.5)
    cluster.requests(shell.netns, "tcp", "10.96.0.20", 80, count=2)
    assert failures(cluster.requests(shell.netns, "tcp", CLUSTER_IP, 80, count=2)) == []
    filtered = event_records(events)
    assert filtered and all(r["type"] == "drop" and r["destination"]["address"] == "10.96.0.20" for r in filtered)
