"""NodePort acceleration on the two-node lab (weirlab/cluster.py): with `--node_port_acceleration=native`
or `generic` the agents attach bpf/from_uplink_xdp.bpf.c at XDP on uplink0, in front of the tc
program; every case runs in both modes (a veth has both hooks). Requests from the outside client
reach a NodePort whose backend is on the other node (SNAT and DSR), on the same node (XDP hands the
translated packet to tc), and the agents' counters show XDP sent the packets on. Without XDP too: a
DSR packet that does not come from a node is dropped. An agent restarted in the other mode moves the
program.

Every request is real TCP/UDP between the lab's namespaces; XDP is attached only to the lab's
uplink0 devices (veth)."""

from __future__ import annotations

import json
import select
import socket
import struct
import subprocess

import pytest

from e2e.conftest import metrics, wait_until
from weirlab.cluster import CLIENT_IP, Cluster, endpoint_slice_yaml, node_ip, service_yaml
from weirlab.frames import internet_checksum
from weirlab.lab import in_netns, run

PORTS = [("http", 80, 8080, "TCP"), ("udp", 80, 8080, "UDP")]
MODES = ["native", "generic"]
SLICE_PORTS = [("http", 8080, "TCP"), ("udp", 8080, "UDP")]


def failures(results: list[dict]) -> list[dict]:
    return [r for r in results if "error" in r]


def seen_from(result: dict) -> str:
    assert "reply" in result, f"request failed: {result}"
    return result["reply"].rsplit(" from ", 1)[1].strip()


def backend(result: dict) -> str:
    assert "reply" in result, f"request failed: {result}"
    return result["reply"].split(":")[0]


def xdp_attached(node) -> str:
    """How uplink0's XDP program is attached: "native", "generic" or "" (none)."""
    link = json.loads(node.exec(["ip", "-d", "-j", "link", "show", "uplink0"]).stdout)[0]
    # XDP_ATTACHED_DRV = 1, XDP_ATTACHED_SKB = 2 (linux/if_link.h)
    return {1: "native", 2: "generic"}.get(link.get("xdp", {}).get("mode"), "")


def node_port_cluster(lab, lb_modes: list[str], backend_node: int, mode: str = "native"):
    cluster = Cluster(lab, 2, lb_modes, agent_args=[f"--node_port_acceleration={mode}"])
    cluster.prepare_for_xdp()
    web = cluster.nodes[backend_node - 1].add_pod("web")
    cluster.serve(web)
    cluster.apply(
        "web",
        service_yaml("web", PORTS, cluster_ip="10.96.0.10", type_="NodePort", node_port=30080)
        + "---\n"
        + endpoint_slice_yaml("web", [(web, f"node{backend_node}")], SLICE_PORTS),
    )
    for i in (1, 2):
        cluster.wait_for_frontend(f"{node_ip(i)}:30080", backends=1, nodes=[cluster.nodes[i - 1]])
    for node in cluster.nodes:
        assert xdp_attached(node) == mode, node.exec(["ip", "-d", "link", "show", "uplink0"]).stdout
    return cluster, web


@pytest.mark.parametrize("mode", MODES)
def test_node_port_snat_to_a_backend_on_the_other_node_leaves_from_xdp(lab, mode):
    """node1 (SNAT) forwards the client's TCP and UDP requests to web on node2 and the answers back
    from XDP: the backend sees node1, the client sees the NodePort, and node1's xdp_sent counts both
    directions of every packet."""
    cluster, web = node_port_cluster(lab, ["snat", "snat"], backend_node=2, mode=mode)
    node1 = cluster.nodes[0]
    before = metrics(node1).get("xdp_sent", 0)
    for proto in ("tcp", "udp"):
        results = cluster.requests(cluster.client, proto, node_ip(1), 30080, count=5)
        assert failures(results) == [], proto
        assert {backend(r) for r in results} == {"web"}
        assert {seen_from(r) for r in results} == {node_ip(1)}, proto
        assert {r["peer"] for r in results} == {f"{node_ip(1)}:30080"}, proto
    # TCP: at least syn, ack, request, fin each way per connection; UDP: request and answer.
    assert metrics(node1).get("xdp_sent", 0) - before >= 5 * 6 + 5 * 2, node1.weirctl("metrics")


