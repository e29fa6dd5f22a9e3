"""A lab of network namespaces for weir: nodes (each with its own bpffs, agent, CNI config and IPAM
state) and pods, all made by the lab and all removed by Lab.close(), on failure too.

Nothing here touches the machine's own namespace: nodes and pods are namespaces the lab created, and
every process that sends traffic runs inside one of them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("WEIR_BUILD_DIR", REPO / "build"))
WEIR_CNI = BUILD / "cni" / "weir"
WEIR_AGENT = BUILD / "proxy" / "weir-agent"
WEIRCTL = BUILD / "proxy" / "weirctl"
DEBIAN_CNI_DIR = Path("/usr/lib/cni")
TOOLS_DIR = Path(os.environ.get("WEIR_TOOLS_DIR", "/var/cache/weir-tools"))
NETCHECK = REPO / "weirlab" / "netcheck.py"


def run(cmd, check=True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, text=True, capture_output=True, **kwargs)


def in_netns(netns: str, cmd: list[str]) -> list[str]:
    """A command line that runs `cmd` inside the named namespace (nsenter: no sysfs remount)."""
    return ["nsenter", f"--net=/run/netns/{netns}", "--"] + cmd


@dataclass
class CniResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:
        return json.loads(self.stdout) if self.stdout.strip() else {}

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass
class Pod:
    name: str
    netns: str
    container_id: str
    ifname: str
    result: dict

    def addresses(self, family: int | None = None) -> list[str]:
        out = []
        for ip in self.result.get("ips", []):
            address = ip["address"].split("/")[0]
            if family is None or (family == 6) == (":" in address):
                out.append(address)
        return out

    @property
    def ipv4(self) -> str:
        return self.addresses(4)[0]

    @property
    def ipv6(self) -> str:
        return self.addresses(6)[0]

    def exec(self, cmd: list[str], check=True, **kwargs) -> subprocess.CompletedProcess:
        return run(in_netns(self.netns, cmd), check=check, **kwargs)

    def popen(self, cmd: list[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(in_netns(self.netns, cmd), **kwargs)


@dataclass
class Node:
    lab: "Lab"
    name: str
    netns: str
    dir: Path
    pod_cidrs: list[str]
    agent: subprocess.Popen | None = None
    pods: dict[str, Pod] = field(default_factory=dict)
    device_mode: str | None = None  # the plugin's "deviceMode" in conf(); None: the plugin's default
    agent_binary: Path = WEIR_AGENT  # another build's agent (benchmarks compare builds)

    @property
    def bpf_root(self) -> Path:
        return self.dir / "bpf" / "weir"

    @property
    def weirctl_binary(self) -> Path:
        """The weirctl of the build whose agent runs here (beside it): it reads the maps that agent
        pinned, whose layout another build's weirctl may not know."""
        sibling = Path(self.agent_binary).with_name("weirctl")
        return sibling if sibling.exists() else WEIRCTL

    @property
    def data_dir(self) -> Path:
        return self.dir / "ipam"

    def conf(self, **overrides) -> dict:
        conf = {
            "cniVersion": "1.1.0",
            "name": "weir",
            "type": "weir",
            "mtu": 1500,
            "podCIDRs": self.pod_cidrs,
            "bpfRoot": str(self.bpf_root),
            "dataDir": str(self.data_dir),
            "logFile": str(self.dir / "cni.log"),
        }
        if self.device_mode:
            conf["deviceMode"] = self.device_mode
        conf.update(overrides)
        return conf

    def exec(self, cmd: list[str], check=True, **kwargs) -> subprocess.CompletedProcess:
        return run(in_netns(self.netns, cmd), check=check, **kwargs)

    def start_agent(self, *extra: str) -> None:
        if not any(arg.startswith(("--manifests", "--kubeconfig", "--config")) for arg in extra):
            extra = ("--datapath_only", *extra)
        log = open(self.dir / "agent.log", "a")
        self.agent = subprocess.Popen(
            in_netns(self.netns, [str(self.agent_binary), f"--bpf_root={self.bpf_root}", *extra]),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        # Loading and verifying the programs takes about a second; far longer on a machine busy
        # with other builds, which is no failure of the agent's.
        deadline = time.monotonic() + 30
        while not (self.bpf_root / "progs" / "from_pod").exists():
            if self.agent.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"weir-agent on {self.name} did not become ready:\n" + (self.dir / "agent.log").read_text()
                )
            time.sleep(0.02)

    def stop_agent(self) -> None:
        if self.agent and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            try:
                self.agent.wait(5)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait()
        self.agent = None

    def cni(
        self,
        command: str,
        container_id: str = "",
        netns: str = "",
        ifname: str = "eth0",
        conf: dict | str | None = None,
        env: dict | None = None,
        plugin: Path = WEIR_CNI,
        cni_args: str = "",
    ) -> CniResult:
        """Invokes a CNI plugin inside this node's namespace exactly as a container runtime does."""
        stdin = conf if isinstance(conf, str) else json.dumps(conf if conf is not None else self.conf())
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CNI_COMMAND": command,
            "CNI_PATH": f"{plugin.parent}:{DEBIAN_CNI_DIR}",
        }
        if container_id:
            full_env["CNI_CONTAINERID"] = container_id
        if netns:
            full_env["CNI_NETNS"] = netns if netns.startswith("/") else f"/run/netns/{netns}"
        if ifname:
            full_env["CNI_IFNAME"] = ifname
        if cni_args:
            full_env["CNI_ARGS"] = cni_args
        full_env.update(env or {})
        proc = subprocess.run(
            in_netns(self.netns, [str(plugin)]), input=stdin, text=True, capture_output=True, env=full_env
        )
        return CniResult(proc.returncode, proc.stdout, proc.stderr)

    def add_pod(self, name: str, ifname: str = "eth0", conf: dict | None = None) -> Pod:
        netns = self.lab.make_netns(f"{self.name}-{name}")
        container_id = f"{self.lab.id}-{self.name}-{name}"
        result = self.cni("ADD", container_id, netns, ifname, conf)
        if not result.ok:
            raise RuntimeError(f"ADD {name} failed ({result.code}): {result.stdout}{result.stderr}")
        pod = Pod(name, netns, container_id, ifname, result.json)
        self.pods[name] = pod
        return pod

    def delete_pod(self, pod: Pod, conf: dict | None = None) -> CniResult:
        result = self.cni("DEL", pod.container_id, pod.netns, pod.ifname, conf)
        self.pods.pop(pod.name, None)
        return result

    def weirctl(self, *args: str) -> str:
        return self.exec([str(self.weirctl_binary), f"--bpf_root={self.bpf_root}", *args]).stdout


