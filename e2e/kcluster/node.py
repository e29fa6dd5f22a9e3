"""One cluster node: a network namespace plus a private mount namespace (held by a process that
sleeps), with its own containerd (Debian's 1.6) and an upstream kubelet started inside both.

Why a mount namespace: two kubelets and two containerds on one filesystem collide on hard-coded
paths (/var/lib/kubelet, /run/containerd, /var/log/pods, /var/lib/cni), and kubelet writes global
sysctls at start. Inside the node's mount namespace those paths are bind mounts of the node's own
directories, the sysctls kubelet checks are files pre-filled with the values it wants
(protectKernelDefaults: it then only reads them), the CNI dirs are the standard /opt/cni/bin and
/etc/cni/net.d (so the Helm chart's defaults work), /sys/fs/bpf is a bpffs of the node's own, and
the node's cgroup2 subtree is mounted at /run/weir/cgroupv2 for weir's socket load balancing. The
machine sees none of it; the mount points are empty directories. What the scripts do and why:
docs/cluster.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from e2e.kcluster import topology

# Directories that must exist on the machine as mount points inside a node's mount namespace.
MOUNT_POINTS = [
    "/run/containerd",
    "/var/lib/kubelet",
    "/var/log/pods",
    "/var/log/containers",
    "/var/lib/cni",
    "/opt/cni/bin",
    "/etc/cni/net.d",
    "/run/weir/cgroupv2",
]
CGROUP_V1 = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd"]
CGROUP_ROOT = Path("/sys/fs/cgroup")
# kubelet's global sysctls, with the values it insists on (pkg/kubelet/cm/container_manager_linux.go).
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
CNI_PLUGINS = ["loopback", "host-local"]  # what a node OS ships; weir's image installs weir and portmap

INIT_SCRIPT = r"""#!/bin/bash
# Runs as the holder of node {name}'s mount namespace (already unshared, private propagation).
set -euo pipefail
N={dir}
mount -t tmpfs -o mode=0711 tmpfs /run/containerd
mount --bind $N/varlibkubelet /var/lib/kubelet
mount --bind $N/podlogs /var/log/pods
mount --bind $N/containerlogs /var/log/containers
mount --bind $N/varlibcni /var/lib/cni
mount --bind $N/cni/bin /opt/cni/bin
mount --bind $N/cni/net.d /etc/cni/net.d
mount -t bpf bpf /sys/fs/bpf
# The chart mounts the bpffs with Bidirectional propagation (pins made in the agent's container
# must be seen by the CNI plugin on the node), which needs a shared mount, as on a systemd host.
mount --make-shared /sys/fs/bpf
mount --bind /sys/fs/cgroup/unified/{name} /run/weir/cgroupv2
{sysctl_mounts}
ln -sf $N/containerd/containerd.sock /run/containerd/containerd.sock
echo "ready pid $$"
exec sleep infinity
"""

CONTAINERD_CONFIG = """version = 2
root = "{dir}/containerd/root"
state = "{dir}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{dir}/containerd/containerd.sock"
[ttrpc]
  address = "{dir}/containerd/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{dir}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  stream_server_address = "127.0.0.1"
  netns_mounts_under_state_dir = true
  # No CAP_SYS_RESOURCE in this sandbox: runc cannot lower oom_score_adj below containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
