"""The CNI commands end to end on one node: ADD, CHECK, DEL, GC, STATUS and VERSION, driven exactly as a
container runtime drives the plugin (env + stdin inside the node's namespace), with traffic between
the pods and a no-leak check of every kind of state the plugin keeps."""

from __future__ import annotations

import ipaddress

import pytest

from e2e.conftest import (
    V4_CIDR,
    V6_CIDR,
    assert_attachment_gone,
    assert_cni_error,
    assert_no_leaks,
    check_conf,
    endpoints,
    host_ifname_of,
    host_links,
    ipam_files,
    link_pins,
    metrics,
    ping_failures,
    ping_matrix,
    pod_from_add,
    start_servers,
    tcp_matrix,
)
from weirlab.lab import run


def test_twenty_pods_add_check_traffic_del(lab, node):
    pods = [node.add_pod(f"pod{i:02d}") for i in range(20)]

    addresses = [a for p in pods for a in p.addresses()]
    assert len(addresses) == 40 and len(set(addresses)) == 40
    for pod in pods:
        assert ipaddress.ip_address(pod.ipv4) in ipaddress.ip_network(V4_CIDR)
        assert ipaddress.ip_address(pod.ipv6) in ipaddress.ip_network(V6_CIDR)
    assert sorted(endpoints(node)) == sorted(addresses)
    assert sorted(ipam_files(node)) == sorted(addresses)
    assert sorted(host_links(node)) == sorted(host_ifname_of(p) for p in pods)
    assert link_pins(node) == sorted(host_links(node))

    delivered_before = metrics(node)["local_delivery"]
    assert ping_matrix(pods) == {}, "ICMP (v4+v6) all pairs"
    # Same-node traffic went pod to pod through the datapath (redirect_to_pod), both directions.
    assert metrics(node)["local_delivery"] - delivered_before >= 2 * 20 * 19 * 2
    servers = start_servers(lab, pods)
    assert tcp_matrix(pods) == {}, "TCP (v4+v6) all pairs"
    for proc in servers:  # a process inside a pod namespace would keep it alive after `netns delete`
        proc.kill()
        proc.wait()

    for pod in pods:
        checked = node.cni("CHECK", pod.container_id, pod.netns, pod.ifname, check_conf(node, pod))
        assert checked.ok, f"CHECK {pod.name}: {checked.stdout}{checked.stderr}"
        assert checked.stdout.strip() == ""

    for pod in pods[:18]:
        for attempt in (1, 2):  # DEL is idempotent: the second one finds nothing and succeeds
            deleted = node.cni("DEL", pod.container_id, pod.netns, pod.ifname)
            assert deleted.ok, f"DEL #{attempt} {pod.name}: {deleted.stdout}{deleted.stderr}"
        assert_attachment_gone(node, pod)
        # The pod's end went with the host end.
        assert "eth0" not in pod.exec(["ip", "-o", "link", "show"]).stdout

    # DEL after the runtime already removed the pod's namespace: once with the stale path, once
    # without CNI_NETNS at all (both allowed by the spec).
    gone_a, gone_b = pods[18], pods[19]
    for pod in (gone_a, gone_b):
        run(["ip", "netns", "delete", pod.netns])
    deleted = node.cni("DEL", gone_a.container_id, gone_a.netns, gone_a.ifname)
    assert deleted.ok, f"DEL with a deleted netns: {deleted.stdout}{deleted.stderr}"
    deleted = node.cni("DEL", gone_b.container_id, "", gone_b.ifname)
    assert deleted.ok, f"DEL without CNI_NETNS: {deleted.stdout}{deleted.stderr}"
    for pod in (gone_a, gone_b):
        assert_attachment_gone(node, pod)
        assert node.cni("DEL", pod.container_id, "", pod.ifname).ok

    assert_no_leaks(node)


def test_gc_releases_exactly_the_invalid_attachments(lab, node):
    pods = [node.add_pod(f"gc{i}") for i in range(10)]
    valid, stale = pods[:5], pods[5:]
    # The usual reason for GC: some pods' namespaces are gone and their DEL never came.
    for pod in stale[:2]:
        run(["ip", "netns", "delete", pod.netns])
    conf = node.conf(
        **{"cni.dev/valid-attachments": [{"containerID": p.container_id, "ifname": p.ifname} for p in valid]}
    )
    gc = node.cni("GC", conf=conf, ifname="")
    assert gc.ok, f"GC: {gc.stdout}{gc.stderr}"

    valid_addresses = sorted(a for p in valid for a in p.addresses())
    assert sorted(ipam_files(node)) == valid_addresses
    assert sorted(endpoints(node)) == valid_addresses
    assert sorted(host_links(node)) == sorted(host_ifname_of(p) for p in valid)
    assert link_pins(node) == sorted(host_ifname_of(p) for p in valid)
    for pod in stale:
        assert_attachment_gone(node, pod)
    for pod in stale[2:]:
        assert "eth0" not in pod.exec(["ip", "-o", "link", "show"]).stdout

    assert ping_matrix(valid) == {}
    for pod in valid:
        assert node.cni("CHECK", pod.container_id, pod.netns, pod.ifname, check_conf(node, pod)).ok

    # GC again with the same list: nothing more goes.
    assert node.cni("GC", conf=conf, ifname="").ok
    assert sorted(ipam_files(node)) == valid_addresses
    # DEL of an attachment GC already collected is still a success.
    for pod in stale:
        assert node.cni("DEL", pod.container_id, pod.netns, pod.ifname).ok, pod.name
    for pod in valid:
        assert node.cni("DEL", pod.container_id, pod.netns, pod.ifname).ok
    assert_no_leaks(node)


