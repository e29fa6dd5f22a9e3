"""NetworkPolicy end to end: the upstream truth-table model (namespaces x, y, z; pods a, b, c; TCP and UDP
on ports 80 and 81) in the standalone namespace lab (weirlab/netpol_lab.py), one test per item of issue
10's semantics. Every probe of the matrix (pod -> pod by pod address and by ClusterIP) is compared with
weirlab/netpol_model.py's answer; a mismatch prints the truth tables.

Until weir-agent enforces NetworkPolicy the policy tests skip (netpol_lab.policy_support() says how
enforcement is detected); the model's own tests and the harness check without policies always run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time

import pytest

from weirlab import netpol_model as m
from weirlab.lab import WEIRCTL, in_netns
from weirlab.netpol_lab import FIRST_PACKET_PROBER, NetpolLab, policy_support
from weirlab.netpol_model import expression, labels, network_policy, tcp, udp

SUPPORT = policy_support()
needs_policy = pytest.mark.skipif(not SUPPORT.enabled, reason=SUPPORT.reason)
ALL_DEST_TYPES = (m.DEST_POD, m.DEST_SERVICE, m.DEST_SERVICE_SOCKET_LB)


@pytest.fixture
def netpol(lab) -> NetpolLab:
    """The lab with every pod serving; checked to answer every probe before the test's policies."""
    the_lab = NetpolLab(lab, SUPPORT)
    the_lab.wait_for_model()
    return the_lab


def allow_from(*peers: dict, ports: list[dict] | None = None) -> dict:
    rule: dict = {"from": list(peers)}
    if ports is not None:
        rule["ports"] = ports
    return rule


def allow_to(*peers: dict, ports: list[dict] | None = None) -> dict:
    rule: dict = {"to": list(peers)}
    if ports is not None:
        rule["ports"] = ports
    return rule


def converge(netpol: NetpolLab, what: str, **kwargs) -> dict:
    took = netpol.wait_for_model(**kwargs)
    print(f"{what}: matrix matched the model after {took['seconds']:.2f} s ({took['rounds']} runs)")
    return took


# ---------------------------------------------------------------------------------------------------
# The model itself (no lab): the judge must be right before it judges weir.


def model_cluster() -> m.Cluster:
    cluster = m.Cluster.upstream()
    for i, key in enumerate(cluster.pods):
        cluster.pods[key].ips = [f"10.244.{1 if cluster.pods[key].node == 'node1' else 2}.{10 + i}"]
    cluster.node_addresses = {"node1": ["192.168.50.1"], "node2": ["192.168.50.2"]}
    return cluster


def test_model_without_policies_allows_everything():
    cluster = model_cluster()
    want = m.expected(cluster, m.probes(list(cluster.pods), list(cluster.pods)))
    assert len(want) == 9 * 8 * 2 * 2 * 2 and all(want.values())


def test_model_deny_all_ingress_isolates_only_its_namespace():
    cluster = model_cluster()
    cluster.policies["x/deny"] = network_policy("deny", "x", policy_types=["Ingress"])
    assert not m.allowed(cluster, "y/a", "x/b", 80, "TCP")
    assert m.allowed(cluster, "x/a", "y/b", 80, "TCP")  # egress stays open, replies pass
    assert m.allowed(cluster, "node1", "x/a", 80, "TCP")  # its own node
    assert not m.allowed(cluster, "node2", "x/a", 80, "TCP")


