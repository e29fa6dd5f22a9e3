"""NetworkPolicy from a pod's first instant, end to end on one node: with "policy": true in the CNI
config, ADD registers the pod pending and the datapath denies its traffic with other pods, both
ways, until the agent writes its policy; pods added without the flag are untouched."""

from __future__ import annotations

from e2e.conftest import assert_no_leaks, netcheck, ping_failures, start_servers


def test_a_pending_pod_talks_to_no_other_pod(lab, node):
    a = node.add_pod("a")
    c = node.add_pod("c")
    pending = node.add_pod("b", conf=node.conf(policy=True))

    assert ping_failures(a, c.addresses()) == [], "pods without the flag are untouched"
    assert sorted(ping_failures(a, pending.addresses())) == sorted(pending.addresses()), "ingress denied"
    assert sorted(ping_failures(pending, a.addresses())) == sorted(a.addresses()), "egress denied"

    servers = start_servers(lab, [a, pending])
    try:
        into_pending = netcheck(a, "tcp", pending.addresses())
        out_of_pending = netcheck(pending, "tcp", a.addresses())
        plain = netcheck(c, "tcp", a.addresses())
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
    assert all(reply.startswith("error") for reply in into_pending.values()), into_pending
    assert all(reply.startswith("error") for reply in out_of_pending.values()), out_of_pending
    assert all(reply.startswith("ping from ") for reply in plain.values()), plain

    for pod in (a, c, pending):
        assert node.delete_pod(pod).ok
    assert_no_leaks(node)