def test_version(lab):
    node = lab.add_node("node1", [V4_CIDR, V6_CIDR], start_agent=False)
    for stdin, expected in (('{"cniVersion": "1.1.0"}', "1.1.0"), ('{"cniVersion": "1.0.0"}', "1.0.0"), ("", None)):
        result = node.cni("VERSION", conf=stdin, ifname="")
        assert result.ok, result.stdout + result.stderr
        info = result.json
        assert {"1.0.0", "1.1.0"} <= set(info["supportedVersions"]), info
        assert info["cniVersion"] == (expected or info["cniVersion"])
        assert info["cniVersion"] in info["supportedVersions"]


def test_status_and_add_need_the_agent(lab):
    running = lab.add_node("node1", [V4_CIDR, V6_CIDR])
    status = running.cni("STATUS", conf=running.conf(), ifname="")
    assert status.ok and status.stdout.strip() == "", status.stdout + status.stderr

    idle = lab.add_node("node2", ["10.244.2.0/24", "fd00:10:244:2::/112"], start_agent=False)
    assert_cni_error(idle.cni("STATUS", conf=idle.conf(), ifname=""), 50)

    netns = lab.make_netns("node2-early")
    container_id = f"{lab.id}-early"
    added = idle.cni("ADD", container_id, netns, "eth0")
    assert_cni_error(added, 11)
    assert ipam_files(idle) == []
    assert host_links(idle) == []
    assert "eth0" not in run(["ip", "-n", netns, "-o", "link", "show"]).stdout

    # "Try again later" means it: once the agent is up, the same ADD works.
    idle.start_agent()
    assert idle.cni("STATUS", conf=idle.conf(), ifname="").ok
    pod = pod_from_add(idle, "early", idle.cni("ADD", container_id, netns, "eth0"), netns, container_id)
    other = idle.add_pod("other")
    assert ping_failures(other, pod.addresses()) == []
    for p in (pod, other):
        assert idle.delete_pod(p).ok
    assert_no_leaks(idle)


def test_add_with_an_existing_ifname_fails_and_leaks_nothing(lab, node):
    first = node.add_pod("first")
    peer = node.add_pod("peer")
    before = (sorted(ipam_files(node)), sorted(host_links(node)), link_pins(node), sorted(endpoints(node)))

    intruder_id = f"{lab.id}-intruder"
    result = node.cni("ADD", intruder_id, first.netns, first.ifname)
    assert_cni_error(result, 102)

    after = (sorted(ipam_files(node)), sorted(host_links(node)), link_pins(node), sorted(endpoints(node)))
    assert after == before, "the failed ADD left state behind or removed the existing pod's"
    # The existing pod is untouched and still works.
    assert ping_failures(peer, first.addresses()) == []
    assert node.cni("CHECK", first.container_id, first.netns, first.ifname, check_conf(node, first)).ok
    # The runtime cleans up the failed attachment with DEL; that must not touch the existing one.
    assert node.cni("DEL", intruder_id, first.netns, first.ifname).ok
    assert ping_failures(peer, first.addresses()) == []

    for pod in (first, peer):
        assert node.delete_pod(pod).ok
    assert_no_leaks(node)