def test_model_peer_selectors_and_versus_or():
    cluster = model_cluster()
    both = {"namespaceSelector": labels(ns="y"), "podSelector": labels(pod="b")}
    cluster.policies["x/p"] = network_policy("p", "x", labels(pod="a"), ingress=[allow_from(both)])
    assert m.allowed(cluster, "y/b", "x/a", 81, "UDP")
    assert not m.allowed(cluster, "y/c", "x/a", 81, "UDP") and not m.allowed(cluster, "x/b", "x/a", 81, "UDP")
    either = [{"namespaceSelector": labels(ns="y")}, {"podSelector": labels(pod="b")}]
    cluster.policies["x/p"] = network_policy("p", "x", labels(pod="a"), ingress=[allow_from(*either)])
    assert m.allowed(cluster, "y/c", "x/a", 80, "TCP") and m.allowed(cluster, "x/b", "x/a", 80, "TCP")
    assert not m.allowed(cluster, "z/b", "x/a", 80, "TCP") and not m.allowed(cluster, "x/c", "x/a", 80, "TCP")


def test_model_named_port_resolves_on_each_destination():
    cluster = model_cluster()
    cluster.policies["x/web"] = network_policy("web", "x", labels(pod="a"), egress=[allow_to(ports=[tcp("web")])])
    assert m.allowed(cluster, "x/a", "y/a", 80, "TCP") and not m.allowed(cluster, "x/a", "y/a", 81, "TCP")
    assert m.allowed(cluster, "x/a", "y/b", 81, "TCP") and not m.allowed(cluster, "x/a", "y/b", 80, "TCP")
    assert not m.allowed(cluster, "x/a", "y/c", 80, "TCP") and not m.allowed(cluster, "x/a", "y/a", 80, "UDP")
    assert "egress" in cluster.policies["x/web"]["spec"] and m.policy_types(cluster.policies["x/web"]) == {
        "Ingress",
        "Egress",
    }
    assert not m.allowed(cluster, "y/a", "x/a", 80, "TCP")  # the default policyTypes isolate ingress too


def test_model_ip_block_except_and_end_port():
    cluster = model_cluster()
    block = {"ipBlock": {"cidr": "10.244.0.0/16", "except": [cluster.pods["y/b"].ips[0] + "/32"]}}
    cluster.policies["x/cidr"] = network_policy(
        "cidr", "x", labels(pod="a"), ingress=[allow_from(block, ports=[tcp(80, end_port=81)])]
    )
    assert m.allowed(cluster, "y/a", "x/a", 81, "TCP") and not m.allowed(cluster, "y/a", "x/a", 80, "UDP")
    assert not m.allowed(cluster, "y/b", "x/a", 80, "TCP")
    assert m.allowed(cluster, "node1", "x/a", 80, "UDP")


def test_model_outside_hosts_match_ip_blocks_only():
    cluster = model_cluster()
    cluster.outside = {"client": ["192.168.50.100"]}
    cluster.policies["x/in"] = network_policy(
        "in", "x", {}, ingress=[allow_from({"namespaceSelector": {}}, {"ipBlock": {"cidr": "192.168.50.96/28"}})]
    )
    cluster.policies["y/out"] = network_policy("out", "y", {}, egress=[allow_to({"namespaceSelector": {}})])
    assert m.allowed(cluster, "client", "x/a", 80, "TCP") and m.allowed(cluster, "z/a", "x/a", 80, "TCP")
    assert not m.allowed(cluster, "y/a", "client", 80, "TCP") and m.allowed(cluster, "x/a", "client", 80, "TCP")
    assert not m.allowed(cluster, "node2", "x/a", 80, "TCP")  # a node is no pod of any namespace


def test_model_truth_table_marks_the_wrong_cells():
    cluster = model_cluster()
    probe_list = m.probes(["x/a", "x/b"], ["x/a", "x/b"], dest_types=(m.DEST_POD,), ports=(80,), protocols=("TCP",))
    want = m.expected(cluster, probe_list)
    got = dict(want)
    got[probe_list[0]] = False
    text = m.describe_mismatch(want, got, {probe_list[0]: "error: timed out"})
    assert "1 of 2 probes differ" in text and " D" in text and "x/a -> x/b TCP/80: expected allowed" in text


# ---------------------------------------------------------------------------------------------------
# The harness, today: without policies every probe is answered.


