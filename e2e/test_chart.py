"""charts/weir as `helm install` would apply it: what `helm template` renders for the default values and
for non-default sets, parsed, and compared as text with golden renders (e2e/testdata/chart/*.golden.yaml;
WEIR_UPDATE_GOLDEN=1 rewrites them, then read the diff); values the schema refuses; `helm lint --strict`;
the rendered manifests/ being up to date. Needs only helm (scripts/setup.sh builds it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from weirlab.lab import REPO

CHART = REPO / "charts" / "weir"
TESTDATA = REPO / "e2e" / "testdata" / "chart"
CUSTOM_VALUES = TESTDATA / "values-custom.yaml"
PREVIOUS_VALUES = TESTDATA / "values-previous.yaml"
HELM = Path(os.environ.get("WEIR_TOOLS_DIR", "/var/cache/weir-tools")) / "bin" / "helm"

CUSTOM = {
    "image.tag": "1.2.3-test",
    "image.pullPolicy": "Never",
    "k8sServiceHost": "192.168.77.1",
    "k8sServicePort": "6443",
    "cni.confDir": "/etc/kubernetes/cni/net.d",
    "cni.binDir": "/usr/lib/cni",
    "cni.installPortmap": "false",
    "cgroup.hostRoot": "",
    "bpf.root": "/run/weir/bpffs",
    "agent.uplinks": "{eth1,bond0}",
    "agent.mtu": "1450",
    "agent.podDeviceMode": "netkit",
    "agent.masquerade": "false",
    "agent.nonMasqueradeCIDRs": "{10.0.0.0/8}",
    "agent.healthPort": "0",
}


def helm() -> str:
    path = HELM if HELM.exists() else shutil.which("helm")
    if not path:
        pytest.skip("helm not found: scripts/setup.sh builds it into /var/cache/weir-tools/bin")
    return str(path)


def template(*args: str, release: str = "weir", namespace: str = "kube-system") -> subprocess.CompletedProcess:
    return subprocess.run(
        [helm(), "template", release, str(CHART), "-n", namespace, *args], capture_output=True, text=True
    )


def render_text(*args: str, release: str = "weir", namespace: str = "kube-system") -> str:
    out = template(*args, release=release, namespace=namespace)
    assert out.returncode == 0, out.stderr
    return out.stdout


def render(*args: str, release: str = "weir", namespace: str = "kube-system") -> list[dict]:
    return [d for d in yaml.safe_load_all(render_text(*args, release=release, namespace=namespace)) if d]


def set_args(values: dict[str, str]) -> list[str]:
    args = []
    for key, value in values.items():
        args += ["--set-string" if key == "k8sServicePort" else "--set", f"{key}={value}"]
    return args


def one(docs: list[dict], kind: str) -> dict:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def pod_spec(docs):
    return one(docs, "DaemonSet")["spec"]["template"]["spec"]


def container(docs, name: str) -> dict:
    spec = pod_spec(docs)
    (found,) = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name]
    return found


def agent_config(docs) -> dict:
    return yaml.safe_load(one(docs, "ConfigMap")["data"]["agent.yaml"])


def mount_of(docs, container_name: str, host_path: str) -> dict:
    """The container's mount of the hostPath volume for `host_path`."""
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    mounts = [
        m
        for m in container(docs, container_name)["volumeMounts"]
        if volumes[m["name"]].get("hostPath", {}).get("path") == host_path
    ]
    assert len(mounts) == 1, f"{container_name} mounts host {host_path} {len(mounts)} times"
    return mounts[0]


@pytest.fixture(scope="module")
def default_docs():
    return render()


@pytest.fixture(scope="module")
def custom_docs():
    return render(*set_args(CUSTOM), release="edge", namespace="net-system")


@pytest.fixture(scope="module")
def file_docs():
    return render("-f", str(CUSTOM_VALUES), release="edge", namespace="net-system")


