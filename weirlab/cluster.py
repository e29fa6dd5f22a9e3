"""A lab cluster for Services: nodes joined by a fabric (a bridge in a namespace of its own), an
outside client on the same fabric, weir-agent on every node in standalone mode reading one
manifest directory (or, with `kubeconfig=`, watching a kube-apiserver that runs in a lab namespace
on the fabric, see add_client), pods wired by the weir CNI plugin, and EndpointSlices written from them.

    fabric 192.168.50.0/24:  node<i> uplink0 = 192.168.50.<i>,  client = 192.168.50.100
    fabric fd00:50::/64:     node<i> uplink0 = fd00:50::<i>,    client = fd00:50::100
    pods: node<i> gets 10.244.<i>.0/24 and fd00:10:244:<i>::/112
    internet (add_internet): a router on the fabric (192.168.50.254, fd00:50::254) in front of
    203.0.113.0/24 and 2001:db8:113::/64, with no route back to the pods; the nodes' default route
    points at it
    socket LB: each node's agent hooks a cgroup the lab made; lab processes that should be
    load-balanced at the socket run inside it (Cluster.run_in_node_cgroup)

In standalone mode the manifest directory holds a Node object per node (pod CIDRs and addresses), as
a cluster's API would: the agents route to each other's pods and know what is inside the cluster
(egress masquerade leaves that traffic alone).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from weirlab.lab import BUILD, NETCHECK, WEIR_AGENT, Lab, Node, Pod, in_netns, run

FABRIC_PREFIX = "192.168.50"
CLIENT_IP = f"{FABRIC_PREFIX}.100"
FABRIC6_PREFIX = "fd00:50::"
CLIENT_IP6 = f"{FABRIC6_PREFIX}100"
ROUTER_IP, ROUTER_IP6 = f"{FABRIC_PREFIX}.254", f"{FABRIC6_PREFIX}254"
INTERNET_SERVER_IP, INTERNET_SERVER_IP6 = "203.0.113.80", "2001:db8:113::80"
# The lab's pods, for the agents of a lab without Node objects (the API-server lab): in-cluster.
LAB_POD_SUPERNETS = "10.244.0.0/16,fd00:10:244::/48"
CGROUP2_ROOT = Path("/sys/fs/cgroup/unified")
LAB_XDP_PASS = BUILD / "bpf" / "lab_xdp_pass.bpf.o"
UPLINK_MTU = 9000  # room for DSR's IPIP (IPv6: IPv6-in-IPv6, 40 bytes) header on full-size pod packets


def node_ip(index: int) -> str:
    return f"{FABRIC_PREFIX}.{index}"


def node_ip6(index: int) -> str:
    return f"{FABRIC6_PREFIX}{index}"


class Cluster:
    def __init__(
        self,
        lab: Lab,
        nodes: int = 2,
        lb_modes: list[str] | None = None,
        agent_args: list[str] = (),
        kubeconfig: str | Path | None = None,
        start_agents: bool = True,
        device_mode: str | None = None,
        agent_binary: Path = WEIR_AGENT,
    ):
        """`agent_args`: extra weir-agent flags for every node (e.g. --config=FILE).

        `kubeconfig`: the agents watch the API server it names (--kubeconfig) instead of the manifest
        directory (--manifests). `start_agents=False`: the nodes are wired but their agents wait for
        start_agents(), e.g. until a control plane on the fabric (add_client) is up. `device_mode`:
        the plugin's "deviceMode" for every node's pods (None: the plugin's default, veth).
        `agent_binary`: the nodes' weir-agent (another build's: set node.agent_binary before
        restart_agent to upgrade)."""
        self.lab = lab
        self.manifests = lab.dir / "manifests"
        self.manifests.mkdir()
        self.cgroups: list[Path] = []
        self.fabric = lab.make_netns("fabric")
        run(in_netns(self.fabric, ["ip", "link", "add", "br0", "type", "bridge"]))
        run(in_netns(self.fabric, ["ip", "link", "set", "br0", "up"]))
        self.client = lab.make_netns("client")
        self._connect(self.client, "eth0", CLIENT_IP, "c", CLIENT_IP6)
        self.nodes: list[Node] = []
        self.agent_args: dict[str, list[str]] = {}  # node name -> the flags its agent was started with
        lb_modes = lb_modes or ["snat"] * nodes
        for i in range(1, nodes + 1):
            node = lab.add_node(
                f"node{i}",
                [f"10.244.{i}.0/24", f"fd00:10:244:{i}::/112"],
                start_agent=False,
                device_mode=device_mode,
                agent_binary=agent_binary,
            )
            self._connect(node.netns, "uplink0", node_ip(i), f"n{i}", node_ip6(i))
            self.nodes.append(node)
        if kubeconfig:
            # No Node objects in that API server: the lab routes between the nodes itself.
            for i, node in enumerate(self.nodes, start=1):
                for j in range(1, len(self.nodes) + 1):
                    if i != j:
                        node.exec(["ip", "route", "add", f"10.244.{j}.0/24", "via", node_ip(j)])
                        node.exec(["ip", "-6", "route", "add", f"fd00:10:244:{j}::/112", "via", node_ip6(j)])
        else:
            self.apply(
                "nodes",
                "---\n".join(
                    node_yaml(f"node{i}", node.pod_cidrs, [node_ip(i), node_ip6(i)])
                    for i, node in enumerate(self.nodes, start=1)
                ),
            )
        for i, node in enumerate(self.nodes, start=1):
            cgroup = CGROUP2_ROOT / f"weir-{lab.id}-node{i}"
            cgroup.mkdir()
            self.cgroups.append(cgroup)
            source = f"--kubeconfig={kubeconfig}" if kubeconfig else f"--manifests={self.manifests}"
            self.agent_args[node.name] = [
                source,
                f"--node_name=node{i}",
                f"--node_addresses={node_ip(i)},{node_ip6(i)}",
                "--uplinks=uplink0",
                f"--cgroup={cgroup}",
                f"--lb_mode={lb_modes[i - 1]}",
                "--health_port=0",
                *([f"--non_masquerade_cidrs={LAB_POD_SUPERNETS}"] if kubeconfig else []),
                *agent_args,
            ]
        lab.cleanups.append(self._remove_cgroups)
        if start_agents:
            self.start_agents()

    def start_agents(self) -> None:
        """Starts the agent of every node that has none running, with its flags (agent_args)."""
        for node in self.nodes:
            if node.agent is None or node.agent.poll() is not None:
                node.start_agent(*self.agent_args[node.name])

    def add_client(self, role: str, address: str, address6: str | None = None) -> str:
        """Another outside client on the fabric (e.g. "client2", "192.168.50.101"): its namespace."""
        netns = self.lab.make_netns(role)
        self._connect(netns, "eth0", address, role[-4:], address6)
        return netns

    def add_internet(self) -> str:
        """A router on the fabric in front of an "internet" namespace (INTERNET_SERVER_IP/6); every
        node's default route points at the router, which has no route to the pods: a pod's traffic
        to the internet is answered only when it leaves with its node's address. Returns the
        internet namespace."""
        router = self.lab.make_netns("router")
        internet = self.lab.make_netns("internet")
        self._connect(router, "eth0", ROUTER_IP, "rtr", ROUTER_IP6)
        for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
            run(in_netns(router, ["sysctl", "-qw", f"{key}=1"]))
        run(
            in_netns(
                router,
                [
                    "ip",
                    "link",
                    "add",
                    "eth1",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    f"/run/netns/{internet}",
                ],
            )
        )
        for netns, ifname, v4, v6 in (
            (router, "eth1", "203.0.113.1", "2001:db8:113::1"),
            (internet, "eth0", INTERNET_SERVER_IP, INTERNET_SERVER_IP6),
        ):
            run(in_netns(netns, ["sysctl", "-qw", f"net.ipv6.conf.{ifname}.accept_dad=0"]))
            run(in_netns(netns, ["ip", "addr", "add", f"{v4}/24", "dev", ifname]))
            run(in_netns(netns, ["ip", "addr", "add", f"{v6}/64", "dev", ifname, "nodad"]))
            run(in_netns(netns, ["ip", "link", "set", ifname, "up"]))
        run(in_netns(internet, ["ip", "route", "add", "default", "via", "203.0.113.1"]))
        run(in_netns(internet, ["ip", "-6", "route", "add", "default", "via", "2001:db8:113::1"]))
        for node in self.nodes:
            node.exec(["ip", "route", "add", "default", "via", ROUTER_IP])
            node.exec(["ip", "-6", "route", "add", "default", "via", ROUTER_IP6])
        return internet

    def prepare_for_xdp(self, nodes: list[Node] | None = None) -> None:
        """Makes the fabric's veths behave as NICs do for the XDP programs of `nodes` (default: every
        node): the senders towards them (the client, and their uplink0 for each other) compute their
        L4 checksums themselves (a veth passes a local sender's half-done checksum on, which XDP
        cannot tell from a full one and would rewrite wrongly; a NIC never hands XDP such a packet),
        and the fabric's port of each runs an XDP_PASS program (bpf/lab_xdp_pass.bpf.c): a veth wakes
        its peer for frames sent with XDP_TX only when the peer has an XDP program of its own."""
        nodes = self.nodes if nodes is None else nodes
        senders = [(self.client, "eth0")] + [(node.netns, "uplink0") for node in self.nodes]
        for netns, ifname in senders:
            run(in_netns(netns, ["ethtool", "-K", ifname, "tx", "off"]))
        for node in nodes:
            port = f"{self.lab.id}n{self.nodes.index(node) + 1}"[-15:]
            run(
                in_netns(
                    self.fabric,
                    ["ip", "link", "set", "dev", port, "xdpdrv", "object", str(LAB_XDP_PASS), "section", "xdp.frags"],
                )
            )

    def _connect(self, netns: str, ifname: str, address: str, tag: str, address6: str | None = None) -> None:
        peer = f"{self.lab.id}{tag}"[-15:]
        run(
            in_netns(
                netns,
                [
                    "ip",
                    "link",
                    "add",
                    ifname,
                    "mtu",
                    str(UPLINK_MTU),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    peer,
                    "mtu",
                    str(UPLINK_MTU),
                    "netns",
                    f"/run/netns/{self.fabric}",
                ],
            )
        )
        run(in_netns(netns, ["ip", "addr", "add", f"{address}/24", "dev", ifname]))
        if address6:
            # No duplicate address detection, for the link-local address too: until it is done (a
            # second or two) the address is tentative and neighbour solicitations that need it (e.g.
            # for a DSR reply whose source is another node's address) are not sent.
            run(in_netns(netns, ["sysctl", "-qw", f"net.ipv6.conf.{ifname}.accept_dad=0"]))
            run(in_netns(netns, ["ip", "addr", "add", f"{address6}/64", "dev", ifname, "nodad"]))
        run(in_netns(netns, ["ip", "link", "set", ifname, "up"]))
        run(in_netns(self.fabric, ["ip", "link", "set", peer, "master", "br0", "up"]))

    def _remove_cgroups(self) -> None:
        """Kills whatever is left in each node's cgroup (cgroup.kill takes processes forking meanwhile
        too), waits for it to empty and removes it; one that stays is an error, not a silent leak."""
        stuck = []
        for cgroup in self.cgroups:
            if not cgroup.exists():
                continue
            (cgroup / "cgroup.kill").write_text("1")
            deadline = time.monotonic() + 10
            while True:
                try:
                    cgroup.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        stuck.append(str(cgroup))
                        break
                    time.sleep(0.05)
        if stuck:
            raise RuntimeError(f"cgroups still busy after 10 s, left behind: {stuck}")

    def node_cgroup_cmd(self, node: Node, netns: str, cmd: list[str]) -> list[str]:
        """A command line run inside `netns` and inside `node`'s socket-LB cgroup."""
        cgroup = self.cgroups[self.nodes.index(node)]
        inner = " ".join(subprocess.list2cmdline([c]) for c in in_netns(netns, cmd))
        return ["sh", "-c", f"echo $$ > {cgroup}/cgroup.procs && exec {inner}"]

    def restart_agent(self, node: Node) -> None:
        """Stops `node`'s agent (SIGTERM) and starts it again with the same flags."""
        node.stop_agent()
        node.start_agent(*self.agent_args[node.name])

    def serve(self, pod: Pod, port: int = 8080) -> subprocess.Popen:
        """An echo server in `pod` that names itself in every reply; returns once it listens."""
        proc = self.lab.spawn(
            in_netns(pod.netns, ["python3", str(NETCHECK), "serve", str(port), pod.name]),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"echo server in {pod.name} did not start")
        return proc

    def request(self, netns: str, proto: str, target: str, port: int, node: Node | None = None) -> str:
        """One request from `netns` (inside `node`'s socket-LB cgroup when given); the reply text."""
        cmd = ["python3", str(NETCHECK), proto, str(port), target]
        argv = self.node_cgroup_cmd(node, netns, cmd) if node else in_netns(netns, cmd)
        out = run(argv, check=False)
        return json.loads(out.stdout)[target] if out.stdout.strip() else f"error: {out.stderr.strip()}"

    def requests(
        self,
        netns: str,
        proto: str,
        target: str,
        port: int,
        count: int = 1,
        interval: float = 0.0,
        node: Node | None = None,
        source_port: int = 0,
        timeout: float = 120,
    ) -> list[dict]:
        """`count` requests from one process (netcheck peer): each {reply, peer, local, elapsed} or
        {error, errno, step, local, elapsed}; proto is tcp, udp (unconnected) or udp-connected."""
        cmd = ["python3", str(NETCHECK), "peer", proto, str(port), target, str(count), str(interval), str(source_port)]
        argv = self.node_cgroup_cmd(node, netns, cmd) if node else in_netns(netns, cmd)
        return json.loads(run(argv, timeout=timeout).stdout)

    def hold(
        self, netns: str, target: str, port: int, node: Node | None = None, source_port: int = 0
    ) -> "HeldConnections":
        """Long-lived TCP connections from `netns` (inside `node`'s socket-LB cgroup when given)."""
        cmd = ["python3", str(NETCHECK), "hold", str(port), target, str(source_port)]
        argv = self.node_cgroup_cmd(node, netns, cmd) if node else in_netns(netns, cmd)
        return HeldConnections(self.lab.spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))

    def apply(self, name: str, text: str) -> None:
        """Writes a manifest file; agents follow the directory."""
        tmp = self.manifests / f".{name}.tmp"
        tmp.write_text(text)
        tmp.rename(self.manifests / f"{name}.yaml")

    def delete(self, name: str) -> None:
        (self.manifests / f"{name}.yaml").unlink(missing_ok=True)

    def wait_for_frontend(
        self, address_port: str, timeout: float = 5.0, backends: int | None = None, nodes: list[Node] | None = None
    ) -> None:
        """Until every node's (or each of `nodes`') datapath serves `address_port` (e.g. "10.96.0.10:80")."""
        deadline = time.monotonic() + timeout
        for node in nodes or self.nodes:
            while True:
                listing = node.weirctl("services")
                lines = [line for line in listing.splitlines() if line.startswith(address_port + "/")]
                if lines and (backends is None or f"backends={backends}" in lines[0]):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{node.name} does not serve {address_port}:\n{listing}")
                time.sleep(0.05)


