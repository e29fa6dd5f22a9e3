"""Manifests for the policy benchmark (bench/policy_bench.py): namespaces, pods with the identities the
bench needs, the nodes those pods run on, and NetworkPolicies with a given number of rules. Text
templates, not a YAML dumper: 10,000 pods are written in well under a second.

The layout (every number deterministic, so that a rule's peers are known without reading anything back):
  - NAMESPACES namespaces bench-0 ... bench-9, labelled ns=bench-<i> and team=t<i % 3>.
  - Pod j lives in bench-<j % 10> with labels app=app-<a>, tier=t<a % 4> where a = (j // 10) % 100: the
    pair (namespace, app) gives IDENTITIES = 1,000 identities, each with pods // 1000 pods.
  - Pod j runs on fake node j % FAKE_NODES (node objects with a /24 pod CIDR in 10.245.0.0/16 and an
    address on the lab fabric that nothing answers, 192.168.50.101 ...), at 10.245.<node>.<j // FAKE_NODES
    + 2>: the pods are peers, never endpoints.
  - Rule k of a direction admits identity k % 1000 on TCP port 1000 + k // 1000 (10,000 rules are 10,000
    distinct (identity, port) pairs); every 20th rule a port range of 10 instead, every 50th an ipBlock
    (one fake node's /24 minus one address) on port 3000 + k.
"""

from __future__ import annotations

NAMESPACES = 10
APPS = 100
IDENTITIES = NAMESPACES * APPS
FAKE_NODES = 99
# On the lab's fabric (weirlab/cluster.py: nodes from .1, the client at .100), answered by nobody: the
# agent's routes to the fake nodes' pod CIDRs resolve, and no packet is sent along them.
FAKE_NODE_ADDRESS = "192.168.50.{}"


def namespace_name(i: int) -> str:
    return f"bench-{i}"


def fake_pod_ip(j: int) -> str:
    return f"10.245.{j % FAKE_NODES}.{j // FAKE_NODES + 2}"


def identity_of_pod(j: int) -> int:
    """The identity index (namespace + 10 * app) of pod j."""
    return j % NAMESPACES + NAMESPACES * ((j // NAMESPACES) % APPS)


def pods_of_identity(identity: int, pods: int) -> list[int]:
    """The pods (indexes below `pods`) that have `identity`."""
    return [j for j in range(identity, pods, IDENTITIES)]


def namespaces_yaml() -> str:
    docs = []
    for i in range(NAMESPACES):
        docs.append(
            f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace_name(i)}\n"
            f"  labels:\n    ns: {namespace_name(i)}\n    team: t{i % 3}\n"
        )
    return "---\n".join(docs)


def fake_nodes_yaml() -> str:
    docs = []
    for n in range(FAKE_NODES):
        docs.append(
            f"apiVersion: v1\nkind: Node\nmetadata:\n  name: fake-{n}\nspec:\n  podCIDR: 10.245.{n}.0/24\n"
            f"  podCIDRs: [10.245.{n}.0/24]\nstatus:\n  addresses:\n"
            f'  - type: InternalIP\n    address: "{FAKE_NODE_ADDRESS.format(101 + n)}"\n'
        )
    return "---\n".join(docs)


def pod_yaml(name: str, namespace: str, labels: dict[str, str], node: str, ip: str, ports=((8080, "http"),)) -> str:
    label_lines = "".join(f"    {k}: {v}\n" for k, v in labels.items())
    port_lines = "".join(f"    - containerPort: {p}\n      name: {n}\n      protocol: TCP\n" for p, n in ports)
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels:\n{label_lines}"
        f"spec:\n  nodeName: {node}\n  containers:\n  - name: main\n    image: registry.k8s.io/pause:3.10\n"
        f"    ports:\n{port_lines}status:\n  phase: Running\n  podIP: {ip}\n  podIPs:\n  - ip: {ip}\n"
    )


def fake_pods_yaml(pods: int) -> str:
    docs = []
    for j in range(pods):
        app = (j // NAMESPACES) % APPS
        labels = {"app": f"app-{app}", "tier": f"t{app % 4}"}
        node = f"fake-{j % FAKE_NODES}"
        docs.append(pod_yaml(f"p-{j}", namespace_name(j % NAMESPACES), labels, node, fake_pod_ip(j)))
    return "---\n".join(docs)


def rule_peer_and_port(k: int) -> tuple[str, str]:
    """Rule k's peer (YAML lines at indent 6, a list item) and its ports (indent 6)."""
    if k % 50 == 49:
        node = k % FAKE_NODES
        peer = f"      - ipBlock:\n          cidr: 10.245.{node}.0/24\n          except: [10.245.{node}.2/32]\n"
        return peer, f"      - protocol: TCP\n        port: {3000 + k}\n"
    identity = k % IDENTITIES
    peer = (
        f"      - namespaceSelector:\n          matchLabels:\n            ns: {namespace_name(identity % NAMESPACES)}\n"
        f"        podSelector:\n          matchLabels:\n            app: app-{identity // NAMESPACES}\n"
    )
    port = 1000 + k // IDENTITIES
    if k % 20 == 19:
        return peer, f"      - protocol: TCP\n        port: {port}\n        endPort: {port + 9}\n"
    return peer, f"      - protocol: TCP\n        port: {port}\n"


def rule_target(k: int, pods: int) -> tuple[str, int] | None:
    """An address and port that rule k (a selector rule) admits, or None for an ipBlock rule."""
    if k % 50 == 49:
        return None
    return fake_pod_ip(pods_of_identity(k % IDENTITIES, pods)[0]), 1000 + k // IDENTITIES


def policies_yaml(
    name: str,
    namespace: str,
    subject: dict[str, str],
    direction: str,
    rules: int,
    rules_per_policy: int = 100,
    first_rule: int = 0,
) -> str:
    """`rules` rules (rule_peer_and_port numbering from first_rule) for the pods `subject` selects in
    `direction` ("ingress" or "egress"), rules_per_policy to a policy."""
    docs = []
    selector = "".join(f"      {k}: {v}\n" for k, v in subject.items())
    peer_key = "from" if direction == "ingress" else "to"
    policy_type = "Ingress" if direction == "ingress" else "Egress"
    for start in range(first_rule, first_rule + rules, rules_per_policy):
        body = []
        for k in range(start, min(start + rules_per_policy, first_rule + rules)):
            peer, ports = rule_peer_and_port(k)
            body.append(f"  - {peer_key}:\n{peer}    ports:\n{ports}")
        docs.append(
            f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}-{start}\n"
            f"  namespace: {namespace}\nspec:\n  podSelector:\n    matchLabels:\n{selector}"
            f"  policyTypes: [{policy_type}]\n  {direction}:\n" + "".join(body)
        )
    return "---\n".join(docs)


def allow_one_yaml(
    name: str, namespace: str, subject: dict[str, str], direction: str, peer: dict[str, str], port: int
) -> str:
    """One policy admitting the pods labelled `peer` (any namespace) on TCP `port`."""
    peer_key = "from" if direction == "ingress" else "to"
    selector = "".join(f"      {k}: {v}\n" for k, v in subject.items())
    peer_labels = "".join(f"            {k}: {v}\n" for k, v in peer.items())
    return (
        f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
        f"spec:\n  podSelector:\n    matchLabels:\n{selector}"
        f"  policyTypes: [{'Ingress' if direction == 'ingress' else 'Egress'}]\n  {direction}:\n"
        f"  - {peer_key}:\n      - namespaceSelector: {{}}\n        podSelector:\n          matchLabels:\n{peer_labels}"
        f"    ports:\n      - protocol: TCP\n        port: {port}\n"
    )
