"""The cluster's networks, every piece inside namespaces made here (the machine's own namespace gets
no link, route, address or sysctl):

    fabric 192.168.77.0/24 (a bridge in wc-fab):
      wc-cp  eth0 .1      control plane (etcd, kube-apiserver, kcm, scheduler) and the outside client
      wc-n1  eth0 .11     node 1 (containerd, kubelet, weir)
      wc-n2  eth0 .12     node 2
      wc-gw  eth0 .254    the nodes' default gateway, towards the "internet"
    internet 203.0.113.0/24 (TEST-NET-3):
      wc-gw  eth1 .1      forwards between fabric and internet; no route to the pod CIDRs, so a pod
                          reaches the internet only when its node masquerades
      wc-inet eth0 .10    a host on the internet
"""

from __future__ import annotations

import subprocess

PREFIX = "wc-"
FABRIC = "192.168.77"
CP_IP = f"{FABRIC}.1"
GATEWAY_IP = f"{FABRIC}.254"
INTERNET = "203.0.113"
INTERNET_HOST_IP = f"{INTERNET}.10"
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"


def netns(name: str) -> str:
    return PREFIX + name


def node_name(index: int) -> str:
    return f"{PREFIX}n{index}"


def node_ip(index: int) -> str:
    return f"{FABRIC}.{10 + index}"


def sh(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run(argv, capture_output=True, text=True, input=input)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}")
    return res


def ip(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("ip", "-n", ns, *args, check=check)


def in_ns(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("nsenter", f"--net=/run/netns/{ns}", "--", *argv, check=check)


def existing() -> list[str]:
    out = sh("ip", "netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def _add_ns(name: str) -> None:
    sh("ip", "netns", "add", name)
    ip(name, "link", "set", "lo", "up")


def _attach(ns: str, port: str, ifname: str, address: str, bridge_ns: str) -> None:
    # The veth is made inside the fabric namespace with its peer put straight into `ns`: no
    # interface ever appears in the machine's own namespace.
    ip(bridge_ns, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns)
    ip(bridge_ns, "link", "set", port, "master", "br0", "up")
    ip(ns, "addr", "add", address, "dev", ifname)
    ip(ns, "link", "set", ifname, "up")


def create(nodes: int) -> None:
    fab, cp, gw, inet = netns("fab"), netns("cp"), netns("gw"), netns("inet")
    for name in (fab, cp, gw, inet, *(node_name(i) for i in range(1, nodes + 1))):
        _add_ns(name)
    ip(fab, "link", "add", "br0", "type", "bridge")
    ip(fab, "link", "set", "br0", "up")
    _attach(cp, "p-cp", "eth0", f"{CP_IP}/24", fab)
    _attach(gw, "p-gw", "eth0", f"{GATEWAY_IP}/24", fab)
    for i in range(1, nodes + 1):
        n = node_name(i)
        _attach(n, f"p-n{i}", "eth0", f"{node_ip(i)}/24", fab)
        ip(n, "route", "add", "default", "via", GATEWAY_IP)
    # The internet: a second bridge-less link from the gateway to one host.
    ip(gw, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", inet)
    ip(gw, "addr", "add", f"{INTERNET}.1/24", "dev", "eth1")
    ip(gw, "link", "set", "eth1", "up")
    ip(inet, "addr", "add", f"{INTERNET_HOST_IP}/24", "dev", "eth0")
    ip(inet, "link", "set", "eth0", "up")
    ip(inet, "route", "add", "default", "via", f"{INTERNET}.1")
    in_ns(gw, "sysctl", "-qw", "net.ipv4.ip_forward=1")  # the gateway namespace's own sysctl


def route_pod_cidrs(cidrs: dict[str, list[str]]) -> None:
    """The control plane is outside the nodes: it reaches pods (the kubernetes Service's replies,
    webhooks, the e2e client) through the node that owns their CIDR, as a router on a real
    network would. `cidrs`: node address -> that node's pod CIDRs."""
    for address, prefixes in cidrs.items():
        for prefix in prefixes:
            if ":" not in prefix:
                ip(netns("cp"), "route", "replace", prefix, "via", address)


def remove() -> None:
    for name in existing():
        sh("ip", "netns", "del", name, check=False)