@pytest.mark.parametrize("mode", MODES)
def test_node_port_dsr_wrapped_by_xdp(lab, mode):
    """node2 (DSR) wraps the client's TCP packets for web on node1 in XDP; node1 unwraps them in tc
    and answers the client itself: the backend sees the client."""
    cluster, web = node_port_cluster(lab, ["snat", "dsr"], backend_node=1, mode=mode)
    node2 = cluster.nodes[1]
    before = metrics(node2).get("xdp_sent", 0)
    results = cluster.requests(cluster.client, "tcp", node_ip(2), 30080, count=5)
    assert failures(results) == []
    assert {seen_from(r) for r in results} == {CLIENT_IP}
    assert {r["peer"] for r in results} == {f"{node_ip(2)}:30080"}
    assert metrics(node2).get("xdp_sent", 0) - before >= 5 * 3, node2.weirctl("metrics")


@pytest.mark.parametrize("mode", MODES)
def test_node_port_with_a_local_backend_is_handed_to_tc(lab, mode):
    """A backend on the node the client reached: XDP translates, tc enters the pod with the result XDP
    hands on; the backend sees the client and nothing is counted as sent by XDP. (A tc program that
    missed the handoff would leave the packets to the stack, which reaches the pod too, but
    local_delivery would not count them.)"""
    cluster, web = node_port_cluster(lab, ["snat", "snat"], backend_node=1, mode=mode)
    node1 = cluster.nodes[0]
    before = metrics(node1)
    for proto in ("tcp", "udp"):
        results = cluster.requests(cluster.client, proto, node_ip(1), 30080, count=5)
        assert failures(results) == [], proto
        assert {seen_from(r) for r in results} == {CLIENT_IP}, proto
    after = metrics(node1)
    assert after.get("xdp_sent", 0) == before.get("xdp_sent", 0)
    assert after.get("service_translated", 0) - before.get("service_translated", 0) >= 6
    # Every UDP request and at least the SYN of every TCP connection entered the pod from tc.
    assert after.get("local_delivery", 0) - before.get("local_delivery", 0) >= 5 + 5, node1.weirctl("metrics")


