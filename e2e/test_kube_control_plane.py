"""An upstream kube-apiserver (with etcd) on the loopback, as later tests of weir's agent will use it:
objects weir watches (Services, EndpointSlices) go in and come back, and the apiserver serves again
after a restart. Skipped when weirlab/kube/build_upstream.sh has not built the binaries (setup.sh builds
them with WEIR_KUBE=1)."""

from __future__ import annotations

import json
import time

import pytest

from weirlab.kube.control_plane import FIRST_SERVICE_IP, KUBE_VERSION, ControlPlane, kube_bin_dir, missing_binaries

pytestmark = pytest.mark.skipif(
    bool(missing_binaries(names=("etcd", "kube-apiserver", "kubectl"))),
    reason=f"upstream Kubernetes {KUBE_VERSION} binaries not built in {kube_bin_dir()} "
    "(run weirlab/kube/build_upstream.sh, or scripts/setup.sh with WEIR_KUBE=1)",
)

MANIFEST = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"app": "web"},
                "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            },
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "web-1",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "weir-e2e"},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
            "endpoints": [
                {"addresses": ["10.244.1.10"], "conditions": {"ready": True}},
                {"addresses": ["10.244.1.11"], "conditions": {"ready": False}},
            ],
        },
    ],
}


def test_apiserver_serves_services_and_endpointslices_across_restart(tmp_path):
    with ControlPlane(tmp_path / "cp") as cp:
        version = cp.kubectl_json("version")
        assert version["serverVersion"]["gitVersion"] == KUBE_VERSION
        assert version["clientVersion"]["gitVersion"] == KUBE_VERSION

        # The `kubernetes` Service takes the first IP of the service range.
        kubernetes = cp.kubectl_json("get", "service", "kubernetes", "-n", "default")
        assert kubernetes["spec"]["clusterIP"] == FIRST_SERVICE_IP

        cp.kubectl("apply", "-f", "-", input=json.dumps(MANIFEST))
        svc = cp.kubectl_json("get", "service", "web", "-n", "default")
        assert svc["spec"]["clusterIP"].startswith("10.96.")
        assert svc["spec"]["ports"][0]["port"] == 80
        eps = cp.kubectl_json("get", "endpointslice", "web-1", "-n", "default")
        assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
        assert [e["addresses"][0] for e in eps["endpoints"]] == ["10.244.1.10", "10.244.1.11"]
        assert [e["conditions"]["ready"] for e in eps["endpoints"]] == [True, False]

        # The weir-agent user authenticates (its certificate) but has no RBAC yet.
        who = cp.kubectl("auth", "whoami", "-o", "json", kubeconfig=cp.agent_kubeconfig)
        assert json.loads(who.stdout)["status"]["userInfo"]["username"] == "weir-agent"
        denied = cp.kubectl("get", "endpointslices", "-A", kubeconfig=cp.agent_kubeconfig, check=False)
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()

        cluster_ip = svc["spec"]["clusterIP"]
        cp.stop_apiserver()
        assert not cp.readyz()
        cp.start_apiserver()
        assert cp.readyz()

        # Same objects, from etcd, after the restart.
        again = cp.kubectl_json("get", "service", "web", "-n", "default")
        assert again["metadata"]["uid"] == svc["metadata"]["uid"]
        assert again["spec"]["clusterIP"] == cluster_ip
        eps_again = cp.kubectl_json("get", "endpointslices", "-n", "default", "-l", "kubernetes.io/service-name=web")
        assert [i["metadata"]["name"] for i in eps_again["items"]] == ["web-1"]
        workdir = cp.workdir
    assert not workdir.exists()


@pytest.mark.skipif(
    bool(missing_binaries(names=("kube-controller-manager",))),
    reason="kube-controller-manager not built (weirlab/kube/build_upstream.sh)",
)
def test_controller_manager_derives_endpointslices_from_pods(tmp_path):
    """kube-controller-manager's endpointslice controller turns a ready Pod behind a Service into an
    EndpointSlice, as in a real cluster (no kubelet: the test writes the Pod's status itself)."""
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "weir.invalid/web"}]},
    }
    status = {
        "status": {
            "phase": "Running",
            "podIP": "10.244.1.10",
            "podIPs": [{"ip": "10.244.1.10"}],
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    }
    with ControlPlane(tmp_path / "cp", controller_manager=True) as cp:
        cp.kubectl(
            "apply",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [node, MANIFEST["items"][0], pod]}),
        )
        cp.kubectl(
            "patch", "pod", "web-0", "-n", "default", "--subresource=status", "--type=merge", "-p", json.dumps(status)
        )
        deadline = time.monotonic() + 30
        endpoints = []
        while time.monotonic() < deadline:
            slices = cp.kubectl_json("get", "endpointslices", "-n", "default", "-l", "kubernetes.io/service-name=web")[
                "items"
            ]
            endpoints = [e for s in slices for e in s.get("endpoints") or []]
            if endpoints:
                break
            time.sleep(0.2)
        assert [e["addresses"] for e in endpoints] == [["10.244.1.10"]], slices
        assert endpoints[0]["conditions"]["ready"] is True
        assert endpoints[0]["targetRef"]["name"] == "web-0"
        assert (
            slices[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
            == "endpointslice-controller.k8s.io"
        )
        assert slices[0]["ports"][0]["port"] == 8080
