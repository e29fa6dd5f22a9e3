"""weir driven by real CNI clients and chained with real plugins: the CNI library's own client
(cnitool, reading a conflist), a chain weir -> portmap (Debian's containernetworking-plugins, which
consumes weir's result) with weir taking the bandwidth capability itself, and weir delegating IPAM to
Debian's host-local.

cnitool keeps libcni's result cache in /var/lib/cni with no way to move it, so every cnitool call runs
in a private mount namespace where the lab's own directory is mounted there; and it runs inside the
node's network namespace, so portmap's iptables rules and bandwidth's ifb device land in the node, never
in the machine's namespace.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from e2e.conftest import (
    V4_CIDR,
    assert_cni_error,
    assert_no_leaks,
    endpoints,
    host_ifname_of,
    host_links,
    ipam_files,
    netcheck,
    ping_failures,
    pod_from_add,
    start_servers,
)
from weirlab.lab import BUILD, DEBIAN_CNI_DIR, NETCHECK, TOOLS_DIR, Lab, Node, Pod, run

CNITOOL = TOOLS_DIR / "bin" / "cnitool"

# In a private mount namespace: hide /var/lib behind a tmpfs and mount the lab's cache directory as
# /var/lib/cni (the host has no /var/lib/cni to bind over, and must not get one), then enter the node.
_CNITOOL_WRAPPER = r"""
set -e
mount -t tmpfs weir-e2e /var/lib
mkdir -p /var/lib/cni
mount --bind "$1" /var/lib/cni
node_netns="$2"
shift 2
exec nsenter --net="$node_netns" -- "$@"
"""


def cnitool(
    lab: Lab,
    node: Node,
    confdir: Path,
    command: str,
    network: str,
    pod_netns: str,
    cap_args: dict | None = None,
    path: str | None = None,
    cni_path: str | None = None,
) -> subprocess.CompletedProcess:
    if not CNITOOL.exists():
        pytest.skip(f"{CNITOOL} missing (scripts/setup.sh builds it)")
    cache = lab.dir / "cnitool-cache"
    cache.mkdir(exist_ok=True)
    env = {
        "PATH": path or os.environ.get("PATH", "") + ":/usr/sbin:/sbin",
        "NETCONFPATH": str(confdir),
        "CNI_PATH": cni_path or f"{BUILD / 'cni'}:{DEBIAN_CNI_DIR}",
        "CNI_IFNAME": "eth0",
    }
    if cap_args is not None:
        env["CAP_ARGS"] = json.dumps(cap_args)
    cmd = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        _CNITOOL_WRAPPER,
        "cnitool-wrapper",
        str(cache),
        f"/run/netns/{node.netns}",
        str(CNITOOL),
        command,
        network,
        f"/run/netns/{pod_netns}",
    ]
    return subprocess.run(cmd, text=True, capture_output=True, env=env, timeout=60)


def cnitool_container_id(pod_netns: str) -> str:
    """cnitool's container id: derived from the netns path."""
    return "cnitool-" + hashlib.sha512(f"/run/netns/{pod_netns}".encode()).digest()[:10].hex()


def write_conflist(lab: Lab, name: str, version: str, plugins: list[dict]) -> Path:
    confdir = lab.dir / f"net.d-{name}"
    confdir.mkdir()
    (confdir / f"10-{name}.conflist").write_text(
        json.dumps({"cniVersion": version, "name": name, "plugins": plugins}, indent=2)
    )
    return confdir


def weir_plugin(node: Node, **overrides) -> dict:
    """weir's entry in a conflist: libcni injects the list's name and cniVersion."""
    return {k: v for k, v in node.conf(**overrides).items() if k not in ("cniVersion", "name")}


def cnitool_add(lab, node, confdir, network, name, cap_args=None, path=None) -> Pod:
    netns = lab.make_netns(f"node1-{name}")
    out = cnitool(lab, node, confdir, "add", network, netns, cap_args, path)
    assert out.returncode == 0, f"cnitool add {name}: {out.stdout}{out.stderr}"
    pod = Pod(name, netns, cnitool_container_id(netns), "eth0", json.loads(out.stdout))
    node.pods[name] = pod
    return pod