def line_within(proc: subprocess.Popen, timeout: float) -> str:
    """The next line `proc` prints, or "" when it prints none within `timeout` seconds."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if ready else ""


def ipv4_header(src: str, dst: str, proto: int, payload_len: int, ident: int) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident, 0, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )
    return header[:10] + struct.pack("!H", internet_checksum(header)) + header[12:]


def udp_datagram(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, length)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    csum = internet_checksum(pseudo + header + payload) or 0xFFFF
    return ipv4_header(src, dst, 17, length, 1) + struct.pack("!HHHH", sport, dport, length, csum) + payload


@pytest.mark.parametrize("acceleration", ["disabled"] + MODES)
def test_dsr_packet_from_a_non_node_is_dropped(lab, acceleration):
    """An IPIP packet shaped as DSR's (outer destination a pod, backend port in the IP id) from the
    outside client, carrying a UDP datagram with a forged source: node1 drops it and counts it, and
    the pod receives nothing. The same wrapping from node2's address is delivered."""
    cluster = Cluster(lab, 2, ["snat", "dsr"], agent_args=[f"--node_port_acceleration={acceleration}"])
    cluster.prepare_for_xdp()
    node1, node2 = cluster.nodes
    web = node1.add_pod("web")
    run(in_netns(cluster.client, ["ip", "route", "add", "10.244.1.0/24", "via", node_ip(1)]))

    def send_wrapped(netns: str, outer_src: str, payload: bytes) -> None:
        inner = udp_datagram("198.51.100.7", 5353, node_ip(2), 30080, payload)
        packet = ipv4_header(outer_src, web.ipv4, 4, len(inner), 8080) + inner
        code = (
            "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW); "
            f"s.sendto(bytes.fromhex('{packet.hex()}'), ('{web.ipv4}', 0))"
        )
        run(in_netns(netns, ["python3", "-c", code]))

    # The pod prints every datagram it receives on the backend port.
    listener = lab.spawn(
        in_netns(
            web.netns,
            [
                "python3",
                "-u",
                "-c",
                "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 8080)); "
                "print('ready')\nwhile True: print(s.recv(100).decode())",
            ],
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert line_within(listener, 5) == "ready"
        refused = metrics(node1).get("dsr_refused", 0)
        send_wrapped(cluster.client, CLIENT_IP, b"from-the-client")
        assert wait_until(lambda: metrics(node1).get("dsr_refused", 0) == refused + 1, timeout=3), node1.weirctl(
            "metrics"
        )
        send_wrapped(node2.netns, node_ip(2), b"from-node2")
        # The pod prints what it received in order: node2's datagram is the first.
        assert line_within(listener, 3) == "from-node2"
        assert metrics(node1).get("dsr_refused", 0) == refused + 1
    finally:
        listener.kill()


def acceleration_in_status(node) -> str:
    """What `weirctl status` tells the operator about XDP on the node's uplinks."""
    return json.loads(node.weirctl("status", "-o", "json"))["agent"]["node_port_acceleration"]


@pytest.mark.parametrize("mode", MODES)
def test_restart_keeps_xdp_and_disabled_removes_it(lab, mode):
    """A restarted agent switches the pinned XDP link to its new program (XDP still sends the SNAT
    flow's packets); restarted with acceleration disabled, it removes the link and tc serves alone."""
    cluster, web = node_port_cluster(lab, ["snat", "snat"], backend_node=2, mode=mode)
    node1 = cluster.nodes[0]
    cluster.restart_agent(node1)
    cluster.wait_for_frontend(f"{node_ip(1)}:30080", backends=1, nodes=[node1])
    assert xdp_attached(node1) == mode
    before = metrics(node1).get("xdp_sent", 0)
    assert failures(cluster.requests(cluster.client, "udp", node_ip(1), 30080, count=3)) == []
    assert metrics(node1).get("xdp_sent", 0) > before

    cluster.agent_args[node1.name] = [
        a for a in cluster.agent_args[node1.name] if not a.startswith("--node_port_acceleration")
    ] + ["--node_port_acceleration=disabled"]
    cluster.restart_agent(node1)
    cluster.wait_for_frontend(f"{node_ip(1)}:30080", backends=1, nodes=[node1])
    assert wait_until(lambda: xdp_attached(node1) == "", timeout=10)
    assert wait_until(lambda: acceleration_in_status(node1) == "disabled", timeout=10)
    before = metrics(node1).get("xdp_sent", 0)
    results = cluster.requests(cluster.client, "udp", node_ip(1), 30080, count=3)
    assert failures(results) == []
    assert {seen_from(r) for r in results} == {node_ip(1)}
    assert metrics(node1).get("xdp_sent", 0) == before


@pytest.mark.parametrize("modes", [("native", "generic"), ("generic", "native")])
def test_restart_in_the_other_mode_moves_the_xdp_program(lab, modes):
    """An agent restarted with the other mode detaches its XDP link and attaches the program in the
    new mode: XDP still sends the SNAT flow's packets, the client still gets its answers. (The
    kernel takes no XDP program of one mode while one of the other is attached.)"""
    first, second = modes
    cluster, web = node_port_cluster(lab, ["snat", "snat"], backend_node=2, mode=first)
    node1 = cluster.nodes[0]
    # The first flow teaches node1 its neighbours (XDP hands a packet without one to tc).
    assert failures(cluster.requests(cluster.client, "udp", node_ip(1), 30080, count=3)) == []
    cluster.agent_args[node1.name] = [
        a for a in cluster.agent_args[node1.name] if not a.startswith("--node_port_acceleration")
    ] + [f"--node_port_acceleration={second}"]
    cluster.restart_agent(node1)
    cluster.wait_for_frontend(f"{node_ip(1)}:30080", backends=1, nodes=[node1])
    assert wait_until(lambda: xdp_attached(node1) == second, timeout=10), (
        node1.exec(["ip", "-d", "link", "show", "uplink0"]).stdout + (node1.dir / "agent.log").read_text()[-3000:]
    )
    # The new agent publishes its facts a moment after it attaches; until then status shows the last agent's.
    assert wait_until(lambda: acceleration_in_status(node1) == second, timeout=10), node1.weirctl("status")
    assert f"XDP {second}" in node1.weirctl("status")
    before = metrics(node1).get("xdp_sent", 0)
    results = cluster.requests(cluster.client, "udp", node_ip(1), 30080, count=3)
    assert failures(results) == []
    assert {seen_from(r) for r in results} == {node_ip(1)}
    assert metrics(node1).get("xdp_sent", 0) - before >= 3 * 2, node1.weirctl("metrics")
