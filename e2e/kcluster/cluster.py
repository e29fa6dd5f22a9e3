"""The two-node cluster: `up` builds what is missing (upstream binaries, images), makes the
namespaces, starts the control plane, containerd and kubelet on each node, installs weir with
`helm install` exactly as a user would (its chart, its image), deploys CoreDNS and waits until every
kube-system pod runs. `down` removes everything `up` made, also after a failed `up`.

kubectl and helm reach the API server only from inside the control plane's namespace (the machine's
own namespace has no route to the cluster, by design): `scripts/cluster.sh kubectl ...` and
`scripts/cluster.sh helm ...` run them there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from e2e.kcluster import images, topology
from e2e.kcluster.node import MOUNT_POINTS, Node

REPO = Path(__file__).resolve().parents[2]
TOOLS_DIR = images.TOOLS_DIR
KUBE_VERSION = images.KUBE_VERSION
KUBE_BIN = Path(os.environ.get("WEIR_KUBE_BIN_DIR", TOOLS_DIR / f"kube-{KUBE_VERSION}" / "bin"))
CLUSTER_BINARIES = "kube-apiserver kube-controller-manager kubectl kube-scheduler kubelet agnhost"
DEFAULT_ROOT = Path(os.environ.get("WEIR_CLUSTER_DIR", "/var/lib/weir-cluster"))
RELEASE, RELEASE_NAMESPACE = "weir", "kube-system"


def log(text: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def helm_binary() -> Path:
    for candidate in (TOOLS_DIR / "bin" / "helm", shutil.which("helm")):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise RuntimeError("helm not found (scripts/setup.sh builds it into $WEIR_TOOLS_DIR/bin)")


def image_ref(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    return manifest[0]["RepoTags"][0]


class Cluster:
    def __init__(self, root: Path = DEFAULT_ROOT, nodes: int = 2):
        self.root = root
        self.nodes = [Node(i, root) for i in range(1, nodes + 1)]
        self.cp_dir = root / "cp"
        self.kubeconfig = self.cp_dir / "work" / "admin.kubeconfig"
        self.timings: dict[str, float] = {}

    # -- commands in the control plane's namespace ------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        home = self.root / "home"
        env.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "HOME": str(home),
                "NO_PROXY": "*",
                "no_proxy": "*",
                "HELM_CACHE_HOME": str(home / "helm-cache"),
                "HELM_CONFIG_HOME": str(home / "helm-config"),
                "HELM_DATA_HOME": str(home / "helm-data"),
            }
        )
        return env

    def in_cp(
        self, argv: list[str], check: bool = True, input: str | None = None, capture: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        full = ["nsenter", f"--net=/run/netns/{topology.netns('cp')}", "--", *argv]
        res = subprocess.run(full, text=True, input=input, env=self._env(), timeout=timeout, capture_output=capture)
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:4])}... failed ({res.returncode}):\n{res.stderr}{res.stdout}")
        return res

    def kubectl(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.in_cp([str(KUBE_BIN / "kubectl"), *args], **kw)

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def helm(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.in_cp([str(helm_binary()), *args], **kw)

    # -- up ---------------------------------------------------------------------------------------

    def is_up(self) -> bool:
        return (self.root / "UP").exists()

    def _step(self, name: str, fn):
        t0 = time.monotonic()
        log(f"{name} ...")
        result = fn()
        self.timings[name] = time.monotonic() - t0
        log(f"{name}: {self.timings[name]:.1f}s")
        return result

    def prepare(self) -> dict[str, Path]:
        """What up needs besides weir itself, built once and cached: upstream binaries, base images."""
        subprocess.run(
            [str(REPO / "weirlab/kube/build_upstream.sh")],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "KUBE_BINARIES": CLUSTER_BINARIES, "WEIR_TOOLS_DIR": str(TOOLS_DIR)},
        )
        archives = {
            "pause": images.pause_image(),
            "agnhost": images.agnhost_image(KUBE_BIN),
            "coredns": images.coredns_image(),
        }
        helm_binary()
        return archives

    def build(self) -> dict[str, Path]:
        """prepare(), then weir's image from this checkout (scripts/build-image.sh)."""
        archives = self.prepare()
        out = self.root / "images"
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(REPO / "scripts/build-image.sh"), "--out", str(out)], check=True, stdout=sys.stderr)
        archives["weir"] = out / "weir-image.tar"
        return archives

    def up(self, weir_values: list[str] = ()) -> Path:
        if self.is_up():
            log(f"already up ({self.root})")
            return self.kubeconfig
        if topology.existing() or self.root.exists():
            log("leftovers of an earlier cluster: removing them first")
            self.down()
        self.root.mkdir(parents=True)
        t_all = time.monotonic()
        try:
            archives = self._step("build (upstream binaries, images)", self.build)
            self._step("namespaces", lambda: topology.create(len(self.nodes)))
            self._step("the internet's resolver", self._start_internet_dns)
            self._step("nodes: mount namespaces, containerd, images", lambda: self._start_nodes(archives))
            self._step("control plane", self._start_control_plane)
            self._step("kubelets: nodes registered", self._start_kubelets)
            self._step("helm install weir: nodes Ready", lambda: self.install_weir(archives["weir"], weir_values))
            self._step("CoreDNS running", self._deploy_coredns)
        except BaseException:
            self._print_failure_logs()
            if os.environ.get("WEIR_CLUSTER_KEEP_FAILED") == "1":
                log(f"up failed: left as it is for a look (WEIR_CLUSTER_KEEP_FAILED=1); {self.root}")
            else:
                log("up failed: taking down what was made (logs are printed above)")
                self.down()
            raise
        self.timings["total"] = time.monotonic() - t_all
        (self.root / "timings.json").write_text(json.dumps(self.timings, indent=1))
        (self.root / "UP").write_text(str(self.kubeconfig))
        log(
            "up in {:.0f}s: {}".format(
                self.timings["total"], ", ".join(f"{k} {v:.0f}s" for k, v in self.timings.items() if k != "total")
            )
        )
        return self.kubeconfig

    def _start_nodes(self, archives: dict[str, Path]) -> None:
        created = []  # every directory made here, parents first, so that down removes them all
        for d in MOUNT_POINTS:
            missing = [p for p in [*reversed(Path(d).parents), Path(d)] if not p.is_dir()]
            for p in missing:
                p.mkdir()
                created.append(str(p))
        (self.root / "created-dirs.json").write_text(json.dumps(created))
        for node in self.nodes:
            node.dir.mkdir(parents=True, exist_ok=True)
            node.make_cgroups()
            node.start_holder()
            node.install_cni_plugins()
            node.start_containerd(images.PAUSE_IMAGE)
        for node in self.nodes:
            for archive in archives.values():
                node.import_image(archive)

    def _start_control_plane(self) -> None:
        self.cp_dir.mkdir(parents=True, exist_ok=True)
        log_file = open(self.cp_dir / "holder.log", "ab")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "e2e.kcluster.control_plane_holder",
                str(self.cp_dir),
                *(n.name for n in self.nodes),
            ],
            cwd=REPO,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        (self.cp_dir / "holder.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + 240
        while not (self.cp_dir / "READY").exists():
            if proc.poll() is not None or (self.cp_dir / "FAILED").exists() or time.monotonic() > deadline:
                raise RuntimeError(f"control plane did not start:\n{(self.cp_dir / 'holder.log').read_text()[-4000:]}")
            time.sleep(0.5)

    def _start_kubelets(self) -> None:
        work = self.cp_dir / "work"
        for node in self.nodes:
            node.start_kubelet(KUBE_BIN / "kubelet", work / f"kubelet-{node.name}.kubeconfig", work / "pki/ca.crt")
        deadline = time.monotonic() + 180
        while True:
            nodes = self.kubectl_json("get", "nodes").get("items", [])
            cidrs = {
                n["status"]["addresses"][0]["address"]: n["spec"].get("podCIDRs", [])
                for n in nodes
                if n.get("status", {}).get("addresses")
            }
            if len(nodes) == len(self.nodes) and all(cidrs.values()):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nodes not registered with pod CIDRs: {cidrs}\n" + "\n".join(n.tail("kubelet") for n in self.nodes)
                )
            time.sleep(1)
        topology.route_pod_cidrs(cidrs)

    def weir_values(self, archive: Path) -> list[str]:
        repository, tag = image_ref(archive).rsplit(":", 1)
        return [
            "--set",
            f"image.repository={repository}",
            "--set",
            f"image.tag={tag}",
            "--set",
            "image.pullPolicy=Never",
            "--set",
            f"k8sServiceHost={topology.CP_IP}",
            "--set",
            "k8sServicePort=6443",
            "--set",
            "cgroup.hostRoot=/run/weir/cgroupv2",
        ]

    def install_weir(self, archive: Path, extra: list[str] = ()) -> None:
        self.helm(
            "install",
            RELEASE,
            str(REPO / "charts/weir"),
            "-n",
            RELEASE_NAMESPACE,
            *self.weir_values(archive),
            *extra,
            "--wait",
            "--timeout",
            "5m",
        )
        self.kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=180s")

    # The public names the upstream DNS specs look up through the cluster's DNS (a PTR of 8.8.8.8,
    # an ExternalName Service for dns.google): the stand-in internet's host answers them, as a public
    # resolver would, and nothing else; the cluster's CoreDNS forwards to it.
    INTERNET_ZONE = "8.8.8.8 dns.google\n8.8.4.4 dns.google\n2001:4860:4860::8888 dns.google\n"

    def _start_internet_dns(self) -> None:
        work = self.root / "inet"
        work.mkdir(parents=True, exist_ok=True)
        (work / "hosts").write_text(self.INTERNET_ZONE)
        (work / "Corefile").write_text(f".:53 {{\n    hosts {work / 'hosts'}\n}}\n")
        log_file = open(work / "coredns.log", "ab")
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                topology.netns("inet"),
                str(images.coredns_binary()),
                "-conf",
                str(work / "Corefile"),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=work,
        )
        (work / "coredns.pid").write_text(str(proc.pid))

    def _stop_internet_dns(self) -> None:
        pid_file = self.root / "inet" / "coredns.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass

    def _deploy_coredns(self) -> None:
        manifest = (Path(__file__).parent / "coredns.yaml").read_text().replace("COREDNS_IMAGE", images.COREDNS_IMAGE)
        self.kubectl("apply", "-f", "-", input=manifest)
        self.kubectl("-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=240s")
        self.kubectl("-n", "kube-system", "wait", "--for=condition=Ready", "pod", "--all", "--timeout=240s")

    def _print_failure_logs(self) -> None:
        if self.kubeconfig.exists():
            for args in (
                ["get", "nodes,pods", "-A", "-o", "wide"],
                ["get", "events", "-A", "--sort-by=.lastTimestamp"],
            ):
                res = self.kubectl(*args, check=False, timeout=30)
                log(f"kubectl {' '.join(args)}:\n{res.stdout[-3000:]}{res.stderr[-500:]}")
            pods = self.kubectl("get", "pods", "-n", RELEASE_NAMESPACE, "-o", "name", check=False, timeout=30)
            for pod in pods.stdout.split():
                res = self.kubectl(
                    "logs", "-n", RELEASE_NAMESPACE, pod, "--all-containers", "--tail=20", check=False, timeout=30
                )
                log(f"{pod}:\n{res.stdout}{res.stderr}")
        for node in self.nodes:
            for what in ("kubelet", "containerd"):
                tail = node.tail(what, 15)
                if tail:
                    log(f"{node.name} {what} log tail:\n{tail}")
        holder_log = self.cp_dir / "holder.log"
        if holder_log.exists():
            log(f"control plane holder log tail:\n{holder_log.read_text()[-2000:]}")

    # -- down -------------------------------------------------------------------------------------

    def down(self) -> None:
        t0 = time.monotonic()
        for node in self.nodes:
            node.stop()
        stop = self.cp_dir / "STOP"
        holder = self.cp_dir / "holder.pid"
        if holder.exists():
            stop.parent.mkdir(parents=True, exist_ok=True)
            stop.write_text("")
            pid = int(holder.read_text())
            deadline = time.monotonic() + 60
            while (
                time.monotonic() < deadline
                and Path(f"/proc/{pid}").exists()
                and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
            ):
                time.sleep(0.2)
            if Path(f"/proc/{pid}").exists():
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        self._stop_internet_dns()
        topology.remove()
        created = self.root / "created-dirs.json"
        if created.exists():
            for d in reversed(json.loads(created.read_text())):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        shutil.rmtree(self.root, ignore_errors=True)
        log(f"down in {time.monotonic() - t0:.0f}s")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "up"
    cluster = Cluster()
    if command == "up":
        kubeconfig = cluster.up(argv[1:])
        print(kubeconfig)
    elif command == "down":
        cluster.down()
    elif command == "prepare":
        cluster.prepare()
    elif command in ("kubectl", "helm"):
        res = getattr(cluster, command)(*argv[1:], check=False, capture=False)
        return res.returncode
    elif command == "status":
        if not cluster.is_up():
            print("down")
            return 1
        cluster.kubectl("get", "nodes,pods", "-A", "-o", "wide", capture=False)
    else:
        print("usage: scripts/cluster.sh up [helm args]|down|status|prepare|kubectl ARGS|helm ARGS", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
