"""weir-agent's own conflist through the CNI libraries runtimes really have: libcni v1.1.2 (containerd
1.6), which ignores "cniVersions" and so runs the whole chain at the list's cniVersion, with Debian's
portmap 1.1.1 (CNI up to 1.0.0); and libcni 1.2.3 (cnitool), which picks the newest of "cniVersions"
(1.1.0) and then needs a portmap that speaks 1.1.0 (v1.5 or later, as containerd 2.x installs ship).
Plus the commands a config's version does not define, refused as the spec's libraries do."""

from __future__ import annotations

import json

import pytest

from e2e.conftest import (
    V4_CIDR,
    assert_cni_error,
    assert_no_leaks,
    host_ifname_of,
    host_links,
    ipam_files,
    ping_failures,
)
from e2e.runtime_clients import libcni_1_1, pod_from_client, start_agent_with_conflist
from e2e.test_cni_clients import cnitool, cnitool_container_id, ipv4_only_path
from weirlab.lab import BUILD, DEBIAN_CNI_DIR, TOOLS_DIR

PORTMAP_1_1_DIR = TOOLS_DIR / "portmap-v1.9.1"  # scripts/setup.sh, as weir's image ships it
HOST_PORT = {"portMappings": [{"hostPort": 18080, "containerPort": 8080, "protocol": "tcp"}]}


def test_agent_conflist_with_the_libcni_of_containerd_1_6(lab):
    node = lab.add_node("node1", [V4_CIDR], start_agent=False)
    conflist = start_agent_with_conflist(node, [V4_CIDR])
    listed = json.loads(conflist.read_text())
    assert listed["cniVersion"] == "1.0.0" and listed["cniVersions"] == ["1.0.0", "1.1.0"]
    assert [p["type"] for p in listed["plugins"]] == ["weir", "portmap"]
    assert listed["plugins"][0]["dataDir"] == str(node.data_dir)

    path = ipv4_only_path(lab)  # portmap 1.1.1's CHECK and IPv6, see there
    pods = []
    for i, cap_args in enumerate((HOST_PORT, None)):
        netns, container_id = lab.make_netns(f"node1-cd16-{i}"), f"{lab.id}-cd16-{i}"
        added = libcni_1_1(lab, node, "add", conflist, netns, container_id, cap_args, path)
        pods.append(pod_from_client(node, f"cd16-{i}", netns, container_id, added))
    web, client = pods
    # What containerd 1.6 gets back: a 1.0.0 result (libcni 1.1 rejects "1.1.0" results), weir's
    # interfaces and address passed through portmap.
    assert web.result["cniVersion"] == "1.0.0", web.result
    assert host_ifname_of(web) in host_links(node)
    assert sorted(ipam_files(node)) == sorted(a for p in pods for a in p.addresses())
    assert ping_failures(client, web.addresses()) == []
    nat = node.exec(["iptables", "-t", "nat", "-S"]).stdout
    assert web.container_id in nat and "18080" in nat, nat

    for pod, cap_args in zip(pods, (HOST_PORT, None)):
        checked = libcni_1_1(lab, node, "check", conflist, pod.netns, pod.container_id, cap_args, path)
        assert checked.returncode == 0, f"CHECK {pod.name}: {checked.stderr}"
        for _ in range(2):  # the runtime's DEL is retried; the second one finds nothing
            deleted = libcni_1_1(lab, node, "del", conflist, pod.netns, pod.container_id, cap_args, path)
            assert deleted.returncode == 0, f"DEL {pod.name}: {deleted.stderr}"
    assert web.container_id not in node.exec(["iptables", "-t", "nat", "-S"]).stdout
    assert_no_leaks(node)


def test_agent_conflist_with_libcni_1_2_at_cni_1_1(lab):
    if not (PORTMAP_1_1_DIR / "portmap").exists():
        pytest.skip(f"{PORTMAP_1_1_DIR}/portmap missing (scripts/setup.sh builds it)")
    node = lab.add_node("node1", [V4_CIDR], start_agent=False)
    conflist = start_agent_with_conflist(node, [V4_CIDR])
    cni_path = f"{BUILD / 'cni'}:{PORTMAP_1_1_DIR}:{DEBIAN_CNI_DIR}"
    pods = []
    for i, cap_args in enumerate((HOST_PORT, None)):
        netns = lab.make_netns(f"node1-new{i}")
        added = cnitool(lab, node, conflist.parent, "add", "weir", netns, cap_args, cni_path=cni_path)
        pods.append(pod_from_client(node, f"new{i}", netns, cnitool_container_id(netns), added))
    web, client = pods
    assert web.result["cniVersion"] == "1.1.0", web.result
    assert all(i.get("mtu") == 1500 for i in web.result["interfaces"]), web.result  # a 1.1.0 field
    assert ping_failures(client, web.addresses()) == []

    # STATUS and GC, which only 1.1.0 runtimes send.
    status = cnitool(lab, node, conflist.parent, "status", "weir", web.netns, cni_path=cni_path)
    assert status.returncode == 0, status.stderr
    for pod, cap_args in zip(pods, (HOST_PORT, None)):
        checked = cnitool(lab, node, conflist.parent, "check", "weir", pod.netns, cap_args, cni_path=cni_path)
        assert checked.returncode == 0, f"CHECK {pod.name}: {checked.stderr}"
    deleted = cnitool(lab, node, conflist.parent, "del", "weir", web.netns, HOST_PORT, cni_path=cni_path)
    assert deleted.returncode == 0, deleted.stderr
    collected = cnitool(lab, node, conflist.parent, "gc", "weir", client.netns, cni_path=cni_path)
    assert collected.returncode == 0, collected.stderr
    assert web.container_id not in node.exec(["iptables", "-t", "nat", "-S"]).stdout
    assert_no_leaks(node)


def test_commands_a_config_version_does_not_define_are_refused(lab, node):
    pod = node.add_pod("p")
    for version in ("0.3.0", "0.3.1"):  # CHECK came with 0.4.0
        conf = node.conf(cniVersion=version, prevResult=pod.result)
        error = assert_cni_error(node.cni("CHECK", pod.container_id, pod.netns, "eth0", conf), 1)
        assert "CHECK" in error["msg"] and error["cniVersion"] == version
    for command in ("STATUS", "GC"):  # 1.1.0 commands
        error = assert_cni_error(node.cni(command, conf=node.conf(cniVersion="1.0.0"), ifname=""), 1)
        assert command in error["msg"], error
    # Nothing of the pod was touched by the refused GC.
    assert sorted(ipam_files(node)) == sorted(pod.addresses())
    assert ping_failures(node.add_pod("q"), pod.addresses()) == []
    for p in list(node.pods.values()):
        assert node.delete_pod(p).ok
    assert_no_leaks(node)
