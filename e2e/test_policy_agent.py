"""The agent's NetworkPolicy control plane in standalone mode (weirlab, no cluster): it reads Namespace,
Pod and NetworkPolicy manifests, computes each local pod's policy and serves it on its policy socket
(`weirctl policy`), and CNI ADD asks it for a new pod's policy before returning. What the datapath
enforces is the datapath part's to test; here the agent's answers are what a user sees."""

from __future__ import annotations

import json
import re

import pytest

from e2e.conftest import wait_until
from e2e.test_kube_agent import API_IP, grant_agent_rbac, kube_apply
from weirlab.cluster import Cluster
from weirlab.kube.control_plane import ControlPlane, missing_binaries
from weirlab.lab import WEIRCTL

POLICY_LAB = """\
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: blue}}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {nodeName: node1, containers: [{name: web, ports: [{name: http, containerPort: 8080}]}]}
status: {phase: Running, podIPs: [{ip: 10.244.1.200}]}
---
apiVersion: v1
kind: Pod
metadata: {name: new, namespace: x, labels: {app: b}}
spec: {nodeName: node1}
status: {phase: Pending}
---
apiVersion: v1
kind: Pod
metadata: {name: broken, namespace: x}
spec: {nodeName: node1}
status: {podIPs: [{ip: not-an-address}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-b, namespace: x}
spec:
  podSelector: {matchLabels: {app: a}}
  ingress: [{from: [{podSelector: {matchLabels: {app: b}}}], ports: [{port: http}]}]
"""


