"""The NetworkPolicy truth-table lab: weirlab/netpol_model.py's namespaces x, y, z and pods a, b, c on a
two-node lab cluster (weirlab/cluster.py, agents in standalone mode on one manifest directory), pods
wired by the real weir CNI plugin, an echo server per pod on TCP and UDP ports 80 and 81, and a
Service per pod. Probes run inside the pods (or a node), all of a source's at once, and are compared
with the model.

Policies, pod labels and namespace labels change by writing and removing manifest files, as an API
watch would deliver them; wait_for_model() then polls the matrix until it matches or a deadline passes.

Which agent flags and CNI config turn enforcement on is not settled while the datapath is being built:
policy_support() finds it (see its docstring), so the tests need no edit when it lands.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import yaml

from weirlab import netpol_model as model
from weirlab.cluster import CLIENT_IP, CLIENT_IP6, Cluster, endpoint_slice_yaml, node_ip, node_ip6, service_yaml
from weirlab.lab import NETCHECK, WEIR_AGENT, Lab, Node, Pod, in_netns, run

PROBE_TIMEOUT = 1.0  # seconds per probe; a denied TCP probe costs one
SOURCE_PORTS = (20000, 60000)  # each probe from a source takes the next port of this range


@dataclass
class PolicySupport:
    """Whether the agent enforces NetworkPolicy, and how to ask it to."""

    enabled: bool
    reason: str
    agent_args: list[str] = field(default_factory=list)
    cni_conf: dict = field(default_factory=dict)


def policy_support() -> PolicySupport:
    """WEIR_NETPOL_E2E=1 says the agent enforces (0: it does not); otherwise a weir-agent flag with
    "polic" (and not "audit") in its name says so. The agent gets WEIR_NETPOL_AGENT_ARGS (shell words)
    when set, else that flag turned on if it is a boolean that defaults to false. Every pod's CNI
    config gets the keys of WEIR_NETPOL_CNI_CONF (a JSON object), e.g. '{"policy": true}'."""
    # What weir's agent writes into the conflist when network policy is on (cni_config_writer).
    default_cni_conf = '{"policy": true, "policySocket": "@weir-policy"}'
    cni_conf = json.loads(os.environ.get("WEIR_NETPOL_CNI_CONF", default_cni_conf))
    forced = os.environ.get("WEIR_NETPOL_E2E")
    help_text = run([str(WEIR_AGENT), "--helpfull"], check=False).stdout if WEIR_AGENT.exists() else ""
    # absl: "    --name (description); default: value;" (the description may wrap onto more lines)
    flags = re.findall(r"^\s+--(\w*polic\w*) \((.*?)\);\s+default: ([^;]*);", help_text, re.M | re.S)
    flags = [f for f in flags if "audit" not in f[0]]  # audit mode drops nothing: not what these tests need
    if "WEIR_NETPOL_AGENT_ARGS" in os.environ:
        agent_args = shlex.split(os.environ["WEIR_NETPOL_AGENT_ARGS"])
    else:
        agent_args = [f"--{name}=true" for name, _, default in flags[:1] if default.strip() == "false"]
    if forced == "0":
        return PolicySupport(False, "WEIR_NETPOL_E2E=0", agent_args, cni_conf)
    if forced == "1":
        return PolicySupport(True, "WEIR_NETPOL_E2E=1", agent_args, cni_conf)
    if flags:
        return PolicySupport(True, f"weir-agent has --{flags[0][0]}", agent_args, cni_conf)
    return PolicySupport(
        False,
        "weir-agent does not enforce NetworkPolicy yet (no --*polic* flag in weir-agent --helpfull; set "
        "WEIR_NETPOL_E2E=1 to run these tests anyway, WEIR_NETPOL_AGENT_ARGS / WEIR_NETPOL_CNI_CONF for the "
        "flags and CNI config that turn it on)",
        agent_args,
        cni_conf,
    )


@dataclass
class MatrixRun:
    got: dict[model.Probe, bool]
    details: dict[model.Probe, str]
    seconds: float


class NetpolLab:
    """The lab. `self.model` is what the manifests say; the tests change both through the methods here."""

    def __init__(self, lab: Lab, support: PolicySupport, families=(4,)):
        self.lab = lab
        self.support = support
        self.families = families
        self.cluster = Cluster(lab, 2, agent_args=support.agent_args)
        self.nodes: dict[str, Node] = {n.name: n for n in self.cluster.nodes}
        self.model = model.Cluster.upstream()
        self.model.node_addresses = {
            f"node{i}": [node_ip(i), node_ip6(i)] for i in range(1, len(self.cluster.nodes) + 1)
        }
        self.pods: dict[str, Pod] = {}
        self.pod_nodes: dict[str, Node] = {}
        self.next_source_port: dict[str, int] = {}
        self.node_servers = False
        for ns, ns_labels in self.model.namespaces.items():
            self.write(f"ns-{ns}", model.namespace_manifest(ns, ns_labels))
        # The Pod objects come first, without addresses, as the API has them before the CNI runs.
        for key, mpod in self.model.pods.items():
            self.write(self.pod_file(key), model.pod_manifest(mpod, with_ips=False))
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(self.add_pod, list(self.model.pods)))
        for key in self.model.pods:
            self.serve(key)
        for key, mpod in self.model.pods.items():
            self.write(self.pod_file(key), model.pod_manifest(mpod))
            pod = self.pods[key]
            self.cluster.apply(
                f"svc-{mpod.namespace}-{mpod.name}",
                service_yaml(
                    model.service_name(mpod),
                    model.service_ports(),
                    cluster_ip=model.cluster_ip(mpod),
                    namespace=mpod.namespace,
                )
                + "---\n"
                + endpoint_slice_yaml(
                    model.service_name(mpod),
                    [(pod, mpod.node)],
                    [(name, port, proto) for name, port, _, proto in model.service_ports()],
                    namespace=mpod.namespace,
                ),
            )
        for mpod in self.model.pods.values():
            self.cluster.wait_for_frontend(f"{model.cluster_ip(mpod)}:80", backends=1, timeout=10)

    # -----------------------------------------------------------------------------------------------
    # Objects

    @staticmethod
    def pod_file(key: str) -> str:
        return "pod-" + key.replace("/", "-")

    def write(self, name: str, manifest: dict) -> None:
        self.cluster.apply(name, yaml.safe_dump(manifest, sort_keys=False))

    def cni_conf(self, node: Node) -> dict:
        return node.conf(**self.support.cni_conf)

    def cni_args(self, key: str, container_id: str) -> str:
        namespace, name = key.split("/")
        return (
            f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};"
            f"K8S_POD_INFRA_CONTAINER_ID={container_id}"
        )

    def make_pod_netns(self, key: str) -> tuple[Node, str, str]:
        mpod = self.model.pods[key]
        node = self.nodes[mpod.node]
        netns = self.lab.make_netns(f"{node.name}-{mpod.namespace}-{mpod.name}")
        return node, netns, f"{self.lab.id}-{mpod.namespace}-{mpod.name}"

    def add_pod(self, key: str, netns: tuple[Node, str, str] | None = None) -> Pod:
        """CNI ADD of a model pod (its namespace made first unless given); records its addresses in the
        model. The Pod manifest is the caller's to update."""
        node, netns_name, container_id = netns or self.make_pod_netns(key)
        result = node.cni(
            "ADD", container_id, netns_name, conf=self.cni_conf(node), cni_args=self.cni_args(key, container_id)
        )
        if not result.ok:
            raise RuntimeError(f"ADD {key} failed ({result.code}): {result.stdout}{result.stderr}")
        pod = Pod(key.replace("/", "-"), netns_name, container_id, "eth0", result.json)
        node.pods[pod.name] = pod
        self.pods[key] = pod
        self.pod_nodes[key] = node
        self.model.pods[key].ips = pod.addresses()
        return pod

    def serve(self, key: str, netns: str | None = None) -> subprocess.Popen:
        """The pod's echo server on TCP and UDP 80 and 81; every reply starts with "ns/pod: "."""
        proc = self.lab.spawn(
            in_netns(netns or self.pods[key].netns, ["python3", str(NETCHECK), "serve", "80,81", key]),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"echo server in {key} did not start")
        return proc

    def serve_on_nodes(self) -> None:
        """Echo servers in the nodes' own namespaces (for probes to a node's address)."""
        if self.node_servers:
            return
        for name, node in self.nodes.items():
            proc = self.lab.spawn(
                in_netns(node.netns, ["python3", str(NETCHECK), "serve", "80,81", name]),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"echo server on {name} did not start")
        self.node_servers = True

    def add_outside_client(self) -> str:
        """The lab's outside client (weirlab/cluster.py, on the fabric, in no pod CIDR) as a source and
        destination named "client": routes to each node's pods through that node, and an echo server."""
        client = self.cluster.client
        for i, node in enumerate(self.cluster.nodes, start=1):
            v4, v6 = node.pod_cidrs
            run(in_netns(client, ["ip", "route", "add", v4, "via", node_ip(i)]))
            run(in_netns(client, ["ip", "-6", "route", "add", v6, "via", node_ip6(i)]))
        self.model.outside["client"] = [CLIENT_IP, CLIENT_IP6]
        proc = self.lab.spawn(
            in_netns(client, ["python3", str(NETCHECK), "serve", "80,81", "client"]),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("echo server in the outside client did not start")
        return "client"

    def apply_policy(self, policy: dict) -> None:
        meta = policy["metadata"]
        self.model.policies[f"{meta['namespace']}/{meta['name']}"] = policy
        self.write(f"netpol-{meta['namespace']}-{meta['name']}", policy)

    def delete_policy(self, namespace: str, name: str) -> None:
        self.model.policies.pop(f"{namespace}/{name}")
        self.cluster.delete(f"netpol-{namespace}-{name}")

    def set_pod_labels(self, key: str, pod_labels: dict[str, str]) -> None:
        self.model.pods[key].labels = dict(pod_labels)
        self.write(self.pod_file(key), model.pod_manifest(self.model.pods[key]))

    def set_namespace_labels(self, namespace: str, ns_labels: dict[str, str]) -> None:
        self.model.namespaces[namespace] = dict(ns_labels)
        self.write(f"ns-{namespace}", model.namespace_manifest(namespace, ns_labels))

    # -----------------------------------------------------------------------------------------------
    # Probes

    def all_probes(self, dest_types=(model.DEST_POD, model.DEST_SERVICE), families=None) -> list[model.Probe]:
        keys = list(self.model.pods)
        return model.probes(keys, keys, dest_types=dest_types, families=families or self.families)

    def target(self, probe: model.Probe) -> str:
        if probe.dest_type != model.DEST_POD:
            return model.cluster_ip(self.model.pods[probe.destination])
        if probe.destination in self.model.pods:
            return self.pods[probe.destination].addresses(probe.family)[0]
        if probe.destination in self.model.outside:
            return [a for a in self.model.outside[probe.destination] if (":" in a) == (probe.family == 6)][0]
        return node_ip(int(probe.destination[4:])) if probe.family == 4 else node_ip6(int(probe.destination[4:]))

    def source_port(self, source: str) -> int:
        """A port the source has not used in this lab: an earlier probe's conntrack entries (weir's, which
        outlive the connection) never decide a later one."""
        low, high = SOURCE_PORTS
        port = self.next_source_port.get(source, low)
        self.next_source_port[source] = low if port + 1 >= high else port + 1
        return port

    def _command(self, source: str, in_cgroup: bool, batch: list) -> list[str]:
        cmd = ["python3", str(NETCHECK), "probe", str(PROBE_TIMEOUT), json.dumps(batch)]
        if source in self.model.pods:
            netns, node = self.pods[source].netns, self.pod_nodes[source]
        elif source in self.model.outside:
            return in_netns(self.cluster.client, cmd)
        else:
            netns, node = self.nodes[source].netns, self.nodes[source]
        return self.cluster.node_cgroup_cmd(node, netns, cmd) if in_cgroup else in_netns(netns, cmd)

    def run_matrix(self, probe_list: list[model.Probe]) -> MatrixRun:
        """Every probe once: one client process per source (and per socket-LB cgroup membership), all at
        once; each client runs its probes in parallel too."""
        start = time.monotonic()
        batches: dict[tuple[str, bool], list] = {}
        by_id: dict[str, model.Probe] = {}
        for i, p in enumerate(probe_list):
            in_cgroup = p.dest_type == model.DEST_SERVICE_SOCKET_LB
            by_id[str(i)] = p
            batches.setdefault((p.source, in_cgroup), []).append(
                [i, p.protocol.lower(), self.target(p), p.port, self.source_port(p.source)]
            )

        def one(item):
            (source, in_cgroup), batch = item
            out = run(self._command(source, in_cgroup, batch), check=False, timeout=PROBE_TIMEOUT + 30)
            if out.returncode != 0:
                raise RuntimeError(f"probe client in {source} failed: {out.stderr}")
            return json.loads(out.stdout)

        replies: dict[str, str] = {}
        with ThreadPoolExecutor(max(1, len(batches))) as pool:
            for answer in pool.map(one, batches.items()):
                replies.update(answer)
        got, details = {}, {}
        for probe_id, p in by_id.items():
            reply = replies.get(probe_id, "error: no answer")
            got[p] = reply.startswith(f"{p.destination}: ")
            details[p] = "allowed" if got[p] else reply
        return MatrixRun(got, details, time.monotonic() - start)

    def check(self, probe_list: list[model.Probe]) -> tuple[dict, MatrixRun]:
        want = model.expected(self.model, probe_list)
        return want, self.run_matrix(probe_list)

    def wait_for_model(self, probe_list: list[model.Probe] | None = None, timeout: float = 15.0) -> dict:
        """Runs the matrix until it matches the model; raises AssertionError with the truth tables if the
        deadline passes first. Returns {seconds, rounds, matrix_seconds (the last run's)}."""
        probe_list = probe_list or self.all_probes()
        start = time.monotonic()
        rounds = 0
        while True:
            want, result = self.check(probe_list)
            rounds += 1
            if model.mismatches(want, result.got) == []:
                return {"seconds": time.monotonic() - start, "rounds": rounds, "matrix_seconds": result.seconds}
            if time.monotonic() - start > timeout:
                raise AssertionError(
                    f"after {time.monotonic() - start:.1f} s ({rounds} matrix runs):\n"
                    + model.describe_mismatch(want, result.got, result.details)
                )
            time.sleep(0.2)


# A prober for the time from CNI ADD to the first answered packet: waits for the target address on stdin,
# then tries TCP connections (each one's SYN gets `step` seconds) until one is answered or `limit` passes.
# Prints {"first": CLOCK_MONOTONIC of the first answer or null, "attempts", "answered"}; with `count_all`,
# it goes on until the limit and counts every answer (for a source that must never get through).
FIRST_PACKET_PROBER = r"""
import json, socket, sys, time
port, step, limit, count_all = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
print("ready", flush=True)
target = sys.stdin.readline().strip()
end = time.monotonic() + limit
first, attempts, answered = None, 0, 0
while time.monotonic() < end:
    attempts += 1
    try:
        with socket.create_connection((target, port), timeout=step) as s:
            s.sendall(b"ping")
            if s.recv(1024):
                answered += 1
                if first is None:
                    first = time.monotonic()
                if not count_all:
                    break
                time.sleep(0.01)
    except OSError:
        time.sleep(0.002)
print(json.dumps({"first": first, "attempts": attempts, "answered": answered}))
"""
