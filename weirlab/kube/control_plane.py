"""A throwaway Kubernetes control plane on the loopback, for tests: etcd + kube-apiserver (+ optionally
kube-controller-manager), built from upstream by weirlab/kube/build_upstream.sh.

    with ControlPlane(tmp_path / "cp") as cp:
        cp.kubectl("apply", "-f", "-", input=manifest)
        svc = cp.kubectl_json("get", "service", "web")

Everything listens on 127.0.0.1 only, on free ports picked at start; all state (etcd data, certificates,
kubeconfigs, logs) lives in `workdir`, which stop() removes, also when start() fails. Certificates are
made with the openssl CLI: a CA, the apiserver's serving certificate (SANs 127.0.0.1, the first service
IP 10.96.0.1 and the kubernetes.default names), client certificates for an admin (group system:masters),
for the "weir-agent" user (no group, no RBAC: tests grant what they need) and for
kube-controller-manager, and the service-account key pair.

Inside a network namespace (for agents in a lab, which must never reach the machine's own loopback):

    cp = ControlPlane(workdir, netns="wl123-api", address="192.168.50.200")

Then every process (etcd, kube-apiserver, kube-controller-manager, kubectl) and every readiness
probe (curl) runs in that namespace through `nsenter --net=/run/netns/<netns>`; kube-apiserver and
kube-controller-manager bind to `address` (which the namespace must already have), etcd to the
namespace's own 127.0.0.1; the serving certificate's SANs add `address`, and the kubeconfigs point at
https://<address>:<port>. The namespace is private, so the well-known ports are used (etcd 2379/2380,
kube-apiserver 6443, kube-controller-manager 10257) instead of free ones of the machine's loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

KUBE_VERSION = os.environ.get("KUBE_VERSION", "v1.37.1")
TOOLS_DIR = Path(os.environ.get("WEIR_TOOLS_DIR", "/var/cache/weir-tools"))
SERVICE_CIDR = "10.96.0.0/16"
FIRST_SERVICE_IP = "10.96.0.1"
LOOPBACK = "127.0.0.1"
# Ports inside a control plane's own network namespace (nothing else listens there).
NETNS_PORTS = {"etcd": 2379, "etcd_peer": 2380, "apiserver": 6443, "controller_manager": 10257}
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")


def kube_bin_dir() -> Path:
    """Where build_upstream.sh puts the binaries (WEIR_KUBE_BIN_DIR overrides)."""
    override = os.environ.get("WEIR_KUBE_BIN_DIR")
    return Path(override) if override else TOOLS_DIR / f"kube-{KUBE_VERSION}" / "bin"


def missing_binaries(bin_dir: Path | None = None, names=BINARIES) -> list[str]:
    bin_dir = bin_dir or kube_bin_dir()
    return [str(bin_dir / n) for n in names if not os.access(bin_dir / n, os.X_OK)]


def in_netns(netns: str | None, argv: list[str]) -> list[str]:
    """`argv` run inside the named network namespace (as is when `netns` is None)."""
    return ["nsenter", f"--net=/run/netns/{netns}", "--", *argv] if netns else list(argv)


def free_port() -> int:
    """A TCP port free on the loopback now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class ControlPlaneError(RuntimeError):
    pass


