"""Keeps the cluster's control plane running in namespace wc-cp until <dir>/STOP exists:
weirlab/kube/control_plane.py's etcd, kube-apiserver and kube-controller-manager (node IPAM on), plus
kube-scheduler, and the client certificates of the kubelets and the scheduler, all signed by the
control plane's CA. Started detached by `cluster.sh up`; writes <dir>/READY (the server URL) once
everything answers, or <dir>/FAILED with the reason.

    python3 -m e2e.kcluster.control_plane_holder DIR NODE_NAME...
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

from e2e.kcluster import topology
from weirlab.kube.control_plane import ControlPlane, _Proc, in_netns


def main() -> int:
    root = Path(sys.argv[1])
    node_names = sys.argv[2:]
    stop_file, ready_file, failed_file = root / "STOP", root / "READY", root / "FAILED"
    pki = root / "work" / "pki"
    cp = ControlPlane(
        root / "work",
        controller_manager=True,
        controllers="*",
        keep_workdir=True,
        netns=topology.netns("cp"),
        address=topology.CP_IP,
        ready_timeout=120,
        extra_apiserver_args=[
            f"--kubelet-client-certificate={pki}/admin.crt",
            f"--kubelet-client-key={pki}/admin.key",
            # The kubernetes Service's endpoints are the API server's address (the
            # last --endpoint-reconciler-type wins over control_plane.py's "none").
            "--endpoint-reconciler-type=lease",
            # Node names do not resolve here: reach kubelets by address.
            "--kubelet-preferred-address-types=InternalIP,Hostname",
        ],
        extra_controller_manager_args=[
            "--allocate-node-cidrs=true",
            f"--cluster-cidr={topology.POD_CIDR}",
            "--node-cidr-mask-size=24",
        ],
    )
    scheduler = None
    try:
        cp.start()
        cp._leaf("kube-scheduler", "/CN=system:kube-scheduler", "clientAuth")
        scheduler_kubeconfig = root / "work" / "kube-scheduler.kubeconfig"
        cp._kubeconfig(scheduler_kubeconfig, "system:kube-scheduler", "kube-scheduler")
        for name in node_names:
            cp._leaf(f"kubelet-{name}", f"/O=system:nodes/CN=system:node:{name}", "clientAuth")
            cp._kubeconfig(root / "work" / f"kubelet-{name}.kubeconfig", f"system:node:{name}", f"kubelet-{name}")
        argv = [
            str(cp.bin_dir / "kube-scheduler"),
            f"--kubeconfig={scheduler_kubeconfig}",
            f"--authentication-kubeconfig={scheduler_kubeconfig}",
            f"--authorization-kubeconfig={scheduler_kubeconfig}",
            f"--bind-address={topology.CP_IP}",
            "--leader-elect=false",
            "--v=1",
        ]
        scheduler = _Proc("kube-scheduler", in_netns(cp.netns, argv), cp.logs / "kube-scheduler.log", cp._env)
        ready_file.write_text(cp.server + "\n")
        print(f"control plane ready at {cp.server}", flush=True)
        while not stop_file.exists():
            for proc in (cp.etcd, cp.apiserver, cp.controller_manager, scheduler):
                if proc is not None and not proc.alive():
                    print(f"{proc.name} exited; log tail:\n{proc.tail()}", flush=True)
            time.sleep(1)
    except BaseException:
        failed_file.write_text(traceback.format_exc())
        traceback.print_exc()
        return 1
    finally:
        if scheduler is not None:
            scheduler.stop()
        cp.stop()
        print("control plane stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
