"""Pods on netkit devices ("deviceMode": "netkit", Linux 6.7+ built with CONFIG_NETKIT): ADD, CHECK and
DEL, and traffic pod to pod on one node and across nodes, pod to a ClusterIP (per packet, so that the
from-pod program running in the netkit peer's xmit translates it) and pod to a server outside the
cluster. On a kernel without netkit, ADD is refused with a clear error and leaves nothing behind."""

from __future__ import annotations

import subprocess

import pytest

from e2e.conftest import (
    assert_attachment_gone,
    assert_cni_error,
    assert_no_leaks,
    check_conf,
    host_ifname_of,
    metrics,
    ping_matrix,
    start_servers,
    tcp_matrix,
)
from weirlab.cluster import INTERNET_SERVER_IP, Cluster, endpoint_slice_yaml, node_ip, service_yaml
from weirlab.lab import NETCHECK, in_netns, run
from weirlab.netkit import kernel_has_netkit

needs_netkit = pytest.mark.skipif(
    not kernel_has_netkit(), reason="this kernel has no netkit devices (Linux 6.7+ built with CONFIG_NETKIT)"
)
CLUSTER_IP = "10.96.0.10"


def link_kind(node, ifname: str) -> str:
    """The kind `ip -d link` reports for a device of the node ("veth", "netkit")."""
    out = node.exec(["ip", "-d", "-o", "link", "show", "dev", ifname]).stdout
    words = out.split()
    for kind in ("netkit", "veth"):
        if kind in words:
            return kind
    return out


@pytest.mark.skipif(kernel_has_netkit(), reason="this kernel has netkit: the refusal is not reachable")
def test_netkit_without_kernel_support_is_refused_and_leaves_nothing(lab, node):
    netns = lab.make_netns("node1-nk")
    container_id = f"{lab.id}-nk"
    conf = node.conf(deviceMode="netkit")

    error = assert_cni_error(node.cni("ADD", container_id, netns, "eth0", conf), 7)
    assert 'deviceMode "netkit" needs netkit devices' in error["msg"], error
    assert '"veth"' in error["msg"], error
    assert "eth0" not in run(in_netns(netns, ["ip", "-o", "link", "show"])).stdout
    assert_no_leaks(node)
    # The runtime DELs after a failed ADD: nothing is there, and that is no error.
    deleted = node.cni("DEL", container_id, netns, "eth0", conf)
    assert deleted.ok, f"{deleted.stdout}{deleted.stderr}"
    # The same node still wires veth pods.
    pod = node.add_pod("after")
    assert link_kind(node, host_ifname_of(pod)) == "veth"


@needs_netkit
def test_netkit_pods_add_check_traffic_del(lab):
    node = lab.add_node("node1", ["10.244.1.0/24", "fd00:10:244:1::/112"], device_mode="netkit")
    pods = [node.add_pod(f"pod{i}") for i in range(6)]
    for pod in pods:
        assert link_kind(node, host_ifname_of(pod)) == "netkit"
        assert link_kind(pod, pod.ifname) == "netkit"

    delivered_before = metrics(node)["local_delivery"]
    assert ping_matrix(pods) == {}, "ICMP (v4+v6) all pairs"
    # Pod to pod went through the datapath, not the node's routing.
    assert metrics(node)["local_delivery"] - delivered_before >= 2 * 6 * 5 * 2
    servers = start_servers(lab, pods)
    assert tcp_matrix(pods) == {}, "TCP (v4+v6) all pairs"
    for proc in servers:
        proc.kill()
        proc.wait()

    for pod in pods:
        checked = node.cni("CHECK", pod.container_id, pod.netns, pod.ifname, check_conf(node, pod))
        assert checked.ok, f"CHECK {pod.name}: {checked.stdout}{checked.stderr}"
    # CHECK with a config that asks for the other device kind names the difference.
    wrong = node.cni("CHECK", pods[0].container_id, pods[0].netns, "eth0", check_conf(node, pods[0], deviceMode="veth"))
    assert "is a netkit device, the network config asks for veth" in assert_cni_error(wrong, 100)["msg"]

    for pod in pods:
        deleted = node.cni("DEL", pod.container_id, pod.netns, pod.ifname)
        assert deleted.ok, f"DEL {pod.name}: {deleted.stdout}{deleted.stderr}"
        assert_attachment_gone(node, pod)
        assert "eth0" not in pod.exec(["ip", "-o", "link", "show"]).stdout
    assert_no_leaks(node)


@needs_netkit
def test_netkit_pods_reach_other_nodes_a_cluster_ip_and_the_outside(lab):
    cluster = Cluster(lab, 2, device_mode="netkit")
    node1, node2 = cluster.nodes
    web = [node1.add_pod("web-1"), node2.add_pod("web-2")]
    shell = node1.add_pod("shell")
    for pod in web:
        cluster.serve(pod)

    # Pod to pod across nodes: out of node1's stack, into web-2 from node2's uplink.
    for pod in web:
        result = cluster.requests(shell.netns, "tcp", pod.ipv4, 8080, count=1)[0]
        assert result.get("reply", "").startswith(pod.name), result

    # Pod to a ClusterIP, translated per packet by the program in shell's netkit.
    ports = [("http", 80, 8080, "TCP")]
    placed = [(web[0], "node1"), (web[1], "node2")]
    cluster.apply(
        "web",
        service_yaml("web", ports, cluster_ip=CLUSTER_IP)
        + "---\n"
        + endpoint_slice_yaml("web", placed, [("http", 8080, "TCP")]),
    )
    cluster.wait_for_frontend(f"{CLUSTER_IP}:80", backends=2)
    results = cluster.requests(shell.netns, "tcp", CLUSTER_IP, 80, count=20)
    assert [r for r in results if "error" in r] == []
    assert {r["reply"].split(":")[0] for r in results} == {"web-1", "web-2"}

    # Pod to outside: masqueraded to node1's address, answered through the uplink into the netkit pod.
    internet = cluster.add_internet()
    server = cluster.lab.spawn(
        in_netns(internet, ["python3", str(NETCHECK), "serve", "8080", "internet"]), stdout=subprocess.PIPE, text=True
    )
    assert server.stdout.readline().strip() == "ready"
    results = cluster.requests(shell.netns, "tcp", INTERNET_SERVER_IP, 8080, count=3)
    assert [r.get("error") for r in results] == [None] * 3, results
    assert {r["reply"].rsplit(" from ", 1)[1].strip() for r in results} == {node_ip(1)}