def policy_json(cluster: Cluster, socket: str, *pod: str) -> dict:
    node = cluster.nodes[0]
    out = node.exec([str(WEIRCTL), f"--agent_socket={socket}", "policy", *pod, "-o", "json"], check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def endpoint(cluster: Cluster, socket: str, name: str) -> dict:
    found = [e for e in policy_json(cluster, socket).get("endpoints", []) if e["name"] == name]
    return found[0] if found else {}


def test_agent_computes_policy_from_manifests_and_answers_cni_add(lab):
    cluster = Cluster(lab, nodes=1, start_agents=False)
    node = cluster.nodes[0]
    # The default socket, abstract: in node1's network namespace, where the plugin and weirctl run too.
    socket = "@weir-policy"
    cluster.agent_args[node.name] += ["--network_policy=true"]
    cluster.apply("policy-lab", POLICY_LAB)
    cluster.start_agents()

    # a is isolated for ingress: from app=b (the pod `new`), on a's named port resolved to 8080.
    a = wait_until(lambda: endpoint(cluster, socket, "a"), timeout=10)
    assert a, (node.dir / "agent.log").read_text()
    assert a["addresses"] == ["10.244.1.200"] and a["labels"] == {"app": "a"}
    assert a["namespace_labels"] == {"kubernetes.io/metadata.name": "x", "team": "blue"}
    assert a["ingress"]["isolated"] and a["ingress"]["policies"] == ["x/allow-b"]
    assert a["ingress"]["mode"] == "enforce"
    new_identity = endpoint(cluster, socket, "new")["identity"]
    assert re.fullmatch(rf"identity {new_identity} \[ns x .*\{{app=b\}}\] TCP 8080", a["ingress"]["allowed"][0])
    assert not a["egress"]["isolated"]
    # The malformed pod is skipped; the rest applies.
    assert "broken" not in {e["name"] for e in policy_json(cluster, socket)["endpoints"]}
    table = node.exec([str(WEIRCTL), f"--agent_socket={socket}", "policy", "x/a"]).stdout
    assert "ingress: isolated by x/allow-b (enforced)" in table

    # CNI ADD of `new` asks the agent, which takes ADD's address as the pod's and answers.
    conf = node.conf(policySocket=socket, policyTimeoutMs=2000)
    pod_netns = lab.make_netns("node1-new")
    added = node.cni("ADD", f"{lab.id}-new", pod_netns, conf=conf, cni_args="K8S_POD_NAMESPACE=x;K8S_POD_NAME=new")
    assert added.ok, added.stderr + added.stdout
    address = added.json["ips"][0]["address"].split("/")[0]
    cni_log = (node.dir / "cni.log").read_text()
    written = re.search(r"ADD x/new: policy (\d+) written ([0-9.]+) ms after ADD began", cni_log)
    assert written, cni_log
    assert endpoint(cluster, socket, "new")["policy_id"] == int(written.group(1))
    assert address in endpoint(cluster, socket, "new")["addresses"]
    print(f"ADD start to policy written: {float(written.group(2)):.1f} ms")

    # A pod the agent never hears of: ADD still succeeds (the pod stays denied) and says why.
    ghost_netns = lab.make_netns("node1-ghost")
    ghost = node.cni(
        "ADD",
        f"{lab.id}-ghost",
        ghost_netns,
        conf=node.conf(policySocket=socket, policyTimeoutMs=300),
        cni_args="K8S_POD_NAMESPACE=x;K8S_POD_NAME=ghost",
    )
    assert ghost.ok, ghost.stderr + ghost.stdout
    assert "ADD x/ghost: no policy from the agent" in (node.dir / "cni.log").read_text()

    # A relabel takes effect: `new` leaves app=b, so a admits nothing.
    cluster.apply("policy-lab", POLICY_LAB.replace("labels: {app: b}", "labels: {app: c}"))
    assert wait_until(lambda: endpoint(cluster, socket, "a").get("ingress", {}).get("allowed") == [], timeout=10)

    for container, netns in ((f"{lab.id}-new", pod_netns), (f"{lab.id}-ghost", ghost_netns)):
        assert node.cni("DEL", container, netns, conf=conf).ok


API_POLICY = """\
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: blue}}
---
# No controller manager makes it, and pods need it.
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: x}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {nodeName: node1, containers: [{name: c, image: pause, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
spec: {nodeName: node2, containers: [{name: c, image: pause}]}
---
apiVersion: v1
kind: Pod
metadata: {name: c, namespace: x, labels: {app: c}}
spec: {nodeName: node1, containers: [{name: c, image: pause}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-b, namespace: x, annotations: {weir.io/policy-audit: "true"}}
spec:
  podSelector: {matchLabels: {app: a}}
  ingress: [{from: [{podSelector: {matchLabels: {app: b}}}], ports: [{port: http}]}]
"""


@pytest.mark.skipif(
    bool(missing_binaries(names=("etcd", "kube-apiserver", "kubectl"))), reason="upstream Kubernetes not built"
)
def test_agent_follows_pods_namespaces_and_policies_in_the_api(lab):
    """API mode with the chart's ClusterRole: every pod of the cluster (b is on another node) names
    an identity, a relabel through the API takes effect, and CNI ADD of a pod the API holds is
    answered with its policy."""
    cp = ControlPlane(lab.dir / "cp", netns=f"{lab.id}-api", address=API_IP)
    cluster = Cluster(lab, 1, ["snat"], kubeconfig=cp.agent_kubeconfig, start_agents=False)
    assert cluster.add_client("api", API_IP) == cp.netns
    lab.cleanups.append(cp.stop)
    node = cluster.nodes[0]
    socket = str(lab.dir / "node1-policy.sock")
    cluster.agent_args[node.name] += ["--network_policy=true", f"--policy_socket={socket}"]
    with cp:
        grant_agent_rbac(cp)
        kube_apply(cp, API_POLICY)
        cluster.start_agents()
        a = wait_until(lambda: endpoint(cluster, socket, "a").get("ingress", {}).get("allowed"), timeout=30)
        assert a, (node.dir / "agent.log").read_text()
        assert re.fullmatch(r"identity \d+ \[ns x .*\{app=b\}\] TCP 8080", a[0])
        assert endpoint(cluster, socket, "a")["ingress"]["mode"] == "audit"  # its one policy says so
        assert "b" not in {e["name"] for e in policy_json(cluster, socket)["endpoints"]}  # node2's

        cp.kubectl("label", "pod", "b", "-n", "x", "app=z", "--overwrite")
        assert wait_until(lambda: endpoint(cluster, socket, "a")["ingress"]["allowed"] == [], timeout=10)

        pod_netns = lab.make_netns("node1-c")
        conf = node.conf(policySocket=socket, policyTimeoutMs=2000)
        added = node.cni("ADD", f"{lab.id}-c", pod_netns, conf=conf, cni_args="K8S_POD_NAMESPACE=x;K8S_POD_NAME=c")
        assert added.ok, added.stderr + added.stdout
        assert re.search(r"ADD x/c: policy \d+ written", (node.dir / "cni.log").read_text())
        assert node.cni("DEL", f"{lab.id}-c", pod_netns, conf=conf).ok
        assert "HTTP 403" not in (node.dir / "agent.log").read_text(errors="replace")
