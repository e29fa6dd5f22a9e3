"""What a runtime gets for bad input: a non-zero exit, a CNI error object with the right code on
stdout, and no state left behind (no addresses held, no links, no pins, no endpoints)."""

from __future__ import annotations

import json

import pytest

from e2e.conftest import (
    assert_cni_error,
    assert_no_leaks,
    cni_raw,
    endpoints,
    host_links,
    ipam_files,
    link_pins,
    pod_from_add,
)
from weirlab.lab import in_netns, run


def add_env(container_id: str, netns: str, ifname: str = "eth0") -> dict[str, str]:
    return {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": f"/run/netns/{netns}",
        "CNI_IFNAME": ifname,
        "CNI_PATH": "/usr/lib/cni",
    }


def assert_pod_untouched(netns: str) -> None:
    """The failed ADD left no interface in the pod's namespace."""
    assert "eth0" not in run(in_netns(netns, ["ip", "-o", "link", "show"])).stdout


@pytest.mark.parametrize(
    "stdin", ['{"cniVersion": "1.1.0", "name": ', "not json at all", '["an", "array"]', '{"cniVersion": 1.1}']
)
def test_malformed_config_is_a_decode_failure(lab, node, stdin):
    netns = lab.make_netns("node1-pod")
    result = cni_raw(node, add_env(f"{lab.id}-pod", netns), stdin)
    assert_cni_error(result, 6)
    assert_pod_untouched(netns)
    assert_no_leaks(node)


@pytest.mark.parametrize("version", ["9.9.9", "0.2.0", "0.1.0", "1.1", "2.0.0", ""])
def test_unsupported_cni_version(lab, node, version):
    netns = lab.make_netns("node1-pod")
    conf = node.conf(cniVersion=version) if version else {k: v for k, v in node.conf().items() if k != "cniVersion"}
    result = node.cni("ADD", f"{lab.id}-pod", netns, "eth0", conf)
    error = assert_cni_error(result, 1)
    assert error["cniVersion"] in ("1.0.0", "1.1.0")
    assert_pod_untouched(netns)
    assert_no_leaks(node)


def test_missing_environment(lab, node):
    netns = lab.make_netns("node1-pod")
    conf = json.dumps(node.conf())
    full = add_env(f"{lab.id}-pod", netns)

    no_command = {k: v for k, v in full.items() if k != "CNI_COMMAND"}
    assert_cni_error(cni_raw(node, no_command, conf), 4)
    for missing in ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"):
        env = {k: v for k, v in full.items() if k != missing}
        error = assert_cni_error(cni_raw(node, env, conf), 4)
        assert missing in error["msg"]
    assert_cni_error(cni_raw(node, {**full, "CNI_COMMAND": "FROBNICATE"}, conf), 4)
    assert_cni_error(cni_raw(node, {**full, "CNI_CONTAINERID": "-bad/id"}, conf), 4)
    assert_cni_error(cni_raw(node, {**full, "CNI_IFNAME": "name-longer-than-15"}, conf), 4)
    assert_cni_error(cni_raw(node, {**full, "CNI_ARGS": "NOT_A_PAIR"}, conf), 4)
    # DEL needs a container id too.
    del_env = {**full, "CNI_COMMAND": "DEL"}
    del del_env["CNI_CONTAINERID"]
    assert_cni_error(cni_raw(node, del_env, conf), 4)

    assert_pod_untouched(netns)
    assert_no_leaks(node)


@pytest.mark.parametrize("kind", ["missing", "not-a-netns"])
def test_bogus_netns_path(lab, node, kind):
    if kind == "missing":
        path = f"/run/netns/{lab.id}-does-not-exist"
    else:
        path = str(lab.dir / "not-a-netns")
        (lab.dir / "not-a-netns").write_text("")
    result = node.cni("ADD", f"{lab.id}-pod", path, "eth0")
    error = assert_cni_error(result, 4)
    assert "CNI_NETNS" in error["msg"]
    assert_no_leaks(node)