def test_no_policies_every_probe_answers(lab):
    start = time.monotonic()
    netpol = NetpolLab(lab, SUPPORT, families=(4, 6))
    setup = time.monotonic() - start
    probe_list = netpol.all_probes(dest_types=ALL_DEST_TYPES)
    runs = []
    for _ in range(2):
        want, result = netpol.check(probe_list)
        assert m.mismatches(want, result.got) == [], m.describe_mismatch(want, result.got, result.details)
        runs.append(result.seconds)
    # The nodes and the outside client, as sources and destinations (the own-node and outside tests).
    netpol.serve_on_nodes()
    everyone = [*netpol.model.pods, *netpol.nodes, netpol.add_outside_client()]
    hosts = m.probes(everyone, everyone, dest_types=(m.DEST_POD,), families=(4, 6))
    want, result = netpol.check(hosts)
    assert m.mismatches(want, result.got) == [], m.describe_mismatch(want, result.got, result.details)
    print(
        f"\nnetpol lab: set up in {setup:.1f} s (2 nodes, 9 pods, 9 Services); {len(probe_list)} probes "
        f"(pod IPv4 and IPv6, ClusterIP per packet and by socket LB; TCP and UDP on 80 and 81) all answered, "
        f"matrix {runs[0]:.2f} s and {runs[1]:.2f} s; with the nodes and an outside client {len(hosts)} probes "
        f"in {result.seconds:.2f} s; policy enforcement: {SUPPORT.reason}"
    )


# ---------------------------------------------------------------------------------------------------
# The semantics, one test per item of issue 10


@needs_policy
def test_deny_all_ingress(netpol):
    netpol.apply_policy(network_policy("deny-all", "x", policy_types=["Ingress"]))
    converge(netpol, "deny-all ingress in x", probe_list=netpol.all_probes(families=(4, 6)))


@needs_policy
def test_deny_all_egress(netpol):
    netpol.apply_policy(network_policy("deny-all", "x", policy_types=["Egress"]))
    converge(netpol, "deny-all egress in x", probe_list=netpol.all_probes(families=(4, 6)))


@needs_policy
def test_allow_from_pod_selector(netpol):
    netpol.apply_policy(
        network_policy("a-from-b", "x", labels(pod="a"), ingress=[allow_from({"podSelector": labels(pod="b")})])
    )
    converge(netpol, "x/a from pod=b of x")


@needs_policy
def test_allow_from_namespace_selector(netpol):
    netpol.apply_policy(
        network_policy("a-from-y", "x", labels(pod="a"), ingress=[allow_from({"namespaceSelector": labels(ns="y")})])
    )
    converge(netpol, "x/a from namespace y")


@needs_policy
def test_selectors_in_one_peer_and_versus_two_peers_or(netpol):
    both = {"namespaceSelector": labels(ns="y"), "podSelector": labels(pod="b")}
    netpol.apply_policy(network_policy("p", "x", labels(pod="a"), ingress=[allow_from(both)]))
    converge(netpol, "one peer: ns=y AND pod=b")
    either = [{"namespaceSelector": labels(ns="y")}, {"podSelector": labels(pod="b")}]
    netpol.apply_policy(network_policy("p", "x", labels(pod="a"), ingress=[allow_from(*either)]))
    converge(netpol, "two peers: ns=y OR pod=b (of x)")


@needs_policy
def test_match_expressions(netpol):
    peer = {
        "namespaceSelector": {"matchExpressions": [expression("ns", "In", "y", "z")]},
        "podSelector": {"matchExpressions": [expression("pod", "NotIn", "c")]},
    }
    selected = {"matchExpressions": [expression("pod", "Exists")]}
    netpol.apply_policy(network_policy("expr", "x", selected, ingress=[allow_from(peer)]))
    # Egress of y/a: to pods without a "team" label (all of them) in namespaces other than z.
    unlabeled = {
        "namespaceSelector": {"matchExpressions": [expression("ns", "NotIn", "z")]},
        "podSelector": {"matchExpressions": [expression("team", "DoesNotExist")]},
    }
    netpol.apply_policy(network_policy("expr", "y", labels(pod="a"), egress=[allow_to(unlabeled)]))
    converge(netpol, "In / NotIn / Exists / DoesNotExist")