class _Proc:
    """A child process in its own session, its output in a log file."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]):
        self.name = name
        self.argv = argv
        self.log = log
        self._logf = open(log, "ab")
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._logf, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(10)
        else:
            # The session may hold helpers the child started; end them too.
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._logf.close()

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager when controller_manager=True) on 127.0.0.1,
    or on `address` inside the network namespace `netns` (see the module docstring).

    `controllers` is kube-controller-manager's --controllers list; `extra_apiserver_args` and
    `extra_controller_manager_args` are appended to those command lines.
    """

    def __init__(
        self,
        workdir: str | os.PathLike,
        bin_dir: str | os.PathLike | None = None,
        *,
        controller_manager: bool = False,
        controllers: str = "endpointslice-controller,endpointslice-mirroring-controller,"
        "serviceaccount-token-controller,serviceaccount-controller,"
        "root-ca-certificate-publisher-controller",
        extra_apiserver_args: list[str] | None = None,
        extra_controller_manager_args: list[str] | None = None,
        keep_workdir: bool = False,
        ready_timeout: float = 90.0,
        netns: str | None = None,
        address: str = LOOPBACK,
    ):
        self.workdir = Path(workdir)
        self.netns = netns
        self.address = address
        self.bin_dir = Path(bin_dir) if bin_dir else kube_bin_dir()
        self.with_controller_manager = controller_manager
        self.controllers = controllers
        self.extra_apiserver_args = list(extra_apiserver_args or [])
        self.extra_controller_manager_args = list(extra_controller_manager_args or [])
        self.keep_workdir = keep_workdir or os.environ.get("WEIR_KEEP_KUBE_WORKDIR") == "1"
        self.ready_timeout = ready_timeout

        self.pki = self.workdir / "pki"
        self.logs = self.workdir / "logs"
        self.admin_kubeconfig = self.workdir / "admin.kubeconfig"
        self.agent_kubeconfig = self.workdir / "weir-agent.kubeconfig"
        self.controller_manager_kubeconfig = self.workdir / "kube-controller-manager.kubeconfig"
        self.etcd_port = self.etcd_peer_port = self.apiserver_port = self.controller_manager_port = 0
        self.etcd: _Proc | None = None
        self.apiserver: _Proc | None = None
        self.controller_manager: _Proc | None = None
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE") and k not in ("ETCDCTL_API",)}
        self._env["KUBECACHEDIR"] = str(self.workdir / "kubectl-cache")
        self._env["HOME"] = str(self.workdir)
        self._env["NO_PROXY"] = self._env["no_proxy"] = "*"  # the API server is always ours, never via a proxy
        self._created_workdir = False

    # -- lifecycle -----------------------------------------------------------------------------------

    @property
    def server(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"https://{host}:{self.apiserver_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://{LOOPBACK}:{self.etcd_port}"

    def __enter__(self) -> "ControlPlane":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "ControlPlane":
        missing = missing_binaries(
            self.bin_dir,
            ("etcd", "kube-apiserver", "kubectl")
            + (("kube-controller-manager",) if self.with_controller_manager else ()),
        )
        if missing:
            raise ControlPlaneError(f"binaries missing: {missing} (run weirlab/kube/build_upstream.sh)")
        try:
            self.workdir.mkdir(parents=True, exist_ok=False)
            self._created_workdir = True
            self.logs.mkdir()
            self._make_pki()
            if self.netns:
                self.etcd_port, self.etcd_peer_port = NETNS_PORTS["etcd"], NETNS_PORTS["etcd_peer"]
                self.apiserver_port = NETNS_PORTS["apiserver"]
            else:
                self.etcd_port, self.etcd_peer_port = free_port(), free_port()
                self.apiserver_port = free_port()
            self._write_kubeconfigs()
            self.start_etcd()
            self.start_apiserver()
            if self.with_controller_manager:
                self.start_controller_manager()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Ends every process (controller-manager, apiserver, etcd) and removes the workdir."""
        for attr in ("controller_manager", "apiserver", "etcd"):
            proc = getattr(self, attr)
            if proc is not None:
                proc.stop()
                setattr(self, attr, None)
        if self._created_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._created_workdir = False

    # -- etcd ----------------------------------------------------------------------------------------

    def start_etcd(self) -> None:
        peer = f"http://{LOOPBACK}:{self.etcd_peer_port}"
        argv = [
            str(self.bin_dir / "etcd"),
            "--name=weir-e2e",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=weir-e2e={peer}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",  # a throwaway test store: no fsync, much faster on slow disks
            "--log-level=warn",
        ]
        self.etcd = _Proc("etcd", in_netns(self.netns, argv), self.logs / "etcd.log", self._env)
        self._wait(self.etcd, lambda: self._http_ok(f"{self.etcd_url}/health", b'"health":"true"'), "etcd /health")

    # -- kube-apiserver ------------------------------------------------------------------------------

    def apiserver_argv(self) -> list[str]:
        p = self.pki
        return [
            str(self.bin_dir / "kube-apiserver"),
            f"--bind-address={self.address}",
            f"--advertise-address={self.address}",
            f"--secure-port={self.apiserver_port}",
            f"--etcd-servers={self.etcd_url}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            # The endpoints of the `kubernetes` Service would be the advertise address, and
            # Endpoints may not hold a loopback address: keep the reconciler off.
            "--endpoint-reconciler-type=none",
            # Shut down in ~2s even with open watches (otherwise it waits --request-timeout, 60s,
            # for clients such as kube-controller-manager to drop their HTTP/2 connections).
            "--shutdown-send-retry-after=true",
            f"--cert-dir={p}",
            "--profiling=false",
            "--v=1",
            *self.extra_apiserver_args,
        ]

    def start_apiserver(self) -> None:
        if self.apiserver is not None and self.apiserver.alive():
            raise ControlPlaneError("kube-apiserver is already running")
        self.apiserver = _Proc(
            "kube-apiserver", in_netns(self.netns, self.apiserver_argv()), self.logs / "kube-apiserver.log", self._env
        )
        self._wait(self.apiserver, lambda: self._https_ok("/readyz", b"ok"), "kube-apiserver /readyz")

    def stop_apiserver(self) -> None:
        if self.apiserver is not None:
            self.apiserver.stop()
            self.apiserver = None

    def restart_apiserver(self) -> None:
        """Stops kube-apiserver and starts it again on the same port, with the same etcd."""
        self.stop_apiserver()
        self.start_apiserver()

    def readyz(self) -> bool:
        return self._https_ok("/readyz", b"ok")

    # -- kube-controller-manager ---------------------------------------------------------------------

    def start_controller_manager(self) -> None:
        p = self.pki
        self.controller_manager_port = NETNS_PORTS["controller_manager"] if self.netns else free_port()
        kc = self.controller_manager_kubeconfig
        argv = [
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            f"--bind-address={self.address}",
            f"--secure-port={self.controller_manager_port}",
            f"--cert-dir={p / 'kcm'}",
            f"--controllers={self.controllers}",
            f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={p / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
            *self.extra_controller_manager_args,
        ]
        self.controller_manager = _Proc(
            "kube-controller-manager", in_netns(self.netns, argv), self.logs / "kube-controller-manager.log", self._env
        )
        host = f"[{self.address}]" if ":" in self.address else self.address
        url = f"https://{host}:{self.controller_manager_port}/healthz"
        self._wait(
            self.controller_manager,
            lambda: self._https_ok(url, b"ok", verify=False),
            "kube-controller-manager /healthz",
        )

    # -- kubectl -------------------------------------------------------------------------------------

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess:
        """Runs the built kubectl (in the control plane's namespace, if any) with the admin kubeconfig
        (or `kubeconfig`)."""
        argv = in_netns(
            self.netns, [str(self.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig or self.admin_kubeconfig}", *args]
        )
        res = subprocess.run(argv, input=input, text=True, capture_output=True, env=self._env, timeout=timeout)
        if check and res.returncode != 0:
            raise ControlPlaneError(
                f"kubectl {' '.join(args)} failed ({res.returncode}):\n" f"{res.stderr}{res.stdout}"
            )
        return res

    def kubectl_json(self, *args: str, **kw) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json", **kw).stdout)

    # -- helpers -------------------------------------------------------------------------------------

    def _wait(self, proc: _Proc, ready, what: str) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise ControlPlaneError(
                    f"{proc.name} exited ({proc.popen.returncode}) before "
                    f"{what} was ready; log tail:\n{proc.tail()}"
                )
            if ready():
                return
            time.sleep(0.2)
        raise ControlPlaneError(
            f"{what} not ready after {self.ready_timeout:.0f}s; " f"{proc.name} log tail:\n{proc.tail()}"
        )

    def _http_ok(self, url: str, expect: bytes) -> bool:
        if self.netns:
            return self._curl_ok(url, expect, [])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=2) as r:
                return r.status == 200 and expect in r.read()
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _https_ok(self, path_or_url: str, expect: bytes, verify: bool = True) -> bool:
        url = path_or_url if path_or_url.startswith("https://") else self.server + path_or_url
        if self.netns:
            if verify:
                tls = [
                    "--cacert",
                    str(self.pki / "ca.crt"),
                    "--cert",
                    str(self.pki / "admin.crt"),
                    "--key",
                    str(self.pki / "admin.key"),
                ]
            else:
                tls = ["--insecure"]
            return self._curl_ok(url, expect, tls)
        if verify:
            ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
            ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        else:  # kube-controller-manager serves a self-signed certificate of its own
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
        try:
            with opener.open(url, timeout=2) as r:
                return r.status == 200 and expect in r.read()
        except (urllib.error.URLError, OSError, ValueError, ssl.SSLError):
            return False

    def _curl_ok(self, url: str, expect: bytes, extra: list[str]) -> bool:
        """A probe from inside the control plane's namespace: curl there, never a socket of ours."""
        argv = in_netns(
            self.netns, ["curl", "--silent", "--show-error", "--fail", "--noproxy", "*", "--max-time", "2", *extra, url]
        )
        try:
            res = subprocess.run(argv, capture_output=True, env=self._env, timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return res.returncode == 0 and expect in res.stdout

    def _openssl(self, *args: str) -> None:
        res = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=self.pki)
        if res.returncode != 0:
            raise ControlPlaneError(f"openssl {' '.join(args)} failed:\n{res.stderr}")

    def _make_pki(self) -> None:
        self.pki.mkdir(mode=0o700)
        o = self._openssl
        o("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
        o(
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-sha256",
            "-days",
            "2",
            "-subj",
            "/CN=weir-e2e-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "ca.crt",
        )
        extra = "" if self.address == LOOPBACK else f"IP:{self.address},"
        sans = (
            f"IP:{LOOPBACK},{extra}IP:{FIRST_SERVICE_IP},DNS:localhost,DNS:kubernetes,"
            "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
            "DNS:kubernetes.default.svc.cluster.local"
        )
        self._leaf("apiserver", "/CN=kube-apiserver", "serverAuth", sans)
        self._leaf("admin", "/O=system:masters/CN=weir-e2e-admin", "clientAuth")
        self._leaf("weir-agent", "/CN=weir-agent", "clientAuth")
        self._leaf("kube-controller-manager", "/CN=system:kube-controller-manager", "clientAuth")
        # Service-account token signing pair.
        o("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key")
        o("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        (self.pki / "kcm").mkdir()

    def _leaf(self, name: str, subject: str, eku: str, sans: str | None = None) -> None:
        ext = self.pki / f"{name}.ext"
        lines = [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            f"extendedKeyUsage={eku}",
        ]
        if sans:
            lines.append(f"subjectAltName={sans}")
        ext.write_text("\n".join(lines) + "\n")
        self._openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key")
        self._openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr")
        self._openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-sha256",
            "-days",
            "2",
            "-extfile",
            ext.name,
            "-out",
            f"{name}.crt",
        )

    def _kubeconfig(self, path: Path, user: str, cert: str) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "weir-e2e",
                    "cluster": {"server": self.server, "certificate-authority": str(self.pki / "ca.crt")},
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate": str(self.pki / f"{cert}.crt"),
                        "client-key": str(self.pki / f"{cert}.key"),
                    },
                }
            ],
            "contexts": [{"name": user, "context": {"cluster": "weir-e2e", "user": user}}],
            "current-context": user,
        }
        path.write_text(json.dumps(config, indent=2) + "\n")
        path.chmod(0o600)

    def _write_kubeconfigs(self) -> None:
        self._kubeconfig(self.admin_kubeconfig, "weir-e2e-admin", "admin")
        self._kubeconfig(self.agent_kubeconfig, "weir-agent", "weir-agent")
        self._kubeconfig(
            self.controller_manager_kubeconfig, "system:kube-controller-manager", "kube-controller-manager"
        )