def test_cnitool_add_check_del(lab, node):
    network = "weirnet"
    host_cache_existed = Path("/var/lib/cni").exists()
    confdir = write_conflist(lab, network, "1.1.0", [weir_plugin(node)])
    pods = [cnitool_add(lab, node, confdir, network, f"ct{i}") for i in range(3)]
    assert len({a for p in pods for a in p.addresses()}) == 6
    assert sorted(ipam_files(node, network)) == sorted(a for p in pods for a in p.addresses())
    for pod in pods:
        assert [i["name"] for i in pod.result["interfaces"]][1] == "eth0"
        assert host_ifname_of(pod) in host_links(node)
    for src in pods:
        assert ping_failures(src, [a for p in pods if p is not src for a in p.addresses()]) == []

    status = cnitool(lab, node, confdir, "status", network, pods[0].netns)
    assert status.returncode == 0, status.stderr
    for pod in pods:
        checked = cnitool(lab, node, confdir, "check", network, pod.netns)
        assert checked.returncode == 0, f"cnitool check {pod.name}: {checked.stderr}"

    first = pods[0]
    for _ in range(2):
        deleted = cnitool(lab, node, confdir, "del", network, first.netns)
        assert deleted.returncode == 0, deleted.stderr
    assert not set(first.addresses()) & set(ipam_files(node, network))
    assert not set(first.addresses()) & set(endpoints(node))
    assert host_ifname_of(first) not in host_links(node)
    assert ping_failures(pods[1], pods[2].addresses()) == []

    # cnitool's GC names no valid attachments: libcni DELs every cached one, then weir's GC runs.
    collected = cnitool(lab, node, confdir, "gc", network, pods[1].netns)
    assert collected.returncode == 0, collected.stderr
    assert_no_leaks(node, network)
    assert list((lab.dir / "cnitool-cache").glob("results/*")) == []
    assert Path("/var/lib/cni").exists() == host_cache_existed, "cnitool wrote to the machine's /var/lib/cni"


def ipv4_only_path(lab: Lab) -> str:
    """A PATH with iptables but without ip6tables: portmap 1.1.1's CHECK looks for its IPv4 rules in
    ip6tables as well whenever ip6tables is usable, and so fails for every pod ("could not check ipv6
    dnat"; later releases skip a family without the chain). Without ip6tables it checks IPv4 only,
    which works for an IPv4-only pod."""
    bin_dir = lab.dir / "ipv4-only-bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("iptables", "iptables-save", "iptables-restore"):
        (bin_dir / tool).symlink_to(shutil.which(tool, path="/usr/sbin:/sbin"))
    return f"{bin_dir}:/usr/bin:/bin"


