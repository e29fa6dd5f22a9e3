"""Pod bandwidth limits: the runtime's `bandwidth` capability (runtimeConfig.bandwidth, what kubelet
sends for the kubernetes.io/ingress-bandwidth and egress-bandwidth annotations), enforced by weir's
datapath for traffic out of and into a pod: to and from a pod of the same node, a pod of another node
and a client outside the cluster. Measured with iperf3 between namespaces the lab made; a measured
rate must be within 20% of the limit, and a pod without limits keeps its throughput."""

from __future__ import annotations

import json
import subprocess

import pytest

from e2e.conftest import assert_cni_error, assert_no_leaks, host_ifname_of, wait_until
from weirlab.cluster import CLIENT_IP, Cluster, node_ip
from weirlab.lab import Lab, Node, Pod, in_netns, run

LIMIT_BPS = 20_000_000
LIMITS = {"ingressRate": LIMIT_BPS, "ingressBurst": 2**32 - 1, "egressRate": LIMIT_BPS, "egressBurst": 2**32 - 1}
IPERF_PORT = 5201
SECONDS = 4


def limited_conf(node: Node, limits: dict = LIMITS) -> dict:
    return node.conf(runtimeConfig={"bandwidth": limits})


def add_limited_pod(node: Node, name: str, limits: dict = LIMITS) -> Pod:
    return node.add_pod(name, conf=limited_conf(node, limits))