class HeldConnections:
    """A netcheck `hold` client: open() more connections, ping() every open one."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    def _command(self, line: str):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"hold client ended (exit {self.proc.poll()})")
        return json.loads(answer)

    def open(self, count: int = 1) -> list[dict]:
        """[{id, reply, peer} or {id, error}] for each new connection."""
        return self._command(f"open {count}")

    def ping(self) -> dict[int, str]:
        """{id: reply line or "error: ..."} for every connection opened so far."""
        return {int(k): v for k, v in self._command("ping").items()}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(5)


def node_yaml(name: str, pod_cidrs: list[str], addresses: list[str]) -> str:
    """A Node manifest with its pod CIDRs and InternalIP addresses."""
    lines = [
        "apiVersion: v1",
        "kind: Node",
        "metadata:",
        f"  name: {name}",
        "spec:",
        f"  podCIDR: {pod_cidrs[0]}",
        f"  podCIDRs: [{', '.join(pod_cidrs)}]",
        "status:",
        "  addresses:",
    ]
    lines += [f'  - type: InternalIP\n    address: "{address}"' for address in addresses]
    return "\n".join(lines) + "\n"


def service_yaml(
    name: str,
    ports: list[tuple[str, int, int, str]],
    *,
    cluster_ip: str,
    type_: str = "ClusterIP",
    node_port: int | None = None,
    lb_ips: list[str] = (),
    external_ips: list[str] = (),
    etp: str = "Cluster",
    affinity: bool = False,
    namespace: str = "default",
    health_check_node_port: int | None = None,
) -> str:
    """A Service manifest; ports are (name, port, targetPort, protocol)."""
    lines = [
        "apiVersion: v1",
        "kind: Service",
        "metadata:",
        f"  name: {name}",
        f"  namespace: {namespace}",
        "spec:",
        f"  type: {type_}",
        f"  clusterIP: {cluster_ip}",
        f"  clusterIPs: [{cluster_ip}]",
        "  ports:",
    ]
    for port_name, port, target, proto in ports:
        lines += [f"  - name: {port_name}", f"    port: {port}", f"    targetPort: {target}", f"    protocol: {proto}"]
        if node_port:
            lines.append(f"    nodePort: {node_port}")
    if external_ips:
        lines.append(f"  externalIPs: [{', '.join(external_ips)}]")
    if type_ in ("NodePort", "LoadBalancer"):
        lines.append(f"  externalTrafficPolicy: {etp}")
    if health_check_node_port:
        lines.append(f"  healthCheckNodePort: {health_check_node_port}")
    if affinity:
        lines += [
            "  sessionAffinity: ClientIP",
            "  sessionAffinityConfig:",
            "    clientIP:",
            "      timeoutSeconds: 300",
        ]
    if lb_ips:
        lines += ["status:", "  loadBalancer:", "    ingress:"] + [f"    - ip: {ip}" for ip in lb_ips]
    return "\n".join(lines) + "\n"


def endpoint_slice_yaml(
    service: str,
    pods: list[tuple[Pod, str]],
    ports: list[tuple[str, int, str]],
    namespace: str = "default",
    family: int = 4,
    ready: bool = True,
    terminating: bool = False,
) -> str:
    """An EndpointSlice for `service`: pods are (pod, node name); ports are (name, port, protocol)."""
    lines = [
        "apiVersion: discovery.k8s.io/v1",
        "kind: EndpointSlice",
        "metadata:",
        f"  name: {service}-{'v4' if family == 4 else 'v6'}",
        f"  namespace: {namespace}",
        "  labels:",
        f"    kubernetes.io/service-name: {service}",
        f"addressType: {'IPv4' if family == 4 else 'IPv6'}",
        "endpoints:",
    ]
    for pod, node_name in pods:
        address = pod.ipv4 if family == 4 else pod.ipv6
        lines += [
            f'- addresses: ["{address}"]',
            f"  nodeName: {node_name}",
            "  conditions:",
            f"    ready: {str(ready).lower()}",
            "    serving: true",
            f"    terminating: {str(terminating).lower()}",
        ]
    lines.append("ports:")
    for port_name, port, proto in ports:
        lines += [f"- name: {port_name}", f"  port: {port}", f"  protocol: {proto}"]
    return "\n".join(lines) + "\n"
