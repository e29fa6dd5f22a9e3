"""What a failed ADD leaves, and what the node keeps after a DEL that never reached weir: nothing, for
long. An ADD that fails after it took an address gives the address back and removes what it wired;
when a chained plugin fails the runtime's clean-up DEL (so weir's DEL never runs) and the pod's
namespace is deleted, weir-agent collects the endpoint, the IPAM allocation and the link pin, and the
address goes to the next pod."""

from __future__ import annotations

import json
import re

from e2e.conftest import (
    assert_cni_error,
    assert_no_leaks,
    endpoints,
    host_ifname_of,
    host_links,
    ipam_files,
    link_pins,
    ping_failures,
    wait_until,
)
from e2e.runtime_clients import (
    agent_metrics,
    conflist_with,
    failing_plugin,
    libcni_1_1,
    metric_value,
    start_agent_with_conflist,
)
from e2e.test_cni_clients import cnitool
from weirlab.lab import BUILD, run

# Two usable addresses (.1 and .2): which one a pod gets, and when the range is full, is known.
TINY_CIDR = "10.244.1.0/30"
TINY_ADDRESSES = ["10.244.1.1", "10.244.1.2"]


def node_state(node) -> tuple:
    """Everything an attachment of weir leaves in the node, as a user would list it."""
    routes = node.exec(["ip", "-o", "route", "show", "table", "all"]).stdout
    return (
        sorted(ipam_files(node)),
        sorted(host_links(node)),
        link_pins(node),
        sorted(endpoints(node)),
        sorted(line for line in routes.splitlines() if "weir" in line),
    )


def test_add_failing_while_wiring_gives_everything_back(lab):
    node = lab.add_node("node1", [TINY_CIDR])
    empty = node_state(node)
    # Routes to both pod addresses already exist in the node: the ADD gets its address, creates the
    # veth pair, configures the pod's end and attaches the program, then fails on its host route.
    for address in TINY_ADDRESSES:
        node.exec(["ip", "route", "add", f"{address}/32", "dev", "lo"])
    netns = lab.make_netns("node1-blocked")
    failed = node.cni("ADD", f"{lab.id}-blocked", netns, "eth0")
    assert failed.code != 0 and failed.json.get("code", 0) > 0, failed.stdout + failed.stderr
    assert node_state(node) == empty, "the failed ADD left state behind"
    assert "eth0" not in run(["ip", "-n", netns, "-o", "link", "show"]).stdout
    log = (node.dir / "cni.log").read_text()
    assert "undoing the failed ADD" not in log, log  # the undo itself went through

    # With the blocking routes gone both addresses are free: two pods get them and talk.
    for address in TINY_ADDRESSES:
        node.exec(["ip", "route", "del", f"{address}/32", "dev", "lo"])
    first, second = node.add_pod("first"), node.add_pod("second")
    assert sorted(first.addresses() + second.addresses()) == TINY_ADDRESSES
    assert ping_failures(first, second.addresses()) == []
    for pod in (first, second):
        assert node.delete_pod(pod).ok
    assert_no_leaks(node)


def test_add_into_a_namespace_that_is_not_one_gives_the_address_back(lab):
    node = lab.add_node("node1", [TINY_CIDR])
    not_a_netns = lab.dir / "not-a-netns"
    not_a_netns.write_text("")
    failed = node.cni("ADD", f"{lab.id}-nons", str(not_a_netns), "eth0")
    assert_cni_error(failed, 4)
    assert ipam_files(node) == [] and host_links(node) == []
    assert_no_leaks(node)


