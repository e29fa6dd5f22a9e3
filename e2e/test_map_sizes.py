"""A map size changed between two agents on one node (conntrackMax, maglevTableSize in the chart's
values): the pinned maps outlive the agent and keep the size they were created with, so the new agent
migrates them (test_map_upgrade.py has the same under traffic). A pinned map it cannot migrate, here one
recorded as written by a newer weir, is refused: the agent exits saying which map and what to do, the
node's pods keep talking on what is pinned meanwhile, and once the operator removes that map's pin, as
docs/install.md says, the agent starts."""

from __future__ import annotations

from e2e.conftest import V4_CIDR, V6_CIDR, ping_failures, wait_until
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


def start_loaded(node, *args: str) -> str:
    """Starts the node's agent and waits until it loaded the datapath (the pinned programs of the
    agent before are there all along). What it logged."""
    log = node.dir / "agent.log"
    before = len(log.read_text()) if log.exists() else 0
    node.start_agent(*args)
    assert wait_until(lambda: "datapath pinned under" in log.read_text()[before:], timeout=15), log.read_text()
    assert node.agent.poll() is None
    return log.read_text()[before:]


def record_layout(node, map_name: str, version: int) -> None:
    """What an agent of a build with `version` of the map's layout leaves in the layouts record."""
    key = map_name.encode().ljust(16, b"\0")
    value = version.to_bytes(4, "little")
    run(
        ["bpftool", "map", "update", "pinned", str(node.bpf_root / "weir_layouts"), "key", "hex"]
        + [f"{b:02x}" for b in key]
        + ["value", "hex"]
        + [f"{b:02x}" for b in value]
    )


def test_changed_sizes_migrate_and_a_newer_layout_is_refused_until_the_pin_is_removed(lab):
    node = lab.add_node("node1", [V4_CIDR, V6_CIDR])
    pods = [node.add_pod("a"), node.add_pod("b")]
    addresses = pods[1].addresses()
    assert ping_failures(pods[0], addresses) == []
    node.stop_agent()

    config = node.dir / "agent.yaml"
    config.write_text("conntrackMax: 131072\nmaglevTableSize: 2039\nservicesMax: 32768\nbackendsMax: 131072\n")
    said = start_loaded(node, f"--config={config}", "--datapath_only")
    assert ping_failures(pods[0], addresses) == []
    assert "migrated pinned map weir_ct: 262144 entries, this agent is configured for 131072" in said, said
    assert "migrated pinned map weir_maglev: values of 4084 bytes, this agent's are 8156" in said, said
    for service_map in ("weir_services", "weir_backends", "weir_slots"):
        assert f"migrated pinned map {service_map}: " in said, said
    node.stop_agent()

    record_layout(node, "weir_ct", 99)
    said = start_refused(node, config)
    assert (
        f"pinned map {node.bpf_root}/weir_ct cannot be migrated to this agent's definition: it was created "
        "with layout version 99, this build's is 1: it was written by a newer weir" in said
    ), said
    assert "Run the build and conntrackMax the node was set up with" in said, said
    assert f"remove {node.bpf_root}/weir_ct and start the agent again (docs/install.md" in said, said

    # Nothing was torn down: the pods still reach each other on the programs and maps already there.
    assert ping_failures(pods[0], addresses) == []

    (node.bpf_root / "weir_ct").unlink()
    said = start_loaded(node, f"--config={config}", "--datapath_only")
    assert "migrated pinned map" not in said, said
    assert ping_failures(pods[0], addresses) == []
    # And the node's next agent with the same values starts as any restart does.
    node.stop_agent()
    said = start_loaded(node, f"--config={config}", "--datapath_only")
    assert "migrated pinned map" not in said, said
    assert ping_failures(pods[0], addresses) == []