def test_lint_strict_passes():
    for args in ([], set_args(CUSTOM), ["-f", str(CUSTOM_VALUES)]):
        out = subprocess.run([helm(), "lint", "--strict", str(CHART), *args], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


def test_manifests_are_a_fresh_render():
    assert sorted(p.name for p in (REPO / "manifests").iterdir()) == [
        "weir.yaml"
    ], "manifests/ holds only the rendered chart"
    out = subprocess.run([str(REPO / "scripts" / "render-manifests.sh"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_app_version_is_the_image_version():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == (REPO / "VERSION").read_text().strip()


def test_defaults(default_docs):
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for doc in default_docs:
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == "kube-system", doc["metadata"]
    spec = pod_spec(default_docs)
    assert spec["hostNetwork"] is True
    # On every node, not-ready and control-plane ones included, and evicted last.
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["priorityClassName"] == "system-node-critical"
    for c in spec["initContainers"] + spec["containers"]:
        assert c["image"] == f"localhost/weir:{chart['appVersion']}"
        assert c["imagePullPolicy"] == "IfNotPresent"
    agent = container(default_docs, "agent")
    assert agent["securityContext"]["privileged"] is True
    assert "--daemonset=kube-system/weir" in agent["args"]
    assert agent["readinessProbe"]["httpGet"]["port"] == 9876
    assert agent["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert agent["livenessProbe"]["httpGet"]["path"] == "/livez"

    config = agent_config(default_docs)
    # Per-node facts and the API server are left to the agent's discovery / in-cluster defaults.
    for key in ("nodeAddresses", "uplinks", "mtu", "k8sServiceHost", "k8sServicePort", "nonMasqueradeCIDRs"):
        assert key not in config, key
    assert config["masquerade"] is True
    assert config["cniConfDir"] == mount_of(default_docs, "agent", "/etc/cni/net.d")["mountPath"]
    bpf = mount_of(default_docs, "agent", "/sys/fs/bpf")
    assert bpf["mountPropagation"] == "Bidirectional"
    # Same path inside and out: the host's CNI plugin reads bpfRoot from the conflist the agent writes.
    assert bpf["mountPath"] == "/sys/fs/bpf" and config["bpfRoot"] == "/sys/fs/bpf/weir"
    assert config["cgroupPath"] == "/run/weir/cgroupv2"
    assert mount_of(default_docs, "agent", "/sys/fs/cgroup")["mountPath"] == "/run/weir/cgroupv2"

    install = container(default_docs, "install-cni")
    bin_mount = mount_of(default_docs, "install-cni", "/opt/cni/bin")["mountPath"]
    assert {"name": "BIN_DIR", "value": bin_mount} in install["env"]
    script = install["command"][-1]
    assert "install_plugin /usr/local/bin/weir weir" in script
    assert "install_plugin /usr/lib/cni/portmap portmap" in script


def test_rbac(default_docs, custom_docs):
    for docs, namespace, ds_name in ((default_docs, "kube-system", "weir"), (custom_docs, "net-system", "edge-weir")):
        account = one(docs, "ServiceAccount")["metadata"]
        assert account["namespace"] == namespace
        assert pod_spec(docs)["serviceAccountName"] == account["name"]
        for binding_kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
            binding = one(docs, binding_kind)
            assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"], "namespace": namespace}]
            assert binding["roleRef"]["kind"] == role_kind
            assert binding["roleRef"]["name"] == one(docs, role_kind)["metadata"]["name"]
        role = one(docs, "Role")
        assert role["metadata"]["namespace"] == namespace
        # What the agent's informers list and watch (proxy/source/kube_source.cc), and nothing else.
        assert role["rules"] == [{"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["list", "watch"]}]
        assert one(docs, "ClusterRole")["rules"] == [
            {"apiGroups": [""], "resources": ["services", "nodes"], "verbs": ["list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
            # NetworkPolicy (policy.enabled, on in both): every pod, namespace and policy.
            {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["list", "watch"]},
            {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["list", "watch"]},
        ]
        assert one(docs, "DaemonSet")["metadata"]["name"] == ds_name
        assert f"--daemonset={namespace}/{ds_name}" in container(docs, "agent")["args"]


def test_custom_values(custom_docs):
    for doc in custom_docs:
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == "net-system", doc["metadata"]
    spec = pod_spec(custom_docs)
    for c in spec["initContainers"] + spec["containers"]:
        assert c["image"] == "localhost/weir:1.2.3-test"
        assert c["imagePullPolicy"] == "Never"
    config = agent_config(custom_docs)
    assert config["k8sServiceHost"] == "192.168.77.1"
    assert str(config["k8sServicePort"]) == "6443"
    assert config["uplinks"] == ["eth1", "bond0"] and config["mtu"] == 1450
    assert config["podDeviceMode"] == "netkit"
    assert config["masquerade"] is False and config["nonMasqueradeCIDRs"] == ["10.0.0.0/8"]
    # The conf dir is where the agent has the host's configured dir mounted, wherever that is.
    conf_mount = mount_of(custom_docs, "agent", "/etc/kubernetes/cni/net.d")
    assert config["cniConfDir"] == conf_mount["mountPath"]
    bin_mount = mount_of(custom_docs, "install-cni", "/usr/lib/cni")["mountPath"]
    # Not mounted over the image's own /usr/lib/cni, where portmap comes from.
    assert bin_mount != "/usr/lib/cni"
    assert {"name": "BIN_DIR", "value": bin_mount} in container(custom_docs, "install-cni")["env"]
    assert "portmap" not in container(custom_docs, "install-cni")["command"][-1]
    assert config["bpfRoot"] == "/run/weir/bpffs/weir"
    assert mount_of(custom_docs, "agent", "/run/weir/bpffs")["mountPath"] == "/run/weir/bpffs"
    # cgroup.hostRoot empty: socket LB off, the host's cgroup tree not mounted.
    assert "cgroupPath" not in config
    assert not [v for v in spec["volumes"] if "cgroup" in v.get("hostPath", {}).get("path", "")]
    agent = container(custom_docs, "agent")
    assert not {"readinessProbe", "livenessProbe", "startupProbe"} & set(agent)
    assert config["healthPort"] == 0


def test_config_change_rolls_the_pods():
    def checksum(*args):
        return one(render(*args), "DaemonSet")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    base = checksum()
    assert checksum("--set", "agent.lbMode=dsr") != base
    assert checksum("--set", "k8sServiceHost=10.0.0.1") != base
    # Not a config change: the pods are replaced only because the pod template itself changed.
    assert checksum("--set", "image.pullPolicy=Always") == base


def test_agent_accepts_what_the_chart_writes(default_docs, custom_docs, file_docs):
    """weir-agent refuses unknown config keys and flags: everything the chart writes must be one it
    knows (read from the agent's sources, so the two cannot drift apart unnoticed)."""
    config_source = (REPO / "proxy" / "agent" / "agent_config.cc").read_text()
    known_keys = set(
        re.findall(
            r'"(\w+)"',
            config_source[
                config_source.index("kKnownKeys") : config_source.index("};", config_source.index("kKnownKeys"))
            ],
        )
    )
    known_flags = set(re.findall(r"ABSL_FLAG\([^,]+, (\w+),", (REPO / "proxy" / "agent_main.cc").read_text()))
    for docs in (default_docs, custom_docs, file_docs):
        unknown = set(agent_config(docs)) - known_keys
        assert not unknown, f"agent.yaml keys weir-agent does not know: {unknown}"
        flags = {arg[2:].split("=")[0] for arg in container(docs, "agent")["args"]}
        assert flags <= known_flags, f"flags weir-agent does not know: {flags - known_flags}"


# ---------------------------------------------------------------------------------------------------
# Golden renders: every change to what the chart renders shows up as a diff in review

GOLDEN = {
    "default": ([], "weir", "kube-system"),
    "custom": (["-f", str(CUSTOM_VALUES)], "edge", "net-system"),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_render(name):
    args, release, namespace = GOLDEN[name]
    rendered = render_text(*args, release=release, namespace=namespace)
    golden = TESTDATA / f"{name}.golden.yaml"
    if os.environ.get("WEIR_UPDATE_GOLDEN") == "1":
        golden.write_text(rendered)
    assert golden.exists(), f"{golden} missing: run WEIR_UPDATE_GOLDEN=1 python3 -m pytest e2e/test_chart.py"
    assert rendered == golden.read_text(), (
        f"helm template differs from {golden.name}: if the change is meant, run WEIR_UPDATE_GOLDEN=1 "
        f"python3 -m pytest -q e2e/test_chart.py and review the diff of {golden.relative_to(REPO)}"
    )


# ---------------------------------------------------------------------------------------------------
# values.schema.json


def schema_keys(schema: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, sub in schema.get("properties", {}).items():
        keys.add(prefix + key)
        keys |= schema_keys(sub, f"{prefix}{key}.")
    return keys


def value_keys(values: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in values.items():
        keys.add(prefix + key)
        # resources and labels are free-form maps whose defaults are empty; their schema is the API's.
        if isinstance(value, dict) and value:
            keys |= value_keys(value, f"{prefix}{key}.")
    return keys


def test_schema_covers_every_value():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = value_keys(values) - schema_keys(schema)
    assert not missing, f"values.yaml keys values.schema.json does not describe: {sorted(missing)}"
    assert value_keys(yaml.safe_load(CUSTOM_VALUES.read_text())) - schema_keys(schema) <= {
        "agent.resources.requests",
        "agent.resources.limits",
        "agent.resources.requests.cpu",
        "agent.resources.requests.memory",
        "agent.resources.limits.memory",
        "prometheus.serviceMonitor.labels.release",
    }


REJECTED = [
    (["--set", "agent.lbMode=bogus"], "at '/agent/lbMode': value must be one of 'snat', 'dsr', 'hybrid'"),
    (["--set", "agent.dsrDispatch=gre"], "at '/agent/dsrDispatch': value must be one of 'ipip', 'option'"),
    (["--set", "agent.podDeviceMode=ipvlan"], "at '/agent/podDeviceMode': value must be one of 'veth', 'netkit'"),
    (["--set", "agent.logLevel=verbose"], "at '/agent/logLevel': value must be one of"),
    (["--set", "image.pullPolicy=Sometimes"], "at '/image/pullPolicy': value must be one of"),
    (["--set-string", "agent.healthPort=9876"], "at '/agent/healthPort': got string, want integer"),
    (["--set", "agent.healthPort=70000"], "at '/agent/healthPort': maximum"),
    (["--set", "agent.maglevTableSize=1"], "at '/agent/maglevTableSize': minimum"),
    (["--set", "agent.conntrackMax=0"], "at '/agent/conntrackMax': minimum"),
    (["--set", "k8sServicePort=https"], "at '/k8sServicePort'"),
    (["--set", "agent.kubeProxyHealthzBindAddress=10256"], "at '/agent/kubeProxyHealthzBindAddress'"),
    (["--set", "prometheus.serviceMonitor.interval=often"], "at '/prometheus/serviceMonitor/interval'"),
    (["--set", "bpf.root=sys/fs/bpf"], "at '/bpf/root'"),
    # A typo fails instead of leaving the default in place.
    (["--set", "agent.lbmode=dsr"], "at '/agent': additional properties 'lbmode' not allowed"),
    (["--set", "prometheus.servicemonitor.enabled=true"], "additional properties 'servicemonitor' not allowed"),
]


@pytest.mark.parametrize("args,message", REJECTED, ids=[" ".join(a) for a, _ in REJECTED])
def test_schema_rejects(args, message):
    out = template(*args)
    assert out.returncode != 0, f"rendered with {args}"
    assert "values don't meet the specifications of the schema" in out.stderr, out.stderr
    assert message in out.stderr, out.stderr


def test_lint_rejects_a_bogus_lb_mode():
    out = subprocess.run(
        [helm(), "lint", "--strict", str(CHART), "--set", "agent.lbMode=bogus"], capture_output=True, text=True
    )
    assert out.returncode != 0 and "value must be one of 'snat', 'dsr', 'hybrid'" in out.stdout + out.stderr


# ---------------------------------------------------------------------------------------------------
# Metrics: scrape annotations, named ports, the optional ServiceMonitor


def test_metrics_port_and_scrape_annotations(default_docs):
    annotations = one(default_docs, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9876"
    assert annotations["prometheus.io/path"] == "/metrics"
    ports = {p["name"]: p for p in container(default_docs, "agent")["ports"]}
    assert ports["metrics"]["containerPort"] == 9876
    # kube-proxy's health check port, which load balancers poll; the agent serves it by default.
    assert ports["kube-proxy-hz"]["containerPort"] == 10256
    assert agent_config(default_docs)["kubeProxyHealthzBindAddress"] == "0.0.0.0:10256"
    assert not [d for d in default_docs if d["kind"] in ("ServiceMonitor", "Service")]

    off = render("--set", "prometheus.annotations=false")
    assert not any(
        k.startswith("prometheus.io/") for k in one(off, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    )
    # No health port: nothing to scrape, nothing to announce.
    no_port = render("--set", "agent.healthPort=0", "--set", "agent.kubeProxyHealthzBindAddress=")
    assert not any(
        k.startswith("prometheus.io/") for k in one(no_port, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    )
    assert "ports" not in container(no_port, "agent")


def test_service_monitor_only_when_enabled(file_docs):
    monitor = one(file_docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == "net-system"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "30s" and endpoint["scrapeTimeout"] == "10s"
    assert endpoint["metricRelabelings"] == [{"sourceLabels": ["__name__"], "regex": "go_.*", "action": "drop"}]
    # The ServiceMonitor finds the Service, the Service finds the agent pods, and the port name is
    # the agent container's.
    service = one(file_docs, "Service")
    assert service["spec"]["clusterIP"] == "None"
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    pod_labels = one(file_docs, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (service_port,) = service["spec"]["ports"]
    agent_ports = {p["name"]: p["containerPort"] for p in container(file_docs, "agent")["ports"]}
    assert service_port["targetPort"] == "metrics" and agent_ports["metrics"] == 9890
    assert service_port["name"] == endpoint["port"]

    refused = template("--set", "prometheus.serviceMonitor.enabled=true", "--set", "agent.healthPort=0")
    assert refused.returncode != 0
    assert "prometheus.serviceMonitor.enabled needs agent.healthPort" in refused.stderr, refused.stderr


def test_custom_values_file(file_docs):
    """What values-custom.yaml asks for reaches the agent's config and the pod."""
    config = agent_config(file_docs)
    assert config["lbMode"] == "hybrid" and config["dsrDispatch"] == "option"
    assert config["maglevTableSize"] == 16381 and config["conntrackMax"] == 524288
    assert config["kubeProxyHealthzBindAddress"] == "[::]:10266" and config["kubeProxyMetricsBindAddress"] == ""
    assert config["logLevel"] == "debug" and config["healthPort"] == 9890
    assert config["cniGCIntervalSeconds"] == 0 and config["manageForwarding"] is False
    assert config["socketLBHostOnly"] is True and config["socketLBTranslationEvents"] is True
    agent = container(file_docs, "agent")
    assert agent["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
    assert agent["readinessProbe"]["httpGet"]["port"] == 9890
    assert {p["name"]: p["containerPort"] for p in agent["ports"]} == {"metrics": 9890, "kube-proxy-hz": 10266}
    assert one(file_docs, "DaemonSet")["metadata"]["name"] == "weir-edge"
    assert "--daemonset=net-system/weir-edge" in agent["args"]


def previous_chart(directory: Path) -> Path:
    """The chart as an earlier release stored it, for what `helm upgrade --reuse-values` does: it
    renders the new templates with the old release's values.yaml in place of the new one, so values
    added since are missing rather than defaulted."""
    copy = directory / "weir"
    shutil.copytree(CHART, copy)
    (copy / "values.yaml").write_text(PREVIOUS_VALUES.read_text())
    return copy


def test_templates_render_the_previous_release_values(tmp_path):
    out = subprocess.run(
        [helm(), "template", "weir", str(previous_chart(tmp_path)), "-n", "kube-system"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    # The values missing take values.yaml's defaults: scrape annotations on, kube-proxy's port served
    # (the agent's own default), no ServiceMonitor.
    assert one(docs, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "9876"
    assert {p["name"]: p["containerPort"] for p in container(docs, "agent")["ports"]} == {
        "metrics": 9876,
        "kube-proxy-hz": 10256,
    }
    assert agent_config(docs)["kubeProxyHealthzBindAddress"] == "0.0.0.0:10256"
    assert "kubeProxyMetricsBindAddress" not in agent_config(docs)
    assert not [d for d in docs if d["kind"] in ("ServiceMonitor", "Service")]


def test_helm_install_into_a_real_api_server(tmp_path):
    """`helm install` as a user runs it, against an upstream kube-apiserver (no nodes, so no pods): the
    API accepts every object, and the agent's ServiceAccount may read what it watches, including its
    own DaemonSet, and write nothing. The control plane lives in a network namespace of its own."""
    from weirlab.kube.control_plane import ControlPlane, missing_binaries

    if missing_binaries(names=("etcd", "kube-apiserver", "kubectl")):
        pytest.skip("upstream Kubernetes binaries not built (scripts/setup.sh, WEIR_KUBE=1)")
    netns = f"wchart{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        with ControlPlane(tmp_path / "cp", netns=netns, address="127.0.0.1") as cp:

            def helm_in_cp(*args):
                return subprocess.run(
                    [
                        "nsenter",
                        f"--net=/run/netns/{netns}",
                        "--",
                        helm(),
                        *args,
                        "--kubeconfig",
                        str(cp.admin_kubeconfig),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    env={
                        **os.environ,
                        "HOME": str(tmp_path),
                        "HELM_CACHE_HOME": str(tmp_path / "hc"),
                        "HELM_CONFIG_HOME": str(tmp_path / "hcfg"),
                        "HELM_DATA_HOME": str(tmp_path / "hd"),
                    },
                )

            bogus = helm_in_cp("install", "bogus", str(CHART), "-n", "kube-system", "--set", "agent.lbMode=bogus")
            assert bogus.returncode != 0 and "at '/agent/lbMode': value must be one of" in bogus.stderr, bogus.stderr
            assert cp.kubectl("get", "daemonset", "bogus-weir", "-n", "kube-system", check=False).returncode != 0
            installed = helm_in_cp("install", "weir", str(CHART), "-n", "kube-system")
            assert installed.returncode == 0, installed.stderr
            custom = helm_in_cp(
                "install", "edge", str(CHART), "-n", "net-system", "--create-namespace", *set_args(CUSTOM)
            )
            assert custom.returncode == 0, custom.stderr

            for namespace, name in (("kube-system", "weir"), ("net-system", "edge-weir")):
                ds = cp.kubectl_json("get", "daemonset", name, "-n", namespace)
                assert ds["spec"]["template"]["spec"]["hostNetwork"] is True
                account = f"system:serviceaccount:{namespace}:{ds['spec']['template']['spec']['serviceAccountName']}"

                def can(*args):
                    out = cp.kubectl("auth", "can-i", f"--as={account}", *args, check=False).stdout.strip()
                    assert out in ("yes", "no"), out
                    return out == "yes"

                for verb in ("list", "watch"):
                    assert can(verb, "daemonsets.apps", "-n", namespace), verb
                    assert can(verb, "endpointslices.discovery.k8s.io", "-A"), verb
                    assert can(verb, "services", "-A") and can(verb, "nodes"), verb
                    for policy_input in ("pods", "namespaces", "networkpolicies.networking.k8s.io"):
                        assert can(verb, policy_input, "-A"), (verb, policy_input)
                assert not can("list", "daemonsets.apps", "-n", "default")
                assert not can("get", "pods", "-n", namespace)
                assert not can("create", "pods", "-n", namespace)
                assert not can("delete", "daemonsets.apps", "-n", namespace)
            # An operator's `helm upgrade --reuse-values` from a release of the chart before its newer values.
            old = helm_in_cp("install", "old", str(previous_chart(tmp_path)), "-n", "old-system", "--create-namespace")
            assert old.returncode == 0, old.stderr
            upgraded = helm_in_cp(
                "upgrade", "old", str(CHART), "-n", "old-system", "--reuse-values", "--set", "agent.logLevel=debug"
            )
            assert upgraded.returncode == 0, upgraded.stderr
            ds = cp.kubectl_json("get", "daemonset", "old-weir", "-n", "old-system")
            (agent,) = ds["spec"]["template"]["spec"]["containers"]
            assert {p["name"] for p in agent["ports"]} == {"metrics", "kube-proxy-hz"}

            uninstalled = helm_in_cp("uninstall", "weir", "-n", "kube-system", "--wait")
            assert uninstalled.returncode == 0, uninstalled.stderr
            assert cp.kubectl("get", "daemonset", "weir", "-n", "kube-system", check=False).returncode != 0
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
