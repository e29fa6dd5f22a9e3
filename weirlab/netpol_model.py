"""NetworkPolicy truth tables, after the upstream `Netpol` e2e model: namespaces x, y, z with pods a, b, c,
each serving TCP and UDP on ports 80 and 81, probed every pod -> every pod.

This module is pure (no namespaces, no processes): the objects of a lab cluster (namespaces, pods,
policies), their manifests, a model of networking.k8s.io/v1 semantics that says which probe a
conforming datapath lets through, and the truth tables printed when what was observed differs.
weirlab/netpol_lab.py runs it against weir.

The semantics, from the Kubernetes documentation (see docs/network-policy.md and
shared notes/network-policy.md):
  - A policy selects pods of its own namespace (podSelector) and isolates them in the directions of
    its policyTypes; absent policyTypes means Ingress, plus Egress when it has egress rules.
  - A connection passes when the source's egress allows it (or the source is not egress-isolated)
    and the destination's ingress allows it (or it is not ingress-isolated). Rules are additive.
  - A peer: ipBlock (cidr minus excepts, on the raw address, pod addresses included); or selectors:
    namespaceSelector picks namespaces (absent: the policy's own), podSelector pods in them (absent:
    all); both in one peer is AND, two peers are OR. Empty from/to: any peer.
  - A port: protocol (default TCP) and a number, a number range (endPort), a name (resolved on the
    destination pod's container ports with that name and protocol; none: matches nothing), or none
    (every port of the protocol). Empty ports: every port of every protocol.
  - Traffic between a pod and its own node passes whatever the policies say. Replies pass.
  - A Service destination is judged against the backend it was translated to.
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass, field

NAMESPACES = ["x", "y", "z"]
POD_NAMES = ["a", "b", "c"]
PORTS = [80, 81]
PROTOCOLS = ["TCP", "UDP"]
# The node each pod runs on: pairs in the same namespace cross nodes too (x/a -> x/c).
POD_NODES = {"a": "node1", "b": "node1", "c": "node2"}
# A container port name that pods give different numbers (and pod c lacks): a named-port rule must be
# resolved per destination pod (cilium#24779).
WEB_PORT = {"a": 80, "b": 81}
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

# Destination types: the pod's address, or its Service's ClusterIP translated per packet at the
# client's veth, or at connect() by socket LB (the client runs in its node's socket-LB cgroup).
DEST_POD = "pod"
DEST_SERVICE = "service"
DEST_SERVICE_SOCKET_LB = "service-socket-lb"


def container_ports(pod_name: str) -> list[tuple[str, int, str]]:
    """(name, number, protocol) of a pod's container ports, upstream's names plus `web`."""
    ports = [(f"serve-{p}-{proto.lower()}", p, proto) for p in PORTS for proto in PROTOCOLS]
    if pod_name in WEB_PORT:
        ports.append(("web", WEB_PORT[pod_name], "TCP"))
    return ports


@dataclass
class ModelPod:
    namespace: str
    name: str
    labels: dict[str, str]
    node: str
    ports: list[tuple[str, int, str]]
    ips: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Cluster:
    """The objects of the lab: namespaces (name -> labels), pods ("ns/name" -> ModelPod), policies
    ("ns/name" -> the NetworkPolicy as a dict, exactly as written to its manifest), each node's
    addresses (for probes from or to a node), and hosts outside the cluster (name -> addresses)."""

    namespaces: dict[str, dict[str, str]]
    pods: dict[str, ModelPod]
    policies: dict[str, dict] = field(default_factory=dict)
    node_addresses: dict[str, list[str]] = field(default_factory=dict)
    outside: dict[str, list[str]] = field(default_factory=dict)

    @staticmethod
    def upstream() -> "Cluster":
        namespaces = {ns: {"ns": ns} for ns in NAMESPACES}
        pods = {}
        for ns in NAMESPACES:
            for name in POD_NAMES:
                pod = ModelPod(ns, name, {"pod": name}, POD_NODES[name], container_ports(name))
                pods[pod.key] = pod
        return Cluster(namespaces, pods)

    def copy(self) -> "Cluster":
        return copy.deepcopy(self)

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        return {**self.namespaces[namespace], NAMESPACE_NAME_LABEL: namespace}


# ---------------------------------------------------------------------------------------------------
# Semantics


def selector_matches(selector: dict | None, labels: dict[str, str]) -> bool:
    """A LabelSelector: every matchLabels pair and every matchExpressions requirement holds. An empty
    selector matches everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.get("matchExpressions") or []:
        key, op, values = requirement["key"], requirement["operator"], requirement.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def policy_types(policy: dict) -> set[str]:
    spec = policy.get("spec") or {}
    if "policyTypes" in spec:
        return set(spec["policyTypes"])
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def policy_selects(policy: dict, pod: ModelPod) -> bool:
    return policy["metadata"]["namespace"] == pod.namespace and selector_matches(
        policy["spec"].get("podSelector"), pod.labels
    )


