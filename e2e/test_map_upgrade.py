"""An upgrade whose maps differ from the pinned ones, under traffic: node1's agent restarts with another
conntrackMax and maglevTableSize than the maps pinned by its predecessor, while TCP and UDP requests
run through a ClusterIP (per packet and socket LB) and a NodePort and connections opened before stay
open. The new agent migrates the pinned maps (copies the conntrack entries into a map of the new size,
resamples the Maglev tables), switches the programs to them and replaces the pins: no request fails
and every established connection still answers.

The first agent is this build's, or, with WEIR_PREVIOUS_AGENT=<path of another build's weir-agent>
(e.g. a build of the commit before), that build's: an upgrade across builds as well as sizes, and
across layouts when the builds' structs differ (weir_services carries backends from layout 2 on). The
nodes are read with the weirctl beside their agent."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from e2e.conftest import wait_until
from e2e.test_services import CLUSTER_IP, apply_service, web_cluster
from weirlab.cluster import node_ip
from weirlab.lab import NETCHECK, WEIR_AGENT, in_netns

REQUESTS = 300
INTERVAL = "0.02"


PREVIOUS_AGENT = os.environ.get("WEIR_PREVIOUS_AGENT")


@pytest.mark.parametrize(
    "first_agent",
    [
        pytest.param(None, id="this-build"),
        pytest.param(
            PREVIOUS_AGENT,
            id="previous-build",
            marks=pytest.mark.skipif(not PREVIOUS_AGENT, reason="WEIR_PREVIOUS_AGENT names no other build"),
        ),
    ],
)
def test_upgrade_with_other_map_sizes_under_traffic(lab, first_agent):
    config = lab.dir / "agent.yaml"
    config.write_text("conntrackMax: 262144\nmaglevTableSize: 1021\n")
    binary = Path(first_agent) if first_agent else WEIR_AGENT
    cluster, web, shell, lb_shell = web_cluster(lab, agent_args=[f"--config={config}"], agent_binary=binary)
    node1 = cluster.nodes[0]
    apply_service(cluster, "web", web, cluster_ip=CLUSTER_IP, type_="NodePort", node_port=30087)
    cluster.wait_for_frontend(f"{CLUSTER_IP}:80", backends=3)
    cluster.wait_for_frontend(f"{node_ip(1)}:30087", backends=3, nodes=[node1])

    # Connections whose translation lives only in node1's conntrack (per packet, NodePort) and in
    # its socket-LB reverse map.
    holders = {
        "ClusterIP per-packet": cluster.hold(shell.netns, CLUSTER_IP, 80),
        "ClusterIP socket LB": cluster.hold(lb_shell.netns, CLUSTER_IP, 80, node=node1),
        "NodePort": cluster.hold(cluster.client, node_ip(1), 30087),
    }
    for name, held in holders.items():
        assert [o for o in held.open(8) if "error" in o] == [], name

    loops = {
        "ClusterIP per-packet tcp": (shell.netns, "tcp", CLUSTER_IP, 80, None),
        "ClusterIP per-packet udp": (shell.netns, "udp", CLUSTER_IP, 80, None),
        "ClusterIP socket LB tcp": (lb_shell.netns, "tcp", CLUSTER_IP, 80, node1),
        "ClusterIP socket LB udp": (lb_shell.netns, "udp", CLUSTER_IP, 80, node1),
        "NodePort tcp": (cluster.client, "tcp", node_ip(1), 30087, None),
        "NodePort udp": (cluster.client, "udp", node_ip(1), 30087, None),
    }
    procs = {}
    for name, (netns, proto, target, port, node) in loops.items():
        cmd = ["python3", str(NETCHECK), "peer", proto, str(port), target, str(REQUESTS), INTERVAL]
        argv = cluster.node_cgroup_cmd(node, netns, cmd) if node else in_netns(netns, cmd)
        procs[name] = lab.spawn(argv, stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)

    log = node1.dir / "agent.log"
    node1.stop_agent()
    before = len(log.read_text())
    new_lines = lambda: log.read_text()[before:]
    # The next build's DaemonSet pod, configured for other sizes than the pinned maps'.
    config.write_text("conntrackMax: 131072\nmaglevTableSize: 2039\n")
    started = time.monotonic()
    node1.agent_binary = WEIR_AGENT
    cluster.restart_agent(node1)
    assert wait_until(lambda: "synced " in new_lines(), timeout=15), new_lines()
    upgrade_time = time.monotonic() - started
    assert any(proc.poll() is None for proc in procs.values()), "the request loops ended before the upgrade"
    said = new_lines()
    assert "migrated pinned map weir_ct: 262144 entries, this agent is configured for 131072" in said, said
    assert "migrated pinned map weir_maglev: values of 4084 bytes, this agent's are 8156" in said, said

    failures = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=90)
        results = json.loads(out)
        assert len(results) == REQUESTS, name
        failed = [(i, r) for i, r in enumerate(results) if "error" in r]
        if failed:
            failures[name] = f"{len(failed)} of {REQUESTS} failed: {failed[:5]}"
    if failures:
        # What the datapath and the agent saw, for a failure in the switch's window.
        print("\nFAILURES", failures)
        print(node1.weirctl("metrics"))
        print("\n".join(line for line in said.splitlines() if "migrat" in line or "switch" in line))
        for failed in failures.values():
            for port in re.findall(r"'local': '[0-9.]+:(\d+)'", failed):
                print(f"conntrack of port {port}:\n", node1.weirctl("conntrack", f"--port={port}"))
    assert failures == {}, failures
    for name, held in holders.items():
        replies = held.ping()
        assert len(replies) == 8 and all(" from " in r and not r.startswith("error") for r in replies.values()), (
            name,
            replies,
        )
        held.close()
    assert node1.agent.poll() is None, "the upgraded agent exited"

    copied = next(line for line in said.splitlines() if "migrated pinned map weir_ct" in line)
    switched = next(line for line in said.splitlines() if "switched " in line)
    print(f"\nupgrade (SIGTERM to synced on migrated maps) took {upgrade_time:.2f} s")
    print(copied.split("] ")[-1])
    print(switched.split("] ")[-1])

    # The new maps hold the pins: the node's next agent with the same settings starts as any restart.
    node1.stop_agent()
    before = len(log.read_text())
    cluster.restart_agent(node1)
    assert wait_until(lambda: "synced " in new_lines(), timeout=15), new_lines()
    assert "migrated pinned map" not in new_lines(), new_lines()