@needs_policy
def test_ip_block_with_except_covers_pod_addresses(netpol):
    """ipBlock matches pod addresses too (cilium#9209): the pod network minus one pod's /32 (and /128)."""
    yb = netpol.model.pods["y/b"].ips
    block = {"ipBlock": {"cidr": "10.244.0.0/16", "except": [f"{yb[0]}/32"]}}
    block6 = {"ipBlock": {"cidr": "fd00:10:244::/48", "except": [f"{yb[1]}/128"]}}
    netpol.apply_policy(network_policy("cidr", "x", labels(pod="a"), ingress=[allow_from(block, block6)]))
    # Egress of x/b to exactly one pod's address: z/c.
    zc = netpol.model.pods["z/c"].ips
    only = [{"ipBlock": {"cidr": f"{zc[0]}/32"}}, {"ipBlock": {"cidr": f"{zc[1]}/128"}}]
    netpol.apply_policy(network_policy("to-zc", "x", labels(pod="b"), egress=[allow_to(*only)]))
    converge(netpol, "ipBlock with except", probe_list=netpol.all_probes(families=(4, 6)))


@needs_policy
def test_named_ports_resolved_per_destination_pod(netpol):
    """Pods give `web` different numbers (a: 80, b: 81, c: none): egress and ingress by name."""
    netpol.apply_policy(network_policy("to-web", "x", labels(pod="a"), egress=[allow_to(ports=[tcp("web")])]))
    netpol.apply_policy(network_policy("web-in", "y", {}, ingress=[allow_from(ports=[tcp("web")])]))
    # A named port on UDP that no pod has under that name and protocol allows nothing.
    netpol.apply_policy(network_policy("udp-web", "z", labels(pod="a"), ingress=[allow_from(ports=[udp("web")])]))
    converge(netpol, "named ports")


@needs_policy
def test_end_port_ranges(netpol):
    netpol.apply_policy(network_policy("range", "x", labels(pod="a"), ingress=[allow_from(ports=[tcp(80, 81)])]))
    netpol.apply_policy(network_policy("range", "y", labels(pod="a"), ingress=[allow_from(ports=[udp(81, 9000)])]))
    netpol.apply_policy(network_policy("range", "z", labels(pod="a"), egress=[allow_to(ports=[tcp(1, 80)])]))
    converge(netpol, "endPort")


@needs_policy
def test_protocols_kept_apart(netpol):
    """A TCP rule never admits UDP on the same port, nor a UDP rule TCP; a protocol alone admits every port."""
    netpol.apply_policy(network_policy("tcp80", "x", labels(pod="a"), ingress=[allow_from(ports=[tcp(80)])]))
    netpol.apply_policy(network_policy("udp80", "x", labels(pod="b"), ingress=[allow_from(ports=[udp(80)])]))
    netpol.apply_policy(network_policy("udp-any", "y", labels(pod="a"), egress=[allow_to(ports=[udp()])]))
    converge(netpol, "TCP / UDP apart")


@needs_policy
def test_policy_types_defaults(netpol):
    # No policyTypes, egress rules: Ingress and Egress, so x/a takes no connection at all.
    netpol.apply_policy(
        network_policy("egress-rules", "x", labels(pod="a"), egress=[allow_to({"podSelector": labels(pod="b")})])
    )
    # No policyTypes, only ingress rules: egress stays open.
    netpol.apply_policy(
        network_policy("ingress-rules", "y", labels(pod="a"), ingress=[allow_from({"podSelector": labels(pod="c")})])
    )
    # policyTypes Egress with ingress rules: the ingress rules are ignored, ingress stays open.
    netpol.apply_policy(
        network_policy(
            "egress-only",
            "z",
            labels(pod="a"),
            ingress=[allow_from({"podSelector": labels(pod="nobody")})],
            egress=[allow_to({"namespaceSelector": labels(ns="z")})],
            policy_types=["Egress"],
        )
    )
    converge(netpol, "policyTypes defaults")


