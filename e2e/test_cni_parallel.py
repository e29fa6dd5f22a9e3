"""Many runtimes' worth of concurrent ADDs and DELs on one node: the IPAM store's lock and the shared
pinned maps must hold up (no address handed out twice, every pod reachable, nothing leaked)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from e2e.conftest import assert_no_leaks, endpoints, host_links, ipam_files, link_pins, ping_failures, pod_from_add

PODS = 50
PARALLEL = 10


def test_fifty_parallel_adds(lab, node):
    names = [f"par{i:02d}" for i in range(PODS)]
    netns = {name: lab.make_netns(f"node1-{name}") for name in names}

    def add(name):
        cid = f"{lab.id}-{name}"
        return name, cid, node.cni("ADD", cid, netns[name], "eth0")

    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(add, names))
    failed = {name: (r.code, r.stdout, r.stderr) for name, _, r in results if not r.ok}
    assert failed == {}
    pods = [pod_from_add(node, name, result, netns[name], cid) for name, cid, result in results]

    v4 = [p.ipv4 for p in pods]
    v6 = [p.ipv6 for p in pods]
    assert len(set(v4)) == PODS, "an IPv4 address was given twice"
    assert len(set(v6)) == PODS, "an IPv6 address was given twice"
    assert sorted(ipam_files(node)) == sorted(v4 + v6)
    assert sorted(endpoints(node)) == sorted(v4 + v6)
    assert len(host_links(node)) == PODS and len(link_pins(node)) == PODS

    # One pod reaches all others, and a second one too (which also covers the way back to the first).
    for src in pods[:2]:
        targets = [a for p in pods if p is not src for a in p.addresses()]
        assert ping_failures(src, targets) == [], f"{src.name} cannot reach"
    # ... and every pod reaches the first one.
    with ThreadPoolExecutor(4) as pool:
        unreachable = {
            p.name: f
            for p, f in zip(pods[1:], pool.map(lambda p: ping_failures(p, pods[0].addresses()), pods[1:]))
            if f
        }
    assert unreachable == {}

    def delete(pod):
        return pod.name, node.cni("DEL", pod.container_id, pod.netns, pod.ifname)

    with ThreadPoolExecutor(PARALLEL) as pool:
        deleted = list(pool.map(delete, pods))
    assert {name: r.stdout + r.stderr for name, r in deleted if not r.ok} == {}
    assert_no_leaks(node)
