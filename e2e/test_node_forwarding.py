"""weir-agent turns on IP forwarding in its node's namespace (never anywhere else): a node where
nothing set net.ipv4.ip_forward / net.ipv6.conf.all.forwarding drops the pod traffic it should pass
between its pods and other nodes; after the agent starts, that traffic flows. manageForwarding: false
(--manage_forwarding=false) leaves the settings alone."""

from __future__ import annotations

from pathlib import Path

from e2e.conftest import ping_failures, wait_until
from weirlab.cluster import Cluster

KEYS = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")


def sysctl(node, key: str) -> str:
    return node.exec(["sysctl", "-n", key]).stdout.strip()


def machine_values() -> list[str]:
    """The machine's own (root namespace) values, which no test may change."""
    return [
        Path("/proc/sys/net/ipv4/ip_forward").read_text(),
        Path("/proc/sys/net/ipv6/conf/all/forwarding").read_text(),
    ]


def test_agent_turns_forwarding_on_for_cross_node_pod_traffic(lab):
    machine_before = machine_values()
    cluster = Cluster(lab, 2, start_agents=False)
    for node in cluster.nodes:
        for key in KEYS:
            node.exec(["sysctl", "-qw", f"{key}=0"])
        cluster.agent_args[node.name].append("--manage_forwarding=false")
    cluster.start_agents()
    node1, node2 = cluster.nodes
    a, b = node1.add_pod("a"), node2.add_pod("b")
    assert ping_failures(a, [a.ipv4]) == []  # the pod itself is fine
    # Told to leave forwarding alone, the agent did; and the nodes drop cross-node pod traffic.
    assert [sysctl(n, k) for n in cluster.nodes for k in KEYS] == ["0"] * 4
    assert sorted(ping_failures(a, b.addresses())) == sorted(b.addresses())

    for node in cluster.nodes:
        cluster.agent_args[node.name].remove("--manage_forwarding=false")
        cluster.restart_agent(node)
    # restart_agent returns once the datapath is pinned, which it still is from the first agent.
    for node in cluster.nodes:
        wanted = [f"forwarding: set {key}=1 in the node's network namespace (was 0)" for key in KEYS]
        assert wait_until(lambda: all(w in (node.dir / "agent.log").read_text() for w in wanted), timeout=10), (
            node.dir / "agent.log"
        ).read_text()
    assert [sysctl(n, k) for n in cluster.nodes for k in KEYS] == ["1"] * 4
    assert ping_failures(a, b.addresses()) == []
    assert ping_failures(b, a.addresses()) == []
    assert machine_values() == machine_before

    # A restart finds it on and says so, changing nothing.
    cluster.restart_agent(node1)
    assert wait_until(lambda: "forwarding: already on" in (node1.dir / "agent.log").read_text(), timeout=10)