def _in_block(block: dict, address: str) -> bool:
    ip = ipaddress.ip_address(address)
    cidr = ipaddress.ip_network(block["cidr"], strict=False)
    if ip.version != cidr.version or ip not in cidr:
        return False
    return not any(
        ip in ipaddress.ip_network(e, strict=False)
        for e in block.get("except") or []
        if ipaddress.ip_network(e, strict=False).version == ip.version
    )


@dataclass(frozen=True)
class Peer:
    """The far end of a connection as a policy sees it: a pod, a node (hostNetwork, no labels), or a
    host outside the cluster (neither)."""

    address: str
    pod: ModelPod | None = None
    node: str = ""


def peer_matches(cluster: Cluster, rule_peer: dict, policy_namespace: str, peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        return _in_block(rule_peer["ipBlock"], peer.address)
    if peer.pod is None:  # selectors select pods only: a node matches ipBlocks alone
        return False
    if "namespaceSelector" in rule_peer:
        if not selector_matches(rule_peer["namespaceSelector"], cluster.namespace_labels(peer.pod.namespace)):
            return False
    elif peer.pod.namespace != policy_namespace:
        return False
    return "podSelector" not in rule_peer or selector_matches(rule_peer["podSelector"], peer.pod.labels)


def port_matches(rule_port: dict, destination: ModelPod, port: int, protocol: str) -> bool:
    if rule_port.get("protocol", "TCP") != protocol:
        return False
    if "port" not in rule_port:
        return True
    wanted = rule_port["port"]
    if isinstance(wanted, str):
        numbers = [n for name, n, proto in destination.ports if name == wanted and proto == protocol]
        return bool(numbers) and numbers[0] == port
    return wanted <= port <= rule_port.get("endPort", wanted)


def rule_allows(
    cluster: Cluster, policy: dict, rule: dict, peer_key: str, peer: Peer, destination: ModelPod, port, protocol
) -> bool:
    peers = rule.get(peer_key) or []
    ports = rule.get("ports") or []
    namespace = policy["metadata"]["namespace"]
    if peers and not any(peer_matches(cluster, p, namespace, peer) for p in peers):
        return False
    return not ports or any(port_matches(p, destination, port, protocol) for p in ports)


def direction_allows(cluster: Cluster, subject: ModelPod, direction: str, peer: Peer, destination, port, protocol):
    """Whether `subject`'s policies in `direction` ("Ingress" or "Egress") let the connection through."""
    isolating = [p for p in cluster.policies.values() if policy_selects(p, subject) and direction in policy_types(p)]
    if not isolating:
        return True
    rules_key, peer_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    return any(
        rule_allows(cluster, policy, rule, peer_key, peer, destination, port, protocol)
        for policy in isolating
        for rule in policy["spec"].get(rules_key) or []
    )


def allowed(cluster: Cluster, source: str, destination: str, port: int, protocol: str, family: int = 4) -> bool:
    """Whether a connection from `source` to `destination` ("ns/pod", a node name for a node's own
    address, or an outside host's name) on port/protocol is let through. A Service destination is the
    same question about its backend pod."""
    src = _endpoint(cluster, source, family)
    dst = _endpoint(cluster, destination, family)
    if src.pod is None and dst.pod is None:
        return True
    # A pod and its own node always reach each other.
    if src.pod is None and src.node and src.node == dst.pod.node or dst.pod is None and dst.node == src.pod.node:
        return True
    if src.pod is not None and not direction_allows(cluster, src.pod, "Egress", dst, dst.pod, port, protocol):
        return False
    if dst.pod is not None and not direction_allows(cluster, dst.pod, "Ingress", src, dst.pod, port, protocol):
        return False
    return True


def _endpoint(cluster: Cluster, name: str, family: int) -> Peer:
    if name in cluster.pods:
        pod = cluster.pods[name]
        addresses = [a for a in pod.ips if (":" in a) == (family == 6)]
        return Peer(addresses[0] if addresses else "", pod=pod)
    if name in cluster.outside:
        addresses = [a for a in cluster.outside[name] if (":" in a) == (family == 6)]
        return Peer(addresses[0] if addresses else "")
    addresses = [a for a in cluster.node_addresses.get(name, []) if (":" in a) == (family == 6)]
    return Peer(addresses[0] if addresses else "", node=name)


# ---------------------------------------------------------------------------------------------------
# Probes and truth tables


@dataclass(frozen=True)
class Probe:
    source: str  # "ns/pod" or a node name
    destination: str  # "ns/pod" or a node name
    dest_type: str  # DEST_POD, DEST_SERVICE, DEST_SERVICE_SOCKET_LB
    port: int
    protocol: str
    family: int = 4

    def __str__(self) -> str:
        via = "" if self.dest_type == DEST_POD else f" via {self.dest_type}"
        ipv6 = " IPv6" if self.family == 6 else ""
        return f"{self.source} -> {self.destination}{via} {self.protocol}/{self.port}{ipv6}"


def probes(
    sources: list[str],
    destinations: list[str],
    dest_types=(DEST_POD, DEST_SERVICE),
    ports=tuple(PORTS),
    protocols=tuple(PROTOCOLS),
    families=(4,),
) -> list[Probe]:
    """Every source -> every other destination (a pod reaching itself never leaves it: upstream skips
    those too). Service destinations exist for pods only."""
    out = []
    for src in sources:
        for dst in destinations:
            if src == dst:
                continue
            for dest_type in dest_types:
                if dest_type != DEST_POD and "/" not in dst:
                    continue
                for family in families if dest_type == DEST_POD else (4,):
                    for port in ports:
                        for protocol in protocols:
                            out.append(Probe(src, dst, dest_type, port, protocol, family))
    return out


def expected(cluster: Cluster, probe_list: list[Probe]) -> dict[Probe, bool]:
    return {p: allowed(cluster, p.source, p.destination, p.port, p.protocol, p.family) for p in probe_list}


CELL = {(True, True): ".", (False, False): "x", (False, True): "D", (True, False): "A"}
LEGEND = (
    ". allowed as expected   x denied as expected   A ALLOWED but should be denied   D DENIED but should be allowed"
)


def truth_tables(want: dict[Probe, bool], got: dict[Probe, bool], only_wrong: bool = True) -> str:
    """One table per (destination type, protocol, port, family): rows are sources, columns
    destinations, a cell says what happened against what was expected (LEGEND)."""
    groups: dict[tuple, list[Probe]] = {}
    for p in want:
        groups.setdefault((p.dest_type, p.protocol, p.port, p.family), []).append(p)
    out = []
    for (dest_type, protocol, port, family), members in groups.items():
        if only_wrong and all(want[p] == got.get(p) for p in members):
            continue
        sources = list(dict.fromkeys(p.source for p in members))
        # Columns in the rows' order (x/a, x/b, ...), then destinations that are no source.
        order = list(dict.fromkeys([*sources, *(p.destination for p in members)]))
        destinations = [d for d in order if any(p.destination == d for p in members)]
        cells = {(p.source, p.destination): CELL[(got.get(p, False), want[p])] for p in members}
        width = max(len(d) for d in [*destinations, *sources])
        title = f"{protocol}/{port} to {dest_type}" + (" (IPv6)" if family == 6 else "")
        lines = [title, " " * width + " | " + " ".join(d.rjust(width) for d in destinations)]
        for src in sources:
            row = [cells.get((src, d), "-").rjust(width) for d in destinations]
            lines.append(src.rjust(width) + " | " + " ".join(row))
        out.append("\n".join(lines))
    return "\n\n".join(out)


def mismatches(want: dict[Probe, bool], got: dict[Probe, bool]) -> list[Probe]:
    return [p for p in want if want[p] != got.get(p)]


def describe_mismatch(want: dict[Probe, bool], got: dict[Probe, bool], details: dict[Probe, str]) -> str:
    wrong = mismatches(want, got)
    lines = [f"{len(wrong)} of {len(want)} probes differ from the model", LEGEND, "", truth_tables(want, got), ""]
    for p in wrong[:40]:
        lines.append(f"  {p}: expected {'allowed' if want[p] else 'denied'}, got {details.get(p, '?')}")
    if len(wrong) > 40:
        lines.append(f"  ... and {len(wrong) - 40} more")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Manifests


def namespace_manifest(name: str, labels: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels)}}