def test_chain_weir_portmap_with_bandwidth_capability(lab, node):
    network = "weirchain"
    # IPv4 only, for portmap's CHECK (see ipv4_only_path).
    path = ipv4_only_path(lab)
    plugins = [
        weir_plugin(node, podCIDRs=[V4_CIDR], capabilities={"bandwidth": True}),
        {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
    ]
    confdir = write_conflist(lab, network, "1.0.0", plugins)
    cap_args = {
        "portMappings": [{"hostPort": 18080, "containerPort": 8080, "protocol": "tcp"}],
        "bandwidth": {
            "ingressRate": 200_000_000,
            "ingressBurst": 2_000_000,
            "egressRate": 100_000_000,
            "egressBurst": 1_000_000,
        },
    }
    web = cnitool_add(lab, node, confdir, network, "web", cap_args, path)
    client = cnitool_add(lab, node, confdir, network, "client", path=path)
    host_if = host_ifname_of(web)

    # The chain's final result is still weir's (portmap passes it through).
    assert web.result["cniVersion"] == "1.0.0"
    assert len(web.addresses(4)) == 1 and web.addresses(6) == []
    assert ping_failures(client, web.addresses()) == []

    # portmap: its DNAT rules are in the node's namespace and they work: a connection to the node's
    # own address on the host port reaches the pod's server.
    nat = node.exec(["iptables", "-t", "nat", "-S"]).stdout
    assert web.container_id in nat and "18080" in nat, nat
    node.exec(["ip", "addr", "add", "10.255.255.1/32", "dev", "lo"])
    start_servers(lab, [web])
    reply = json.loads(node.exec(["python3", str(NETCHECK), "tcp", "18080", "10.255.255.1"]).stdout)
    assert reply["10.255.255.1"] == "ping from 10.255.255.1", reply
    assert netcheck(client, "tcp", [web.ipv4]) == {web.ipv4: f"ping from {client.ipv4}"}

    # The bandwidth capability reached weir through libcni: a tbf on the host end (traffic into the
    # pod) and one on the pod end (out of it); e2e/test_bandwidth.py measures them.
    assert "rate 200Mbit" in node.exec(["tc", "qdisc", "show", "dev", host_if]).stdout
    assert "rate 100Mbit" in web.exec(["tc", "qdisc", "show", "dev", "eth0"]).stdout

    for pod, pod_cap_args in ((web, cap_args), (client, None)):  # as the runtime passed them to ADD
        checked = cnitool(lab, node, confdir, "check", network, pod.netns, pod_cap_args, path)
        assert checked.returncode == 0, f"cnitool check {pod.name}: {checked.stderr}"
        deleted = cnitool(lab, node, confdir, "del", network, pod.netns, pod_cap_args, path)
        assert deleted.returncode == 0, f"cnitool del {pod.name}: {deleted.stderr}"

    assert web.container_id not in node.exec(["iptables", "-t", "nat", "-S"]).stdout
    assert_no_leaks(node, network)
    # Nothing of it reached the machine's own namespace.
    root_links = run(["ip", "-o", "link", "show"]).stdout
    assert host_if not in root_links and host_ifname_of(client) not in root_links


def delegated_conf(lab: Lab, node: Node, version: str = "1.0.0") -> dict:
    conf = node.conf(
        cniVersion=version,
        ipam={"type": "host-local", "ranges": [[{"subnet": "10.77.0.0/24"}]], "dataDir": str(lab.dir / "host-local")},
    )
    del conf["podCIDRs"]
    return conf


def test_delegated_ipam_host_local(lab, node):
    conf = delegated_conf(lab, node)
    pods = []
    for i in range(2):
        netns = lab.make_netns(f"node1-hl{i}")
        cid = f"{lab.id}-hl{i}"
        pods.append(pod_from_add(node, f"hl{i}", node.cni("ADD", cid, netns, "eth0", conf), netns, cid))
    store = lab.dir / "host-local" / "weir"
    for pod in pods:
        assert pod.addresses(6) == []
        assert ipaddress.ip_address(pod.ipv4) in ipaddress.ip_network("10.77.0.0/24")
        assert pod.result["ips"][0]["address"] == f"{pod.ipv4}/32"
        assert (store / pod.ipv4).read_text().startswith(pod.container_id)
    assert ipam_files(node) == []  # weir's own store is not used
    assert sorted(endpoints(node)) == sorted(p.ipv4 for p in pods)
    assert ping_failures(pods[0], [pods[1].ipv4]) == [] and ping_failures(pods[1], [pods[0].ipv4]) == []

    for pod in pods:
        conf_check = dict(conf, prevResult=pod.result)
        checked = node.cni("CHECK", pod.container_id, pod.netns, "eth0", conf_check)
        assert checked.ok, checked.stdout + checked.stderr
        for _ in range(2):
            deleted = node.cni("DEL", pod.container_id, pod.netns, "eth0", conf)
            assert deleted.ok, deleted.stdout + deleted.stderr
        assert not (store / pod.ipv4).exists()
    assert_no_leaks(node)


def test_delegated_ipam_failure_leaks_nothing(lab, node):
    # A range host-local cannot use: its error comes back through weir with host-local's code, and
    # weir wires nothing.
    conf = delegated_conf(lab, node)
    conf["ipam"]["ranges"] = [[{"subnet": "10.77.0.0/32"}]]
    netns = lab.make_netns("node1-bad")
    result = node.cni("ADD", f"{lab.id}-bad", netns, "eth0", conf)
    error = json.loads(result.stdout)
    assert result.code != 0 and error["code"] > 0, result.stdout + result.stderr
    assert "host-local" in error["msg"]
    assert_no_leaks(node)
    assert not list((lab.dir / "host-local").glob("weir/10.*"))


def test_delegated_ipam_version_mismatch_is_passed_through(lab, node):
    # Debian 12's host-local speaks up to CNI 1.0.0: with a 1.1.0 config its "incompatible version"
    # error must come back through weir unchanged, with nothing wired or held.
    version = json.loads(
        subprocess.run(
            [str(DEBIAN_CNI_DIR / "host-local")],
            input="",
            text=True,
            capture_output=True,
            env={"CNI_COMMAND": "VERSION"},
        ).stdout
    )
    if "1.1.0" in version["supportedVersions"]:
        pytest.skip("this host-local supports CNI 1.1.0")
    netns = lab.make_netns("node1-new")
    result = node.cni("ADD", f"{lab.id}-new", netns, "eth0", delegated_conf(lab, node, "1.1.0"))
    error = assert_cni_error(result, 1)
    assert "host-local" in error["msg"]
    assert_no_leaks(node)
    assert not list((lab.dir / "host-local").glob("weir/10.*"))