class Lab:
    """Namespaces are named '<lab id>-<role>' so that a crashed run's leftovers are recognisable."""

    def __init__(self, prefix: str = "wl"):
        self.id = f"{prefix}{os.getpid() % 100000}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"weir-{self.id}-"))
        self.netns: list[str] = []
        self.mounts: list[Path] = []
        self.nodes: dict[str, Node] = {}
        self.processes: list[subprocess.Popen] = []
        # Extra teardown steps (run first, newest first) for things built on top of the lab.
        self.cleanups: list = []

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def make_netns(self, role: str) -> str:
        name = f"{self.id}-{role}"
        run(["ip", "netns", "add", name])
        self.netns.append(name)
        run(in_netns(name, ["ip", "link", "set", "lo", "up"]))
        return name

    def add_node(
        self,
        name: str,
        pod_cidrs: list[str],
        start_agent: bool = True,
        device_mode: str | None = None,
        agent_binary: Path = WEIR_AGENT,
    ) -> Node:
        netns = self.make_netns(name)
        for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
            run(in_netns(netns, ["sysctl", "-qw", f"{key}=1"]))
        node_dir = self.dir / name
        (node_dir / "bpf").mkdir(parents=True)
        run(["mount", "-t", "bpf", "bpf", str(node_dir / "bpf")])
        self.mounts.append(node_dir / "bpf")
        node = Node(self, name, netns, node_dir, pod_cidrs, device_mode=device_mode, agent_binary=agent_binary)
        self.nodes[name] = node
        if start_agent:
            node.start_agent()
        return node

    def spawn(self, cmd: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, **kwargs)
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as error:  # teardown goes on: everything else must still be removed
                print(f"lab cleanup step failed: {error}")
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for node in self.nodes.values():
            node.stop_agent()
        # Deleting a pod's namespace deletes its veth end and so the host end, its routes and link.
        for name in reversed(self.netns):
            run(["ip", "netns", "delete", name], check=False)
        for mount in self.mounts:
            run(["umount", str(mount)], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def leftovers(lab_id: str) -> list[str]:
    """Namespaces and mounts of a lab that are still there (for the no-leak assertions)."""
    found = [n.split()[0] for n in run(["ip", "netns", "list"]).stdout.splitlines() if n.startswith(f"{lab_id}-")]
    found += [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if f"weir-{lab_id}-" in line]
    return found