def measure_bps(lab: Lab, source_netns: str, dest_netns: str, dest_ip: str) -> float:
    """What an iperf3 receiver in `dest_netns` gets from a sender in `source_netns` over SECONDS (the
    first second, slow start filling the queue, left out)."""
    server = lab.spawn(
        in_netns(dest_netns, ["iperf3", "-s", "-1", "-p", str(IPERF_PORT)]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert wait_until(
        lambda: f":{IPERF_PORT} " in run(in_netns(dest_netns, ["ss", "-Hltn"])).stdout, timeout=5
    ), "iperf3 server did not listen"
    client = run(
        in_netns(
            source_netns,
            [
                "iperf3",
                "-J",
                "-c",
                dest_ip,
                "-p",
                str(IPERF_PORT),
                "-t",
                str(SECONDS),
                "-O",
                "1",
                "--connect-timeout",
                "3000",
            ],
        ),
        check=False,
        timeout=SECONDS * 4 + 20,
    )
    server.wait(10)
    report = json.loads(client.stdout) if client.stdout.strip() else {}
    assert client.returncode == 0 and "error" not in report, report.get("error", client.stderr)
    return report["end"]["sum_received"]["bits_per_second"]


def assert_near_limit(label: str, bps: float) -> None:
    assert 0.8 * LIMIT_BPS <= bps <= 1.2 * LIMIT_BPS, f"{label}: {bps / 1e6:.2f} Mbit/s, limit {LIMIT_BPS / 1e6:.0f}"


def test_limits_hold_in_every_direction(lab):
    cluster = Cluster(lab, 2)
    node1, node2 = cluster.nodes
    slow = add_limited_pod(node1, "slow")
    neighbour, remote = node1.add_pod("neighbour"), node2.add_pod("remote")
    # The outside client reaches node1's pods through node1 (the lab's fabric has no pod routes).
    run(in_netns(cluster.client, ["ip", "route", "add", node1.pod_cidrs[0], "via", node_ip(1)]))

    measured = {
        "out, same node": measure_bps(lab, slow.netns, neighbour.netns, neighbour.ipv4),
        "in, same node": measure_bps(lab, neighbour.netns, slow.netns, slow.ipv4),
        "out, other node": measure_bps(lab, slow.netns, remote.netns, remote.ipv4),
        "in, other node": measure_bps(lab, remote.netns, slow.netns, slow.ipv4),
        "out, outside": measure_bps(lab, slow.netns, cluster.client, CLIENT_IP),
        "in, outside": measure_bps(lab, cluster.client, slow.netns, slow.ipv4),
    }
    print({k: f"{v / 1e6:.2f} Mbit/s" for k, v in measured.items()})
    for label, bps in measured.items():
        assert_near_limit(label, bps)

    # A pod without limits, beside the limited one, is not slowed (the lab's veths carry Gbit/s).
    fast = node1.add_pod("fast")
    unlimited = measure_bps(lab, fast.netns, neighbour.netns, neighbour.ipv4)
    assert unlimited > 50 * LIMIT_BPS, f"unlimited pod: {unlimited / 1e6:.0f} Mbit/s"


def test_limits_of_both_ends_on_one_node(lab, node):
    # A limited sender and a limited receiver with different rates: the lower one holds.
    sender = add_limited_pod(node, "sender", dict(LIMITS, egressRate=LIMIT_BPS * 2))
    receiver = add_limited_pod(node, "receiver")
    assert_near_limit(
        "20 Mbit/s receiver of a 40 Mbit/s sender", measure_bps(lab, sender.netns, receiver.netns, receiver.ipv4)
    )


def qdiscs(netns: str, dev: str) -> str:
    return run(in_netns(netns, ["tc", "qdisc", "show", "dev", dev])).stdout


def test_limits_are_qdiscs_that_go_with_the_pod(lab, node):
    pod = add_limited_pod(node, "limited", dict(LIMITS, egressRate=LIMIT_BPS // 2))
    host_if = host_ifname_of(pod)
    # Into the pod on the host end, out of it on the pod end; kubelet's 4 Gbit burst is cut to 10 ms.
    assert "tbf" in qdiscs(node.netns, host_if) and "rate 20Mbit burst 25000b" in qdiscs(node.netns, host_if)
    assert "rate 10Mbit burst 12500b" in qdiscs(pod.netns, "eth0")
    deleted = node.delete_pod(pod, limited_conf(node))
    assert deleted.ok, deleted.stdout + deleted.stderr
    assert_no_leaks(node)


@pytest.mark.parametrize(
    "limits, code, words",
    [
        ({"ingressRate": "20M", "ingressBurst": 1000}, 6, "runtimeConfig.bandwidth.ingressRate must be an integer"),
        ({"ingressRate": 1.5e7, "ingressBurst": 1000}, 6, "ingressRate must be an integer"),
        ({"egressRate": -1, "egressBurst": 1000}, 7, "must not be negative"),
        ({"egressRate": LIMIT_BPS}, 7, "egressRate is set but runtimeConfig.bandwidth.egressBurst is not"),
        ({"ingressBurst": 1000}, 7, "ingressBurst is set but"),
        ({"ingressRate": LIMIT_BPS, "ingressBurst": 2**35}, 7, "4 GB or more"),
        ({"egressRate": 10, "egressBurst": 1000}, 7, "out of range"),
    ],
)
def test_malformed_limits_are_refused(lab, node, limits, code, words):
    netns = lab.make_netns("node1-bad")
    result = node.cni("ADD", f"{lab.id}-bad", netns, "eth0", limited_conf(node, limits))
    error = assert_cni_error(result, code)
    assert words in error["msg"], error
    assert_no_leaks(node)


def test_a_chained_bandwidth_plugin_is_refused(lab, node):
    # weir cannot see the plugins after it; it finds them in the conflist the runtime read.
    confdir = lab.dir / "net.d"
    confdir.mkdir()
    weir_entry = {k: v for k, v in node.conf().items() if k not in ("cniVersion", "name")}
    (confdir / "10-weir.conflist").write_text(
        json.dumps(
            {
                "cniVersion": "1.1.0",
                "name": "weir",
                "plugins": [weir_entry, {"type": "bandwidth", "ingressRate": LIMIT_BPS, "ingressBurst": 100_000}],
            }
        )
    )
    netns = lab.make_netns("node1-chained")
    result = node.cni("ADD", f"{lab.id}-chained", netns, "eth0", env={"NETCONFPATH": str(confdir)})
    error = assert_cni_error(result, 7)
    assert 'chains the "bandwidth" plugin after weir' in error["msg"] and "10-weir.conflist" in error["msg"], error
    assert_no_leaks(node)
