"""Upstream's [sig-network] e2e suite against the cluster of scripts/cluster.sh.

    python3 -m e2e.kcluster.conformance [--focus RE] [--skip RE] [--quick] [--nodes N]

Runs e2e.test (built from the kubernetes module at the cluster's version) inside the control plane's
namespace, writes the JUnit report and a Markdown table (spec, result, duration, reason) under
<report dir>, and prints `N passed, N failed, N skipped` last. Brings the cluster up when it is not,
and takes it down again after.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from e2e.kcluster import images, topology
from e2e.kcluster.cluster import KUBE_BIN, REPO, Cluster, log

# What cannot run on one machine without a cloud, or on this kernel; each group's reason is in
# docs/conformance.md. Nothing weir implements differently from kube-proxy is skipped.
DEFAULT_SKIP = [
    r"\[Alpha\]",
    r"\[Beta\]",
    r"Alpha|Beta|Experimental",
    r"Federation",
    r"\[Disruptive\]",
    r"\[Flaky\]",
    r"GCE",
    r"LoadBalancer",
    # The kernel here has no CONFIG_IP_SCTP. Not a bare "SCTP": two TCP NetworkPolicy specs name SCTP
    # in their titles (an SCTP rule must not admit TCP) and need no SCTP in the kernel.
    r"SCTP(Connectivity| HostPort| service)",
    r"IPv6|DualStack",  # the cluster is single-stack IPv4
]
# Specs of gated features carry a [Feature:X] tag, which the framework also sets as a ginkgo label.
# They are left out by label (RE2 has no negative lookahead to spare one tag in --skip), except
# NetworkPolicy, which weir enforces.
LABEL_FILTER = "Feature:NetworkPolicy || !/^Feature:/"
# The quick tier: a few dozen specs across Services, DNS, Conntrack, the Granular Checks and
# NetworkPolicy (both directions, an AND peer, a named port, ipBlock on pod addresses, a pod's label
# change, UDP; about a minute of the tier).
QUICK_FOCUS = (
    r"\[sig-network\] ("
    r"Netpol NetworkPolicy between server and client should ("
    r"support a 'default-deny-all' policy|allow ingress access on one named port|"
    r"enforce policy to allow traffic only from a pod in a different namespace based on "
    r"PodSelector and NamespaceSelector|"
    r"ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed|allow ingress access from updated pod)|"
    r"Netpol \[LinuxOnly\] NetworkPolicy between server and client using UDP should enforce policy based on Ports|"
    r"Networking Granular Checks: (Pods|Services)|"
    r"DNS should (provide DNS for (services|the cluster|pods for Hostname)|resolve DNS of partial)|"
    r"Services should (serve a basic endpoint from pods|serve multiport endpoints|"
    r"be able to create a functioning NodePort service|provide secure master service|"
    r"have session affinity work for service with type clusterIP|"
    r"be able to switch session affinity for service with type clusterIP|"
    r"be rejected when no endpoints exist|find a service from listing all namespaces|"
    r"be able to change the type from ExternalName to ClusterIP|serve endpoints on same port and different protocols)|"
    r"Conntrack should be able to preserve UDP traffic when server pod cycles for a (ClusterIP|NodePort) service)"
)


def parse_junit(path: Path) -> list[dict]:
    specs = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        if not name.startswith("[It]"):  # suite set-up and reporting nodes, not specs
            continue
        status = case.get("status", "")
        failure = case.find("failure")
        skipped = case.find("skipped")
        if failure is not None or status in ("failed", "panicked", "timedout", "interrupted"):
            result = "failed"
            text = (failure.get("message") if failure is not None else status) or ""
        elif skipped is not None or status in ("skipped", "pending"):
            result = "skipped"
            text = skipped.get("message", "") if skipped is not None else ""
        else:
            result, text = "passed", ""
        reason = re.sub(r"\s+", " ", text).strip()[:200]
        specs.append({"name": name, "result": result, "seconds": float(case.get("time", 0)), "reason": reason})
    return specs


def markdown(specs: list[dict], command: str, seconds: float) -> str:
    counts = {r: sum(s["result"] == r for s in specs) for r in ("passed", "failed", "skipped")}
    lines = [
        f"Command: `{command}`  ",
        f"Duration: {seconds / 60:.1f} min  ",
        f"Result: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped",
        "",
        "| spec | result | duration | reason |",
        "|---|---|---|---|",
    ]
    order = {"failed": 0, "skipped": 1, "passed": 2}
    # Specs the focus and skip lists left out are counted, not listed.
    for s in sorted(
        (s for s in specs if s["result"] != "skipped" or s["reason"] not in ("", "skipped")),
        key=lambda s: (order[s["result"]], s["name"]),
    ):
        name = s["name"].replace("|", "\\|")
        lines.append(f"| {name} | {s['result']} | {s['seconds']:.0f}s | {s['reason'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--focus", default=r"\[sig-network\]")
    parser.add_argument("--skip", default="")
    parser.add_argument("--quick", action="store_true", help="the CI tier: " + QUICK_FOCUS[:60] + "...")
    parser.add_argument("--nodes", type=int, default=2, help="parallel ginkgo processes")
    parser.add_argument("--timeout", default="90m", help="the whole run's limit (ginkgo --timeout)")
    parser.add_argument("--report-dir", type=Path, default=REPO / "build" / "conformance")
    args = parser.parse_args(argv)
    focus = QUICK_FOCUS if args.quick else args.focus
    skip = "|".join(DEFAULT_SKIP + ([args.skip] if args.skip else []))

    subprocess.run(
        [str(REPO / "weirlab/kube/build_upstream.sh")],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "KUBE_BINARIES": "e2e.test ginkgo regression-issue-74839"},
    )
    cluster = Cluster()
    brought_up = False
    if not cluster.is_up():
        cluster.up()
        brought_up = True
    try:
        for node in cluster.nodes:
            for archive in images.e2e_images(KUBE_BIN):
                node.import_image(archive)
        args.report_dir.mkdir(parents=True, exist_ok=True)
        for old in args.report_dir.glob("junit*.xml"):
            old.unlink()
        command = [
            "nsenter",
            f"--net=/run/netns/{topology.netns('cp')}",
            "--",
            str(KUBE_BIN / "ginkgo"),
            f"--procs={args.nodes}",
            f"--timeout={args.timeout}",
            "--junit-report=junit.xml",
            f"--output-dir={args.report_dir}",
            f"--focus={focus}",
            f"--skip={skip}",
            f"--label-filter={LABEL_FILTER}",
            "--no-color",
            str(KUBE_BIN / "e2e.test"),
            "--",
            f"--kubeconfig={cluster.kubeconfig}",
            "--provider=local",
            f"--num-nodes={len(cluster.nodes)}",
            f"--kubectl-path={KUBE_BIN / 'kubectl'}",
            "--disable-log-dump=true",
            f"--report-dir={args.report_dir}",
            "--dump-logs-on-failure=false",
        ]
        shown = (
            "scripts/conformance.sh"
            + (" --quick" if args.quick else "")
            + (f" --focus '{args.focus}'" if args.focus != parser.get_default("focus") else "")
            + (f" --skip '{args.skip}'" if args.skip else "")
        )
        log(f"running: {' '.join(command[3:])}")
        t0 = time.monotonic()
        env = {**os.environ, "HOME": str(cluster.root / "home"), "KUBECONFIG": str(cluster.kubeconfig)}
        with open(args.report_dir / "e2e.log", "w") as out:
            subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        seconds = time.monotonic() - t0
        junit = args.report_dir / "junit.xml"
        if not junit.exists():
            print((args.report_dir / "e2e.log").read_text()[-3000:])
            print("0 passed, 1 failed, 0 skipped")
            return 1
        specs = parse_junit(junit)
        (args.report_dir / "results.md").write_text(markdown(specs, shown, seconds))
        failed = [s for s in specs if s["result"] == "failed"]
        for s in failed:
            print(f"FAILED: {s['name']}\n    {s['reason']}")
        counts = {r: sum(s["result"] == r for s in specs) for r in ("passed", "failed", "skipped")}
        print(f"report: {args.report_dir / 'results.md'} ({seconds / 60:.1f} min)")
        print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
        return 1 if failed else 0
    finally:
        if brought_up:
            cluster.down()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