def test_add_result_shape(lab, node):
    dns = {
        "nameservers": ["10.96.0.10", "fd00:10:96::a"],
        "domain": "cluster.local",
        "search": ["default.svc.cluster.local", "svc.cluster.local"],
        "options": ["ndots:5"],
    }
    netns = lab.make_netns("node1-shape")
    container_id = f"{lab.id}-shape"
    result = node.cni("ADD", container_id, netns, "eth0", node.conf(mtu=1400, dns=dns))
    pod = pod_from_add(node, "shape", result, netns, container_id)
    out = pod.result

    assert out["cniVersion"] == "1.1.0"
    interfaces = out["interfaces"]
    assert len(interfaces) == 2
    host, inside = interfaces
    assert host["name"].startswith("weir") and len(host["name"]) == 15 and "sandbox" not in host
    assert inside["name"] == "eth0" and inside["sandbox"] == f"/run/netns/{netns}"
    for interface in interfaces:
        assert interface["mac"].count(":") == 5 and interface["mtu"] == 1400

    assert len(out["ips"]) == 2
    for ip in out["ips"]:
        assert interfaces[ip["interface"]]["name"] == "eth0"
    v4 = [ip for ip in out["ips"] if ":" not in ip["address"]][0]
    v6 = [ip for ip in out["ips"] if ":" in ip["address"]][0]
    assert v4["address"].endswith("/32") and v4["gateway"] == "169.254.1.1"
    assert v6["address"].endswith("/128") and v6["gateway"] == "fe80::1"
    assert {(r["dst"], r.get("gw")) for r in out["routes"]} == {("0.0.0.0/0", "169.254.1.1"), ("::/0", "fe80::1")}
    assert out["dns"] == dns

    # The result describes what is really there.
    link = pod.exec(["ip", "-o", "link", "show", "eth0"]).stdout
    assert f"link/ether {inside['mac']}" in link and "mtu 1400" in link
    host_link = node.exec(["ip", "-o", "link", "show", host["name"]]).stdout
    assert f"link/ether {host['mac']}" in host_link and "mtu 1400" in host_link
    addrs = pod.exec(["ip", "-o", "addr", "show", "dev", "eth0"]).stdout
    assert v4["address"] in addrs and v6["address"] in addrs
    assert "default via 169.254.1.1" in pod.exec(["ip", "-4", "route"]).stdout
    assert "default via fe80::1" in pod.exec(["ip", "-6", "route"]).stdout

    # cniVersion 1.0.0 gets a 1.0.0 result (no interface "mtu", which 1.1.0 introduced).
    netns_old = lab.make_netns("node1-old")
    old = node.cni("ADD", f"{lab.id}-old", netns_old, "eth0", node.conf(cniVersion="1.0.0"))
    assert old.ok, old.stdout + old.stderr
    assert old.json["cniVersion"] == "1.0.0"
    assert all("mtu" not in i for i in old.json["interfaces"])
    assert node.cni("DEL", f"{lab.id}-old", netns_old, "eth0", node.conf(cniVersion="1.0.0")).ok

    assert node.delete_pod(pod).ok
    assert_no_leaks(node)


def test_check_reports_broken_attachments(lab, node):
    pod = node.add_pod("checked")
    assert node.cni("CHECK", pod.container_id, pod.netns, pod.ifname, check_conf(node, pod)).ok
    # CHECK without the ADD result to compare against is a config error.
    assert_cni_error(node.cni("CHECK", pod.container_id, pod.netns, pod.ifname), 7)
    # Someone removed the pod's IPv4 address: CHECK must notice.
    pod.exec(["ip", "addr", "del", f"{pod.ipv4}/32", "dev", "eth0"])
    broken = node.cni("CHECK", pod.container_id, pod.netns, pod.ifname, check_conf(node, pod))
    assert broken.code != 0 and broken.json.get("code", 0) > 0, broken.stdout + broken.stderr
    assert node.delete_pod(pod).ok
    # ... and after DEL there is nothing left to check.
    after = node.cni("CHECK", pod.container_id, pod.netns, pod.ifname, check_conf(node, pod))
    assert after.code != 0 and after.json.get("code", 0) > 0
    assert_no_leaks(node)


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_every_supported_version_adds_checks_and_deletes(lab, node, version):
    conf = node.conf(cniVersion=version)
    netns = lab.make_netns("node1-v")
    cid = f"{lab.id}-v"
    pod = pod_from_add(node, "v", node.cni("ADD", cid, netns, "eth0", conf), netns, cid)
    assert pod.result["cniVersion"] == version
    if version.startswith("0."):  # 0.x results carry "version" per IP
        assert sorted(ip["version"] for ip in pod.result["ips"]) == ["4", "6"]
    other = node.add_pod("other")
    assert ping_failures(other, pod.addresses()) == []
    if version != "0.3.0" and version != "0.3.1":  # CHECK exists since 0.4.0
        checked = node.cni("CHECK", cid, netns, "eth0", dict(conf, prevResult=pod.result))
        assert checked.ok, checked.stdout + checked.stderr
    for p in (pod, other):
        assert node.cni("DEL", p.container_id, p.netns, "eth0", conf).ok
    assert_no_leaks(node)


def test_repeated_add_of_a_live_attachment_keeps_it(lab, node):
    # A runtime that retries an ADD whose first attempt did succeed (e.g. after a timeout) gets
    # "interface exists" (102); the attachment that is there must survive that failure.
    pod = node.add_pod("live")
    peer = node.add_pod("peer")
    assert_cni_error(node.cni("ADD", pod.container_id, pod.netns, pod.ifname), 102)
    assert sorted(ipam_files(node)) == sorted(pod.addresses() + peer.addresses())
    assert host_ifname_of(pod) in host_links(node)
    assert ping_failures(peer, pod.addresses()) == []