"""

KUBELET_CONFIG = """apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /{name}
containerRuntimeEndpoint: unix://{dir}/containerd/containerd.sock
imageServiceEndpoint: unix://{dir}/containerd/containerd.sock
failSwapOn: false
protectKernelDefaults: true
address: {ip}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
clusterDNS: [10.96.0.10]
clusterDomain: cluster.local
authentication: {{anonymous: {{enabled: false}}, webhook: {{enabled: true}}, x509: {{clientCAFile: {ca}}}}}
authorization: {{mode: Webhook}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {{memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}}
serializeImagePulls: false
rotateCertificates: false
"""


class Node:
    def __init__(self, index: int, root: Path):
        self.index = index
        self.name = topology.node_name(index)
        self.ip = topology.node_ip(index)
        self.dir = root / f"node{index}"
        self.logs = self.dir / "logs"

    # -- processes ----------------------------------------------------------------------------------

    def pid(self, what: str) -> int | None:
        f = self.dir / f"{what}.pid"
        try:
            return int(f.read_text())
        except (OSError, ValueError):
            return None

    def run(
        self, *argv: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        """A command in the node's network and mount namespaces."""
        holder = self.pid("holder")
        res = subprocess.run(
            ["nsenter", "-t", str(holder), "-m", "-n", "--", *argv],
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
        )
        if check and res.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}")
        return res

    def _spawn(self, what: str, argv: list[str], env: dict | None = None) -> int:
        log = open(self.logs / f"{what}.log", "ab")
        proc = subprocess.Popen(
            ["nsenter", "-t", str(self.pid("holder")), "-m", "-n", "--", *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
        (self.dir / f"{what}.pid").write_text(str(proc.pid))
        return proc.pid

    # -- up -----------------------------------------------------------------------------------------

    def make_cgroups(self) -> None:
        for h in CGROUP_V1:
            (CGROUP_ROOT / h / self.name).mkdir(exist_ok=True)
        for f in ("cpuset.cpus", "cpuset.mems"):
            (CGROUP_ROOT / "cpuset" / self.name / f).write_text((CGROUP_ROOT / "cpuset" / f).read_text())
        (CGROUP_ROOT / "unified" / self.name).mkdir(exist_ok=True)

    def start_holder(self) -> None:
        for d in (
            "containerd/root",
            "containerd/state",
            "cni/bin",
            "cni/net.d",
            "logs",
            "opt",
            "varlibkubelet",
            "podlogs",
            "containerlogs",
            "varlibcni",
            "sysctl",
        ):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        mounts = []
        for key, value in KUBELET_SYSCTLS.items():
            f = self.dir / "sysctl" / key.replace("/", "_")
            f.write_text(value + "\n")
            mounts.append(f"mount --bind {f} /proc/sys/{key}")
        script = self.dir / "init.sh"
        script.write_text(INIT_SCRIPT.format(name=self.name, dir=self.dir, sysctl_mounts="\n".join(mounts)))
        script.chmod(0o755)
        log = open(self.logs / "init.log", "wb")
        proc = subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{self.name}",
                "--",
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                str(script),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        (self.dir / "holder.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + 20
        while "ready pid" not in (self.logs / "init.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name}: mount namespace setup failed:\n" f"{(self.logs / 'init.log').read_text()}"
                )
            time.sleep(0.1)
        # The holder is `unshare`'s child after exec: nsenter -t needs the process in the namespaces.
        text = (self.logs / "init.log").read_text()
        (self.dir / "holder.pid").write_text(text.split("ready pid ")[1].split()[0])

    def install_cni_plugins(self, plugin_dir: Path = Path("/usr/lib/cni")) -> None:
        for plugin in CNI_PLUGINS:
            target = self.dir / "cni/bin" / plugin
            target.write_bytes((plugin_dir / plugin).read_bytes())
            target.chmod(0o755)

    def start_containerd(self, pause_image: str) -> None:
        config = self.dir / "containerd/config.toml"
        config.write_text(CONTAINERD_CONFIG.format(dir=self.dir, pause_image=pause_image))
        self._spawn("containerd", ["containerd", "--config", str(config)])
        sock = self.dir / "containerd/containerd.sock"
        deadline = time.monotonic() + 30
        while not sock.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: containerd did not start:\n{self.tail('containerd')}")
            time.sleep(0.2)

    def import_image(self, archive: Path) -> None:
        self.ctr("images", "import", str(archive), timeout=300)

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return self.run(
            "ctr", "-a", str(self.dir / "containerd/containerd.sock"), "-n", "k8s.io", *args, timeout=timeout
        )

    def start_kubelet(self, kubelet: Path, kubeconfig: Path, ca: Path) -> None:
        config = self.dir / "kubelet-config.yaml"
        config.write_text(KUBELET_CONFIG.format(name=self.name, dir=self.dir, ip=self.ip, ca=ca))
        self._spawn(
            "kubelet",
            [
                str(kubelet),
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                "--root-dir=/var/lib/kubelet",
                f"--hostname-override={self.name}",
                f"--node-ip={self.ip}",
                "--v=1",
            ],
        )

    def tail(self, what: str, lines: int = 30) -> str:
        try:
            return "\n".join((self.logs / f"{what}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- down ---------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stops kubelet, every container process, containerd and the holder (which drops every
        mount), then removes the node's cgroups. Safe on a half-made node."""
        _kill(self.pid("kubelet"))
        for h in ("memory", "pids", "unified"):
            for procs in sorted((CGROUP_ROOT / h / self.name).rglob("cgroup.procs"), reverse=True):
                try:
                    for pid in procs.read_text().split():
                        _kill(int(pid), signal.SIGKILL, wait=False)
                except OSError:
                    pass
        _kill(self.pid("containerd"))
        # Shims re-parent to init when containerd goes; they end when their container has.
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    cmdline = (proc / "cmdline").read_bytes()
                except OSError:
                    continue
                if b"containerd-shim" in cmdline and str(self.dir).encode() in cmdline:
                    _kill(int(proc.name), signal.SIGKILL, wait=False)
        _kill(self.pid("holder"))
        for h in [*CGROUP_V1, "unified"]:
            base = CGROUP_ROOT / h / self.name
            if not base.exists():
                continue
            for d in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                _rmdir_cgroup(d)
            _rmdir_cgroup(base)


def _kill(pid: int | None, sig: int = signal.SIGTERM, wait: bool = True, timeout: float = 15) -> None:
    if not pid:
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return
        except (ProcessLookupError, OSError):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _rmdir_cgroup(d: Path) -> None:
    for _ in range(50):
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