def pod_manifest(pod: ModelPod, with_ips: bool = True) -> dict:
    """A Pod as the API would hold it: upstream's one container per port and protocol, and
    status.podIPs once the CNI gave them (with_ips)."""
    containers = []
    for name, number, protocol in pod.ports:
        containers.append(
            {
                "name": f"cont-{name}",
                "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
                "ports": [{"name": name, "containerPort": number, "protocol": protocol}],
            }
        )
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": dict(pod.labels)},
        "spec": {"nodeName": pod.node, "containers": containers},
        "status": {"phase": "Pending"},
    }
    if with_ips and pod.ips:
        manifest["status"] = {
            "phase": "Running",
            "podIP": pod.ips[0],
            "podIPs": [{"ip": ip} for ip in pod.ips],
        }
    return manifest


def service_name(pod: ModelPod) -> str:
    return f"s-{pod.namespace}-{pod.name}"


def cluster_ip(pod: ModelPod) -> str:
    """10.96.<namespace index + 1>.<pod index + 10>: one fixed ClusterIP per pod's Service."""
    return f"10.96.{NAMESPACES.index(pod.namespace) + 1}.{POD_NAMES.index(pod.name) + 10}"


def service_ports() -> list[tuple[str, int, int, str]]:
    """(name, port, targetPort, protocol) of every pod's Service: its four serving ports."""
    return [(f"serve-{p}-{proto.lower()}", p, p, proto) for p in PORTS for proto in PROTOCOLS]


def network_policy(
    name: str,
    namespace: str,
    pod_selector: dict | None = None,
    ingress: list[dict] | None = None,
    egress: list[dict] | None = None,
    policy_types: list[str] | None = None,
) -> dict:
    """A NetworkPolicy dict; None leaves a field out (so the API's defaults apply), [] writes it empty."""
    spec: dict = {"podSelector": pod_selector or {}}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    if policy_types is not None:
        spec["policyTypes"] = policy_types
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def labels(**pairs: str) -> dict:
    """A selector with matchLabels."""
    return {"matchLabels": dict(pairs)}


def expression(key: str, operator: str, *values: str) -> dict:
    requirement = {"key": key, "operator": operator}
    if values:
        requirement["values"] = list(values)
    return requirement


def tcp(port: int | str | None = None, end_port: int | None = None, protocol: str = "TCP") -> dict:
    """A NetworkPolicyPort."""
    out: dict = {"protocol": protocol}
    if port is not None:
        out["port"] = port
    if end_port is not None:
        out["endPort"] = end_port
    return out


def udp(port: int | str | None = None, end_port: int | None = None) -> dict:
    return tcp(port, end_port, "UDP")
