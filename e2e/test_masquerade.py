"""Egress masquerade end to end on the two-node lab (weirlab/cluster.py) with an "internet" behind a
router on the fabric (Cluster.add_internet) that has no route back to the pods: a pod's TCP and UDP
requests to a server there are answered only because they leave with the node's address, which is
what the server sees; traffic inside the cluster keeps the pod's address; with masquerade off, or
with the internet listed in nonMasqueradeCIDRs, the pod's own address goes out and no answer comes
back. Every namespace, route and process here is the lab's own."""

from __future__ import annotations

import subprocess

import pytest

from e2e.conftest import ping_failures, wait_until
from weirlab.cluster import INTERNET_SERVER_IP, INTERNET_SERVER_IP6, Cluster, node_ip, node_ip6
from weirlab.lab import NETCHECK, in_netns, run

SERVER_PORT = 8080


def serve_internet(cluster: Cluster) -> str:
    """An echo server in the internet namespace; returns the namespace."""
    internet = cluster.add_internet()
    proc = cluster.lab.spawn(
        in_netns(internet, ["python3", str(NETCHECK), "serve", str(SERVER_PORT), "internet"]),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    return internet


def ask(cluster: Cluster, netns: str, proto: str, target: str, count: int = 3) -> list[dict]:
    return cluster.requests(netns, proto, target, SERVER_PORT, count=count)


def seen_by_server(result: dict) -> str:
    """The source address the server saw ("internet: ping from 192.168.50.1")."""
    assert "reply" in result, f"request failed: {result}"
    return result["reply"].rsplit(" from ", 1)[1].strip()


def in_cluster_set(node, *cidrs: str) -> bool:
    listing = node.weirctl("masquerade")
    return all(f"\n{cidr}\n" in f"\n{listing}" for cidr in cidrs)


@pytest.mark.parametrize("proto", ["tcp", "udp"])
@pytest.mark.parametrize("family", [4, 6])
def test_pods_reach_the_internet_as_their_node(lab, proto, family):
    cluster = Cluster(lab, 2)
    node1, node2 = cluster.nodes
    serve_internet(cluster)
    pods = [node1.add_pod("shell-1"), node2.add_pod("shell-2")]
    server = INTERNET_SERVER_IP if family == 4 else INTERNET_SERVER_IP6
    node_address = node_ip if family == 4 else node_ip6

    for index, pod in enumerate(pods, start=1):
        results = ask(cluster, pod.netns, proto, server)
        assert [r.get("error") for r in results] == [None] * len(results), results
        assert {seen_by_server(r) for r in results} == {node_address(index)}, (pod.name, results)
        # The socket API shows the server, never a translated address.
        assert {r["peer"] for r in results} == {
            f"[{server}]:{SERVER_PORT}" if family == 6 else f"{server}:{SERVER_PORT}"
        }
    # The flows ride conntrack entries of their own.
    assert [line for line in node1.weirctl("conntrack").splitlines() if "masq" in line], node1.weirctl("conntrack")


def test_pods_ping_the_internet(lab):
    """ICMP echo is masqueraded by its identifier: the router cannot answer a pod's own address."""
    cluster = Cluster(lab, 2)
    serve_internet(cluster)
    pods = [cluster.nodes[0].add_pod("shell-1"), cluster.nodes[1].add_pod("shell-2")]
    for pod in pods:
        assert ping_failures(pod, [INTERNET_SERVER_IP, INTERNET_SERVER_IP6]) == [], pod.name


def test_traffic_inside_the_cluster_keeps_the_pods_address(lab):
    """Pod to pod on the same and on the other node, and pod to node: the pod's own address, which
    the Node objects in the manifests put in the in-cluster set."""
    cluster = Cluster(lab, 2)
    node1, node2 = cluster.nodes
    serve_internet(cluster)
    shell = node1.add_pod("shell")
    web = [node1.add_pod("web-1"), node2.add_pod("web-2")]
    for pod in web:
        cluster.serve(pod, SERVER_PORT)
    assert wait_until(
        lambda: in_cluster_set(node1, "10.244.2.0/24", "fd00:10:244:2::/112", f"{node_ip(2)}/32"), timeout=10
    ), node1.weirctl("masquerade")
    for proto in ("tcp", "udp"):
        for pod in web:
            for target in (pod.ipv4, pod.ipv6):
                results = ask(cluster, shell.netns, proto, target, count=2)
                expected = shell.ipv4 if ":" not in target else shell.ipv6
                assert {seen_by_server(r) for r in results} == {expected}, (proto, pod.name, target, results)


def test_masquerade_off_sends_the_pods_address_and_gets_no_answer(lab):
    cluster = Cluster(lab, 2, agent_args=["--masquerade=false"])
    serve_internet(cluster)
    shell = cluster.nodes[0].add_pod("shell")
    assert ping_failures(shell, [INTERNET_SERVER_IP, INTERNET_SERVER_IP6]) == [INTERNET_SERVER_IP, INTERNET_SERVER_IP6]
    for proto in ("tcp", "udp"):
        for server in (INTERNET_SERVER_IP, INTERNET_SERVER_IP6):
            results = ask(cluster, shell.netns, proto, server, count=1)
            assert "error" in results[0], (proto, server, results)


def test_non_masquerade_cidrs_keep_the_pods_address(lab):
    """The internet listed in nonMasqueradeCIDRs: the pod's address goes out, so no answer comes back
    until the router learns a route to the pods; then the server sees the pod itself."""
    cluster = Cluster(lab, 2, agent_args=["--non_masquerade_cidrs=203.0.113.0/24,2001:db8:113::/64"])
    node1 = cluster.nodes[0]
    serve_internet(cluster)
    shell = node1.add_pod("shell")
    assert wait_until(lambda: in_cluster_set(node1, "203.0.113.0/24", "2001:db8:113::/64"), timeout=10), node1.weirctl(
        "masquerade"
    )
    for proto in ("tcp", "udp"):
        for server in (INTERNET_SERVER_IP, INTERNET_SERVER_IP6):
            results = ask(cluster, shell.netns, proto, server, count=1)
            assert "error" in results[0], (proto, server, results)

    router = f"{lab.id}-router"
    run(in_netns(router, ["ip", "route", "add", "10.244.1.0/24", "via", node_ip(1)]))
    run(in_netns(router, ["ip", "-6", "route", "add", "fd00:10:244:1::/112", "via", node_ip6(1)]))
    for proto in ("tcp", "udp"):
        for server, pod_address in ((INTERNET_SERVER_IP, shell.ipv4), (INTERNET_SERVER_IP6, shell.ipv6)):
            results = ask(cluster, shell.netns, proto, server, count=2)
            assert {seen_by_server(r) for r in results} == {pod_address}, (proto, server, results)