@needs_policy
def test_replies_of_allowed_connections_pass(netpol):
    """x/a admits everything in and lets nothing out: its answers still leave. y/b the other way round:
    its answers still come back in."""
    netpol.apply_policy(
        network_policy("in-only", "x", labels(pod="a"), ingress=[{}], policy_types=["Ingress", "Egress"])
    )
    netpol.apply_policy(
        network_policy("out-only", "y", labels(pod="b"), egress=[{}], policy_types=["Ingress", "Egress"])
    )
    converge(netpol, "replies", probe_list=netpol.all_probes(dest_types=ALL_DEST_TYPES))


@needs_policy
def test_pod_label_change_takes_effect(netpol):
    netpol.apply_policy(
        network_policy("a-from-b", "x", labels(pod="a"), ingress=[allow_from({"podSelector": labels(pod="b")})])
    )
    converge(netpol, "x/a from pod=b")
    netpol.set_pod_labels("x/c", {"pod": "b"})
    converge(netpol, "x/c relabelled pod=b: now a peer")
    netpol.set_pod_labels("x/a", {"pod": "a2"})
    converge(netpol, "x/a relabelled pod=a2: no longer selected")


@needs_policy
def test_namespace_label_change_takes_effect(netpol):
    netpol.apply_policy(
        network_policy("a-from-y", "x", labels(pod="a"), ingress=[allow_from({"namespaceSelector": labels(ns="y")})])
    )
    converge(netpol, "x/a from ns=y")
    netpol.set_namespace_labels("z", {"ns": "y"})
    converge(netpol, "namespace z relabelled ns=y")
    netpol.set_namespace_labels("y", {"ns": "q"})
    converge(netpol, "namespace y relabelled ns=q")


@needs_policy
def test_policy_edit_and_delete_take_effect(netpol):
    netpol.apply_policy(network_policy("p", "x", {}, policy_types=["Ingress"]))
    converge(netpol, "deny-all ingress in x")
    netpol.apply_policy(network_policy("p", "x", {}, ingress=[allow_from({"podSelector": labels(pod="b")})]))
    converge(netpol, "edited: from pod=b of x")
    netpol.delete_policy("x", "p")
    converge(netpol, "deleted")


@needs_policy
def test_other_namespaces_policies_change_nothing_else(netpol):
    """Policies in y (a bare podSelector peer means y's pods only) and z leave x's traffic alone."""
    netpol.apply_policy(
        network_policy("a-from-b", "y", labels(pod="a"), ingress=[allow_from({"podSelector": labels(pod="b")})])
    )
    netpol.apply_policy(network_policy("deny-all", "z", {}, policy_types=["Ingress", "Egress"]))
    converge(netpol, "policies in y and z")