def test_exhausted_ipv4_range(lab, node):
    # A /30 has 4 addresses: the allocator skips the network and broadcast address (and, unlike
    # host-local, reserves no gateway), so 2 pods fit.
    conf = node.conf(podCIDRs=["10.99.0.0/30"])
    pods = []
    for i in range(2):
        netns = lab.make_netns(f"node1-p{i}")
        cid = f"{lab.id}-p{i}"
        pods.append(pod_from_add(node, f"p{i}", node.cni("ADD", cid, netns, "eth0", conf), netns, cid))
    assert sorted(p.ipv4 for p in pods) == ["10.99.0.1", "10.99.0.2"]
    assert all(p.addresses(6) == [] for p in pods)
    before = (ipam_files(node), sorted(host_links(node)), link_pins(node), sorted(endpoints(node)))

    netns = lab.make_netns("node1-p2")
    error = assert_cni_error(node.cni("ADD", f"{lab.id}-p2", netns, "eth0", conf), 101)
    assert "10.99.0.0/30" in error["msg"]
    assert (ipam_files(node), sorted(host_links(node)), link_pins(node), sorted(endpoints(node))) == before
    assert_pod_untouched(netns)

    # Freeing one address makes room again.
    assert node.cni("DEL", pods[0].container_id, pods[0].netns, "eth0", conf).ok
    third = pod_from_add(node, "p2", node.cni("ADD", f"{lab.id}-p2", netns, "eth0", conf), netns, f"{lab.id}-p2")
    assert third.ipv4 == pods[0].ipv4
    for pod in (pods[1], third):
        assert node.cni("DEL", pod.container_id, pod.netns, "eth0", conf).ok
    assert_no_leaks(node)


def test_exhausted_ipv6_range_releases_the_ipv4_address(lab, node):
    # /127: one usable IPv6 address (the allocator skips the network address). The second ADD gets
    # an IPv4 address and then fails on IPv6; the IPv4 reservation must be rolled back.
    conf = node.conf(podCIDRs=["10.98.0.0/24", "fd00:98::/127"])
    first_ns = lab.make_netns("node1-q0")
    first = pod_from_add(node, "q0", node.cni("ADD", f"{lab.id}-q0", first_ns, "eth0", conf), first_ns, f"{lab.id}-q0")
    assert first.ipv6 == "fd00:98::1"
    netns = lab.make_netns("node1-q1")
    assert_cni_error(node.cni("ADD", f"{lab.id}-q1", netns, "eth0", conf), 101)
    assert sorted(ipam_files(node)) == sorted(first.addresses())
    assert sorted(endpoints(node)) == sorted(first.addresses())
    assert host_links(node) == [first.result["interfaces"][0]["name"]]
    assert_pod_untouched(netns)
    assert node.cni("DEL", first.container_id, first.netns, "eth0", conf).ok
    assert_no_leaks(node)


@pytest.mark.parametrize(
    "overrides",
    [
        {"podCIDRs": ["10.0.0.0/33"]},
        {"podCIDRs": ["banana"]},
        {"podCIDRs": ["10.244.1.7/24"]},  # host bits set
        {"podCIDRs": ["10.0.0.0/24", "10.1.0.0/24"]},  # two IPv4 ranges
        {"podCIDRs": ["10.0.0.0/31"]},  # too small for any pod
        {"podCIDRs": []},  # no IPAM at all
        {"name": ""},
        {"name": "../escape"},
        {"type": ""},
        {"mtu": 100},
        {"bpfRoot": "relative/path"},
        {"ipam": {"type": "host-local"}},  # both built-in and delegated IPAM
        {"logLevel": "chatty"},
    ],
    ids=lambda o: json.dumps(o),
)
def test_invalid_network_config(lab, node, overrides):
    netns = lab.make_netns("node1-pod")
    result = node.cni("ADD", f"{lab.id}-pod", netns, "eth0", node.conf(**overrides))
    assert_cni_error(result, 7)
    assert_pod_untouched(netns)
    assert_no_leaks(node)
    assert not (node.data_dir / "..").resolve().joinpath("escape").exists()


def test_wrong_json_types_are_decode_failures(lab, node):
    netns = lab.make_netns("node1-pod")
    for overrides in ({"mtu": "1500"}, {"podCIDRs": "10.0.0.0/24"}, {"dns": "8.8.8.8"}):
        result = node.cni("ADD", f"{lab.id}-pod", netns, "eth0", node.conf(**overrides))
        assert_cni_error(result, 6)
    assert_pod_untouched(netns)
    assert_no_leaks(node)
