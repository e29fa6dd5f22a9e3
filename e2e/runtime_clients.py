"""Driving weir the way container runtimes do, through a real CNI library: the agent's own conflist
(weir-agent --cni_conf_dir), libcni v1.1.2 as containerd 1.6 has it (e2e/libcni_client, built by
scripts/setup.sh), and plugins that fail on purpose.

Every client runs inside the node's network namespace and keeps libcni's cache in the lab's directory:
nothing reaches the machine's namespace or its /var/lib/cni.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from weirlab.lab import BUILD, DEBIAN_CNI_DIR, TOOLS_DIR, Lab, Node, Pod, in_netns

LIBCNI_1_1_CLIENT = TOOLS_DIR / "bin" / "libcni-client-v1.1.2"
AGENT_HEALTH_PORT = 9876


def start_agent_with_conflist(node: Node, pod_cidrs: list[str], gc_interval: int = 60) -> Path:
    """Starts `node`'s agent so that it installs its conflist (into the node's directory, with the
    node's IPAM dataDir) and collects what pods leave without a DEL every `gc_interval` seconds;
    returns the conflist's path once it is there."""
    confdir = node.dir / "net.d"
    config = node.dir / "agent.yaml"
    config.write_text(
        "\n".join(
            [
                f"cniConfDir: {confdir}",
                f"cniDataDir: {node.data_dir}",
                f"cniGCIntervalSeconds: {gc_interval}",
                f"podCIDRs: {json.dumps(pod_cidrs)}",
                "healthHost: 127.0.0.1",
                f"healthPort: {AGENT_HEALTH_PORT}",
            ]
        )
        + "\n"
    )
    node.start_agent(f"--config={config}", "--datapath_only")
    conflist = confdir / "10-weir.conflist"
    deadline = time.monotonic() + 10
    while not conflist.exists():
        assert time.monotonic() < deadline, f"no conflist from the agent:\n{(node.dir / 'agent.log').read_text()}"
        time.sleep(0.05)
    return conflist


def agent_metrics(node: Node) -> str:
    """The agent's /metrics text, fetched inside the node's namespace."""
    script = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{AGENT_HEALTH_PORT}/metrics').read().decode())"
    return node.exec(["python3", "-c", script]).stdout


def metric_value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[1])
    return 0.0


def libcni_1_1(
    lab: Lab,
    node: Node,
    command: str,
    conflist: Path,
    pod_netns: str,
    container_id: str,
    cap_args: dict | None = None,
    path: str | None = None,
) -> subprocess.CompletedProcess:
    """`command` (add, check, del) of `conflist` through libcni v1.1.2, inside the node."""
    if not LIBCNI_1_1_CLIENT.exists():
        pytest.skip(f"{LIBCNI_1_1_CLIENT} missing (scripts/setup.sh builds it)")
    cache = lab.dir / "libcni-cache"
    cache.mkdir(exist_ok=True)
    cmd = [str(LIBCNI_1_1_CLIENT), "-cache", str(cache), "-netns", f"/run/netns/{pod_netns}", "-id", container_id]
    if cap_args is not None:
        cmd += ["-cap-args", json.dumps(cap_args)]
    env = {
        "PATH": path or os.environ.get("PATH", "") + ":/usr/sbin:/sbin",
        "CNI_PATH": f"{BUILD / 'cni'}:{DEBIAN_CNI_DIR}",
    }
    return subprocess.run(
        in_netns(node.netns, cmd + [command, str(conflist)]), text=True, capture_output=True, env=env, timeout=60
    )


def failing_plugin(lab: Lab, name: str = "always-fails") -> Path:
    """A CNI plugin (a shell script in the lab's directory) whose ADD and DEL always fail, as a chained
    plugin does that cannot handle the config; returns its directory, for CNI_PATH."""
    directory = lab.dir / "failing-plugins"
    directory.mkdir(exist_ok=True)
    script = directory / name
    script.write_text(f"""#!/bin/sh
cat >/dev/null
if [ "$CNI_COMMAND" = VERSION ]; then
  echo '{{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}}'
  exit 0
fi
echo '{{"cniVersion":"1.0.0","code":999,"msg":"{name}: '"$CNI_COMMAND"' fails on purpose"}}'
exit 1
""")
    script.chmod(0o755)
    return directory


def conflist_with(conflist: Path, directory: Path, replace_type: str, plugin: dict) -> Path:
    """A copy of `conflist` in `directory` where the plugin of type `replace_type` is `plugin`."""
    data = json.loads(conflist.read_text())
    data["plugins"] = [plugin if p["type"] == replace_type else p for p in data["plugins"]]
    directory.mkdir(exist_ok=True)
    out = directory / conflist.name
    out.write_text(json.dumps(data, indent=2))
    return out


def pod_from_client(node: Node, name: str, netns: str, container_id: str, out: subprocess.CompletedProcess) -> Pod:
    assert out.returncode == 0, f"ADD {name}: {out.stdout}{out.stderr}"
    pod = Pod(name, netns, container_id, "eth0", json.loads(out.stdout))
    node.pods[name] = pod
    return pod