@needs_policy
def test_denials_are_events_naming_the_pod_and_the_policies(netpol, lab):
    """Item 5: a probe dropped by policy is an event on the endpoint's node (`weirctl events --type policy`)
    that names the direction, the endpoint as namespace/pod and the policies whose default deny decided:
    x/a's ingress (only pod=b of x admitted) and y/b's egress (isolated, nothing admitted)."""
    netpol.apply_policy(
        network_policy("a-from-b", "x", labels(pod="a"), ingress=[allow_from({"podSelector": labels(pod="b")})])
    )
    netpol.apply_policy(network_policy("b-no-egress", "y", labels(pod="b"), policy_types=["Egress"]))
    converge(netpol, "x/a from pod=b of x; y/b no egress", probe_list=netpol.all_probes(dest_types=(m.DEST_POD,)))
    node = netpol.pod_nodes["x/a"]
    assert netpol.pod_nodes["y/b"] is node
    reader = lab.spawn(
        in_netns(
            node.netns,
            [str(WEIRCTL), f"--bpf_root={node.bpf_root}", "events", "--type=policy", "-o", "json", "--timeout_s=6"],
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1)  # reading: records older than weirctl are not shown
    denied = [m.Probe("z/c", "x/a", m.DEST_POD, 80, "TCP"), m.Probe("y/b", "z/a", m.DEST_POD, 81, "UDP")]
    assert not any(netpol.run_matrix(denied).got.values()), "the probes were not denied"
    out, err = reader.communicate(timeout=30)
    records = [json.loads(line) for line in out.splitlines()]
    assert records, f"no policy record on {node.name}: {err}"
    by_endpoint = {r.get("endpoint"): r for r in records}
    address = {key: netpol.pods[key].addresses(4)[0] for key in ("z/c", "x/a", "y/b", "z/a")}
    ingress = by_endpoint.get("x/a")
    assert ingress, f"no record names x/a: {records}"
    assert ingress["verdict"] == "denied" and ingress["direction"] == "ingress"
    assert ingress["policy"] == "default-deny" and ingress["isolated_by"] == "x/a-from-b"
    assert ingress["source"]["address"] == address["z/c"] and ingress["destination"]["port"] == 80
    assert ingress["peer"] == "z{pod=c}"
    egress = by_endpoint.get("y/b")
    assert egress, f"no record names y/b: {records}"
    assert egress["direction"] == "egress" and egress["protocol"] == "UDP"
    assert egress["policy"] == "default-deny" and egress["isolated_by"] == "y/b-no-egress"
    assert egress["destination"]["address"] == address["z/a"] and egress["peer"] == "z{pod=a}"
    # And the table says the same in one line (the records read above are gone from the ring: probe again).
    table = lab.spawn(
        in_netns(
            node.netns,
            [str(WEIRCTL), f"--bpf_root={node.bpf_root}", "events", "--type=policy", "--count=1", "--timeout_s=6"]
            + ["--addr", address["y/b"]],
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(1)
    netpol.run_matrix(denied[1:])
    line = table.communicate(timeout=30)[0]
    assert "direction=egress endpoint=y/b policy=default-deny isolated_by=y/b-no-egress peer=" in line, line
    print(f"\n{len(records)} policy records on {node.name}, e.g.\n{line}")


@needs_policy
def test_own_node_always_allowed(netpol):
    """Deny-all both ways in every namespace: a pod and its own node still reach each other; another node
    does not reach it."""
    netpol.serve_on_nodes()
    for ns in m.NAMESPACES:
        netpol.apply_policy(network_policy("deny-all", ns, {}, policy_types=["Ingress", "Egress"]))
    everyone = [*netpol.model.pods, *netpol.nodes]
    probe_list = m.probes(everyone, everyone, dest_types=(m.DEST_POD,), families=(4, 6))
    converge(netpol, "deny-all everywhere, nodes", probe_list=probe_list)


@needs_policy
def test_traffic_from_outside_the_cluster(netpol):
    """A host outside the cluster reaches pods through their node: only ipBlocks can admit it, and a
    pod's egress to it is judged the same way."""
    outside = netpol.add_outside_client()
    netpol.apply_policy(
        network_policy(
            "from-outside",
            "x",
            labels(pod="a"),
            ingress=[allow_from({"ipBlock": {"cidr": "192.168.50.0/24"}}, {"ipBlock": {"cidr": "fd00:50::/64"}})],
        )
    )
    netpol.apply_policy(network_policy("deny-all", "y", {}, policy_types=["Ingress", "Egress"]))
    netpol.apply_policy(
        network_policy(
            "to-outside", "z", labels(pod="a"), egress=[allow_to({"ipBlock": {"cidr": "192.168.50.100/32"}})]
        )
    )
    everyone = [*netpol.model.pods, outside]
    probe_list = m.probes(everyone, everyone, dest_types=(m.DEST_POD,), families=(4, 6))
    converge(netpol, "outside client", probe_list=probe_list)


@needs_policy
def test_service_traffic_judged_against_the_backend(netpol):
    """x/a may reach pods labelled pod=b anywhere; y's pod=b admits only namespace z. Through a ClusterIP
    (per packet and by socket LB) the client's egress and the backend's ingress decide, not the
    ClusterIP's address."""
    netpol.apply_policy(
        network_policy(
            "to-b",
            "x",
            labels(pod="a"),
            egress=[allow_to({"namespaceSelector": {}, "podSelector": labels(pod="b")})],
        )
    )
    netpol.apply_policy(
        network_policy("b-from-z", "y", labels(pod="b"), ingress=[allow_from({"namespaceSelector": labels(ns="z")})])
    )
    converge(netpol, "Service backends", probe_list=netpol.all_probes(dest_types=ALL_DEST_TYPES))


# ---------------------------------------------------------------------------------------------------
# From the first packet


@needs_policy
def test_time_from_cni_add_to_first_allowed_packet(netpol, lab):
    """A new pod x/new<i> selected by a policy that admits x/a on TCP 80: the time from the start of its
    CNI ADD (the Pod object exists, without an address, as in a cluster) to x/a's first answered
    connection. x/b, which no rule admits, must never get an answer, not even before the policy is in
    force."""
    netpol.apply_policy(
        network_policy(
            "new-from-a",
            "x",
            labels(role="new"),
            ingress=[allow_from({"podSelector": labels(pod="a")}, ports=[tcp(80)])],
        )
    )
    samples = []
    for i in range(3):
        key = f"x/new{i}"
        netpol.model.pods[key] = m.ModelPod(
            "x", f"new{i}", {"pod": f"new{i}", "role": "new"}, "node1", m.container_ports("c")
        )
        netpol.write(netpol.pod_file(key), m.pod_manifest(netpol.model.pods[key], with_ips=False))
        node, netns, container_id = netpol.make_pod_netns(key)
        netpol.serve(key, netns)
        probers = {}
        # x/a until its first answer (10 s at most); x/b for the 3 s after ADD, counting every answer.
        for source, limit, count_all in (("x/a", "10", "0"), ("x/b", "3", "1")):
            prober = lab.spawn(
                ["nsenter", f"--net=/run/netns/{netpol.pods[source].netns}", "--", "python3", "-c", FIRST_PACKET_PROBER]
                + ["80", "0.05", limit, count_all],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert prober.stdout.readline().strip() == "ready"
            probers[source] = prober
        t0 = time.monotonic()
        pod = netpol.add_pod(key, (node, netns, container_id))
        t_added = time.monotonic()
        for prober in probers.values():
            prober.stdin.write(pod.ipv4 + "\n")
            prober.stdin.flush()
        netpol.write(netpol.pod_file(key), m.pod_manifest(netpol.model.pods[key]))
        allowed = json.loads(probers["x/a"].communicate(timeout=30)[0])
        denied = json.loads(probers["x/b"].communicate(timeout=30)[0])
        assert allowed["first"] is not None, f"x/a never reached {key} within 10 s after ADD: {allowed}"
        assert denied["answered"] == 0, f"x/b reached {key}, which no rule admits: {denied}"
        samples.append({"from_add_start": allowed["first"] - t0, "add": t_added - t0, "attempts": allowed["attempts"]})
    print(
        "\nCNI ADD start -> first allowed packet: "
        + ", ".join(f"{s['from_add_start'] * 1000:.0f} ms (ADD {s['add'] * 1000:.0f} ms)" for s in samples)
        + f"; median {statistics.median(s['from_add_start'] for s in samples) * 1000:.0f} ms"
    )
    converge(netpol, "with the new pods", probe_list=netpol.all_probes(dest_types=(m.DEST_POD,)))
