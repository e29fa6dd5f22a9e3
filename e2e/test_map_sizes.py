"""A map size changed between two agents on one node (conntrackMax, maglevTableSize in the chart's
values): the pinned maps outlive the agent and keep the size they were created with, so the new agent
refuses to start and says which map, which setting and what to do; the node's pods keep talking on
what is pinned meanwhile, and once the operator removes that map's pin, as docs/install.md says, the
agent starts with the new size."""

from __future__ import annotations

from e2e.conftest import V4_CIDR, V6_CIDR, ping_failures
from weirlab.lab import WEIR_AGENT, in_netns, run


def start_refused(node, config) -> str:
    """Runs the agent as the DaemonSet's next pod would; it must exit at once. Its output."""
    out = run(
        in_netns(node.netns, [str(WEIR_AGENT), f"--bpf_root={node.bpf_root}", "--datapath_only", f"--config={config}"]),
        check=False,
        timeout=30,
    )
    assert out.returncode != 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def test_changed_sizes_are_refused_until_the_pin_is_removed(lab):
    node = lab.add_node("node1", [V4_CIDR, V6_CIDR])
    pods = [node.add_pod("a"), node.add_pod("b")]
    addresses = pods[1].addresses()
    assert ping_failures(pods[0], addresses) == []
    node.stop_agent()

    config = node.dir / "agent.yaml"
    config.write_text("conntrackMax: 131072\n")
    said = start_refused(node, config)
    assert (
        f"pinned map {node.bpf_root}/weir_ct was created with 262144 entries, this agent is configured "
        "for 131072 (conntrackMax)" in said
    ), said
    assert "docs/install.md" in said, said

    config.write_text("maglevTableSize: 2039\n")
    said = start_refused(node, config)
    assert (
        f"pinned map {node.bpf_root}/weir_maglev was created with tables of 1021 entries, this agent is "
        "configured for 2039 (maglevTableSize)" in said
    ), said

    # Nothing was torn down: the pods still reach each other on the programs and maps already there.
    assert ping_failures(pods[0], addresses) == []

    config.write_text("conntrackMax: 131072\nmaglevTableSize: 2039\n")
    for pin in ("weir_ct", "weir_maglev"):
        (node.bpf_root / pin).unlink()
    node.start_agent(f"--config={config}", "--datapath_only")
    assert ping_failures(pods[0], addresses) == []
    # And the node's next agent with the same values starts as any restart does.
    node.stop_agent()
    node.start_agent(f"--config={config}", "--datapath_only")
    assert node.agent.poll() is None
    assert ping_failures(pods[0], addresses) == []