def test_agent_collects_what_a_failed_chain_left(lab):
    node = lab.add_node("node1", [TINY_CIDR], start_agent=False)
    conflist = start_agent_with_conflist(node, [TINY_CIDR], gc_interval=1)
    keeper = node.add_pod("keeper")  # holds .1, so the orphan's .2 fills the range
    assert keeper.addresses() == [TINY_ADDRESSES[0]]

    # weir first, then a plugin whose ADD and DEL always fail: the runtime's ADD fails after weir's
    # succeeded, and its clean-up DEL stops at the failing plugin (DEL runs the chain backwards).
    chain = conflist_with(conflist, lab.dir / "net.d-failing", "portmap", {"type": "always-fails"})
    cni_path = f"{BUILD / 'cni'}:{failing_plugin(lab)}"
    orphan_netns = lab.make_netns("node1-orphan")
    added = cnitool(lab, node, chain.parent, "add", "weir", orphan_netns, cni_path=cni_path)
    assert added.returncode != 0 and "fails on purpose" in added.stdout + added.stderr, added
    deleted = cnitool(lab, node, chain.parent, "del", "weir", orphan_netns, cni_path=cni_path)
    assert deleted.returncode != 0 and "fails on purpose" in deleted.stdout + deleted.stderr, deleted
    orphan_address = TINY_ADDRESSES[1]
    assert sorted(ipam_files(node)) == TINY_ADDRESSES
    assert sorted(endpoints(node)) == TINY_ADDRESSES
    assert len(host_links(node)) == 2 and len(link_pins(node)) == 2
    # While the orphan holds its address the range is full.
    assert_cni_error(node.cni("ADD", f"{lab.id}-early", lab.make_netns("node1-early"), "eth0"), 101)

    # The runtime deletes the pod's namespace: the kernel takes the veth pair and the host route, and
    # within a few collection intervals the agent takes the rest.
    run(["ip", "netns", "delete", orphan_netns])
    assert wait_until(
        lambda: ipam_files(node) == [keeper.ipv4]
        and endpoints(node) == [keeper.ipv4]
        and link_pins(node) == [host_ifname_of(keeper)],
        timeout=10,
    ), node_state(node)
    assert host_links(node) == [host_ifname_of(keeper)]
    metrics = agent_metrics(node)
    for kind in ("endpoint", "ipam_address", "link_pin"):
        assert metric_value(metrics, f'weir_orphans_collected_total{{kind="{kind}"}}') == 1, metrics
    log = (node.dir / "agent.log").read_text()
    assert re.search(r"orphans: weir\w+ is gone and its DEL never came: removed endpoint 10\.244\.1\.2", log), log

    # The address is free again: the next pod gets it, and the keeper was never touched.
    after = node.add_pod("after")
    assert after.addresses() == [orphan_address]
    assert ping_failures(after, keeper.addresses()) == []
    for pod in (keeper, after):
        assert node.delete_pod(pod).ok
    assert_no_leaks(node)


def test_agent_collects_what_containerd_1_6_left_with_a_cni_1_1_conflist(lab):
    # The failure seen with containerd 1.6 and the conflist weir-agent used to write (cniVersion
    # 1.1.0): libcni 1.1 rejects weir's 1.1.0 result, then Debian's portmap (CNI up to 1.0.0) refuses
    # the clean-up DEL before it reaches weir. The agent still collects what the pod left.
    node = lab.add_node("node1", ["10.244.1.0/24"], start_agent=False)
    conflist = start_agent_with_conflist(node, ["10.244.1.0/24"], gc_interval=1)
    old = conflist_with(conflist, lab.dir / "net.d-1.1", "weir", json.loads(conflist.read_text())["plugins"][0])
    old.write_text(old.read_text().replace('"cniVersion": "1.0.0"', '"cniVersion": "1.1.0"'))
    netns, container_id = lab.make_netns("node1-cd16"), f"{lab.id}-cd16"
    added = libcni_1_1(lab, node, "add", old, netns, container_id)
    assert added.returncode != 0 and 'unsupported CNI result version "1.1.0"' in added.stderr, added
    deleted = libcni_1_1(lab, node, "del", old, netns, container_id)
    assert deleted.returncode != 0 and "portmap" in deleted.stderr, deleted
    assert len(endpoints(node)) == 1 and len(ipam_files(node)) == 1 and len(host_links(node)) == 1

    run(["ip", "netns", "delete", netns])
    assert wait_until(
        lambda: not endpoints(node) and not ipam_files(node) and not link_pins(node), timeout=10
    ), node_state(node)
    assert_no_leaks(node)
