"""NetworkPolicy cost in weir's datapath and agent, against no policy in the same run (issue 10, item 7).

  1. Per-packet cost: the first packet of a new flow and a packet of an established one, with 1, 100 and
     10,000 rules per endpoint and direction and 1,000 peer identities, against no policy. BPF_PROG_TEST_RUN
     (bench/programs/policy_packets.py) on the programs node1's agent pinned, with the maps it filled from
     the manifests: egress of a pod through from_pod, ingress from another node through from_uplink.
  2. Time from a policy write (a manifest file appearing) to enforcement on the node, p50 and p99, with
     1,000 policies present: a new flow's verdict is polled with test runs until it flips (allow, and
     deny again when the file goes).
  3. Connection rate (TCP_CRR: wrk, one connection per request) from one pod to another, with 1,000
     policies against none.
  4. Agent memory (VmRSS, VmHWM) with 10,000 pods and 1,000 policies in its manifest directory, against
     the same pods without policies and an empty directory.
  5. The floor ("floor"): what one LPM lookup, hash lookup and LRU insert cost on this machine and
     kernel (bench/programs/map_primitives.py), the operations a verdict is made of.

Targets: new flow at 10,000 rules within 1.10x of no policy; established flow unchanged (1.05x); TCP_CRR
with 1,000 policies at least 0.95x of none; policy write to enforcement p99 under 250 ms.

Parts 1-3 need the agent to enforce NetworkPolicy (weirlab/netpol_lab.py's policy_support()); until it
does they measure the no-policy baseline and say why the rest was skipped. Part 4 runs either way (the
agent reads and keeps the objects already).

    sudo python3 -m bench.policy_bench [--quick] [--only packet,floor,latency,crr,memory] [--profile DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import policy_manifests as pm
from bench.lb_bench import SERVER, format_table, number
from bench.report import SNAPSHOT_TOOLS, finish_figure, finish_report, percentile, progress, root_diff, root_snapshot
from weirlab.cluster import Cluster
from weirlab.lab import BUILD, WEIR_AGENT, WEIR_CNI, WEIRCTL, Lab, Node, Pod, in_netns, leftovers, run
from weirlab.netpol_lab import PolicySupport, policy_support

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
PACKETS_PROGRAM = REPO / "bench" / "programs" / "policy_packets.py"
MAP_PRIMITIVES_PROGRAM = REPO / "bench" / "programs" / "map_primitives.py"
RULE_COUNTS = [1, 100, 10000]
HTTP_PORT = 8080
DENIED_PORT = 999  # no rule admits it
LATENCY_PORT = 5000  # + sample number: a port only that sample's policy admits
TARGET_NEW_FLOW = 1.10
TARGET_ESTABLISHED = 1.05
TARGET_CRR = 0.95
TARGET_LATENCY_P99_MS = 250.0
SUBJECT_NAMESPACE = pm.namespace_name(0)
CLIENT_LABELS = {"app": "client"}
SERVER_LABELS = {"app": "server"}


# ---------------------------------------------------------------------------------------------
# The lab: node1 with two real pods (client, server) among manifest-only pods on 99 fake nodes


class PolicyLab:
    def __init__(self, lab: Lab, support: PolicySupport, pods: int):
        self.lab = lab
        self.support = support
        self.pods = pods
        self.cluster = Cluster(lab, 1, agent_args=support.agent_args)
        self.node: Node = self.cluster.nodes[0]
        self.cluster.apply("fake-nodes", pm.fake_nodes_yaml())
        self.cluster.apply("namespaces", pm.namespaces_yaml())
        self.cluster.apply("fake-pods", pm.fake_pods_yaml(pods))
        self.client = self.add_pod("client", CLIENT_LABELS)
        log_offset = len((self.node.dir / "agent.log").read_text())
        self.server = self.add_pod("server", SERVER_LABELS)
        server_py = lab.dir / "http_server.py"
        server_py.write_text(SERVER)
        lab.spawn(
            in_netns(self.server.netns, ["python3", str(server_py), str(HTTP_PORT)]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.packets = lab.spawn(
            in_netns(self.node.netns, ["python3", str(PACKETS_PROGRAM), str(self.node.bpf_root)]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if "ready" not in json.loads(self.packets.stdout.readline() or "{}"):
            raise RuntimeError("policy_packets.py did not start")
        links = {link["ifname"]: link for link in json.loads(self.node.exec(["ip", "-j", "link", "show"]).stdout)}
        host_veth = links[self.host_ifname(self.client)]
        uplink = links["uplink0"]
        # Egress of the client to a peer on another node; ingress of the server from one.
        self.egress = {
            "prog": "from_pod",
            "ifindex": host_veth["ifindex"],
            "src_mac": self.pod_mac(self.client),
            "dst_mac": host_veth["address"],
            "src": self.client.ipv4,
            "dst": pm.rule_target(0, pods)[0],
            "dport": pm.rule_target(0, pods)[1],
        }
        self.ingress = {
            "prog": "from_uplink",
            "ifindex": uplink["ifindex"],
            "src_mac": "02:00:00:00:00:09",
            "dst_mac": uplink["address"],
            "src": pm.rule_target(0, pods)[0],
            "dst": self.server.ipv4,
            "dport": pm.rule_target(0, pods)[1],
        }
        self.wait_agent_read_everything(log_offset)

    def add_pod(self, name: str, labels: dict[str, str]) -> Pod:
        netns = self.lab.make_netns(f"{self.node.name}-{name}")
        container_id = f"{self.lab.id}-{name}"
        args = f"IgnoreUnknown=1;K8S_POD_NAMESPACE={SUBJECT_NAMESPACE};K8S_POD_NAME={name}"
        result = self.node.cni("ADD", container_id, netns, conf=self.node.conf(**self.support.cni_conf), cni_args=args)
        if not result.ok:
            raise RuntimeError(f"ADD {name} failed ({result.code}): {result.stdout}{result.stderr}")
        pod = Pod(name, netns, container_id, "eth0", result.json)
        self.node.pods[name] = pod
        self.cluster.apply(
            f"pod-{name}",
            pm.pod_yaml(name, SUBJECT_NAMESPACE, labels, self.node.name, pod.ipv4, ports=((HTTP_PORT, "http"),)),
        )
        return pod

    @staticmethod
    def host_ifname(pod: Pod) -> str:
        return next(
            i["name"] for i in pod.result["interfaces"] if not i.get("sandbox") and i["name"].startswith("weir")
        )

    @staticmethod
    def pod_mac(pod: Pod) -> str:
        return next(i["mac"] for i in pod.result["interfaces"] if i.get("sandbox"))

    def wait_agent_read_everything(self, log_offset: int, timeout: float = 60) -> None:
        """Until the agent has synced after the last manifest write (its log past `log_offset`); objects
        it skipped mean the generators are wrong, which is fatal."""
        log = self.node.dir / "agent.log"
        deadline = time.monotonic() + timeout
        while "synced" not in log.read_text()[log_offset:] and time.monotonic() < deadline:
            time.sleep(0.1)
        skipped = [line for line in log.read_text().splitlines() if "skipp" in line]
        if skipped:
            raise RuntimeError("the agent skipped generated objects:\n" + "\n".join(skipped[:10]))

    def command(self, **command) -> dict:
        self.packets.stdin.write(json.dumps(command) + "\n")
        self.packets.stdin.flush()
        answer = json.loads(self.packets.stdout.readline() or '{"error": "policy_packets.py ended"}')
        if "error" in answer:
            raise RuntimeError(f"policy_packets.py: {answer['error']}")
        return answer

    def flow(self, base: dict, **changes) -> dict:
        return {**base, **changes}

    def set_policies(self, name: str, text: str | None) -> float:
        """Writes (or with None removes) a manifest file; returns CLOCK_MONOTONIC just before."""
        start = time.monotonic()
        if text is None:
            self.cluster.delete(name)
        else:
            self.cluster.apply(name, text)
        return start

    def wait_verdict(self, flow: dict, passed: bool, timeout: float = 60) -> float | None:
        return self.command(cmd="wait", flow=flow, passed=passed, timeout=timeout)["at"]

    def agent_log_tail(self, lines: int = 30) -> str:
        return "\n".join((self.node.dir / "agent.log").read_text().splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------
# 1. Per-packet cost

PACKET_ROWS = [
    ("egress_new", "egress, new flow (from_pod, to a peer on another node)", TARGET_NEW_FLOW),
    ("ingress_new", "ingress, new flow (from_uplink, from a peer on another node)", TARGET_NEW_FLOW),
    ("egress_established", "egress, established flow", TARGET_ESTABLISHED),
    ("ingress_established", "ingress, established flow", TARGET_ESTABLISHED),
    ("egress_denied", "egress, new flow no rule admits (dropped with rules)", None),
    ("harness", "harness: empty program, one test run", None),
]


def rules_yaml(rules: int) -> str:
    """`rules` egress rules for the client and as many ingress rules for the server."""
    return (
        pm.policies_yaml("egress", SUBJECT_NAMESPACE, CLIENT_LABELS, "egress", rules)
        + "---\n"
        + pm.policies_yaml("ingress", SUBJECT_NAMESPACE, SERVER_LABELS, "ingress", rules)
    )


def targets(plab: PolicyLab, rules: int, limit: int = 2000) -> tuple[list, list]:
    """Egress and ingress test flows that rules admit ([src, dst, dport]), spread over all of them."""
    step = max(1, rules // limit)
    egress, ingress = [], []
    for k in range(0, rules, step):
        target = pm.rule_target(k, plab.pods)
        if target:
            egress.append([plab.client.ipv4, target[0], target[1]])
            ingress.append([target[0], plab.server.ipv4, target[1]])
    return egress, ingress


def measure_scenario(plab: PolicyLab, rules: int, runs: int, count: int, repeat: int) -> dict:
    """One scenario's samples, the kinds interleaved run by run. New flows go to peers the scenario's
    rules admit, spread over all of them (without rules: those of the largest rule set)."""
    egress_targets, ingress_targets = targets(plab, rules or max(RULE_COUNTS))
    denied = [[t[0], t[1], DENIED_PORT] for t in egress_targets]
    samples: dict[str, list[float]] = {key: [] for key, _, _ in PACKET_ROWS}
    retvals: dict[str, dict] = {}
    for _ in range(runs):
        for key, flow, flow_targets in (
            ("egress_new", plab.egress, egress_targets),
            ("ingress_new", plab.ingress, ingress_targets),
            ("egress_denied", plab.egress, denied),
        ):
            answer = plab.command(cmd="new_flows", flow=flow, targets=flow_targets, count=count)
            empty = statistics.median(answer["empty_ns"])
            samples[key] += [ns - empty for ns in answer["ns"]]
            samples["harness"] += answer["empty_ns"]
            retvals[key] = answer["retvals"]
        for key, flow in (("egress_established", plab.egress), ("ingress_established", plab.ingress)):
            answer = plab.command(cmd="established", flow=flow, repeat=repeat, count=max(1, count // 50))
            samples[key] += answer["ns"]
            retvals[key] = answer["retvals"]
    return {"samples": samples, "retvals": retvals}


class Profile:
    """`perf record -a -g` around a measurement, reported as the hottest symbols of the process that
    runs the test runs (policy_packets.py: its comm is python3), kernel and BPF programs included
    (bpf_jit_kallsyms names them bpf_prog_<tag>_<name>)."""

    def __init__(self, out: Path | None, name: str):
        self.path = out / f"perf-{name}.data" if out else None
        self.process = None
        self.top: list[str] = []

    def __enter__(self):
        if self.path:
            self.process = subprocess.Popen(
                ["perf", "record", "-q", "-e", "cycles", "-g", "-a", "-o", str(self.path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)  # perf is recording
        return self

    def __exit__(self, *exc):
        if not self.process:
            return
        self.process.send_signal(2)
        self.process.wait(timeout=60)
        out = run(
            [
                "perf",
                "report",
                "-i",
                str(self.path),
                "--comm",
                "python3",
                "--no-children",
                "--sort",
                "sym",
                "--stdio",
                "-g",
                "none",
                "--percentage",
                "relative",
                "--percent-limit",
                "0.5",
            ],
            check=False,
        ).stdout
        # The kernel's and the BPF programs' symbols only: the interpreter around the test runs is
        # not the datapath.
        self.top = [line.strip() for line in out.splitlines() if "[k]" in line][:25]
        self.path.unlink(missing_ok=True)
        Path(str(self.path) + ".old").unlink(missing_ok=True)


def bench_packets(plab: PolicyLab, args: argparse.Namespace) -> dict:
    scenarios: dict[str, dict] = {}
    sentinel_denied = plab.flow(plab.egress, dport=DENIED_PORT)
    error = None
    for rules in [0, *RULE_COUNTS]:
        label = "none" if rules == 0 else str(rules)
        if rules and not plab.support.enabled or error:
            scenarios[label] = {"skipped": error or plab.support.reason}
            continue
        progress(f"per-packet: {rules_label(label)}{' per endpoint and direction' if rules else ''}")
        plab.set_policies("rules", rules_yaml(rules) if rules else None)
        if plab.support.enabled:
            # In force: a port no rule admits is dropped (passes without rules), the last rule admits.
            last = next(k for k in range(rules - 1, -1, -1) if pm.rule_target(k, plab.pods)) if rules else 0
            dst, dport = pm.rule_target(last, plab.pods)
            if plab.wait_verdict(sentinel_denied, passed=not rules) is None:
                error = f"{rules_label(label)}: a port no rule admits is not dropped"
            elif plab.wait_verdict(plab.flow(plab.egress, dst=dst, dport=dport), passed=True) is None:
                error = f"{rules_label(label)}: the last rule does not admit its peer"
            if error:
                progress(f"ERROR: {error}; agent log:\n{plab.agent_log_tail()}")
                scenarios[label] = {"skipped": error}
                continue
        with Profile(args.profile, label) as profile:
            result = measure_scenario(plab, rules, args.packet_runs, args.flows, args.repeat)
        result["rules"] = rules
        if profile.top:
            result["profile"] = profile.top
            progress(f"hottest symbols ({rules_label(label)}):\n    " + "\n    ".join(profile.top[:12]))
        scenarios[label] = result
    plab.set_policies("rules", None)
    # Gone before the next part: its checks must not be answered by these rules still in force.
    if not error and plab.support.enabled and plab.wait_verdict(sentinel_denied, passed=True) is None:
        error = "the rules were never removed"
    return {**summarize_packets(scenarios), "error": error}


def summarize_packets(scenarios: dict) -> dict:
    rows = []
    for key, label, target in PACKET_ROWS:
        p50 = {name: percentile(s["samples"][key], 50) if "samples" in s else None for name, s in scenarios.items()}
        p90 = {name: percentile(s["samples"][key], 90) if "samples" in s else None for name, s in scenarios.items()}
        largest = str(max(RULE_COUNTS))
        ratio = p50[largest] / p50["none"] if p50.get(largest) and p50["none"] else None
        met = None if target is None or ratio is None else ratio <= target
        rows.append(
            {"key": key, "label": label, "p50_ns": p50, "p90_ns": p90, "ratio": ratio, "target": target, "met": met}
        )
    return {"scenarios": scenarios, "rows": rows}


def rules_label(name: str) -> str:
    if name in ("none", "1"):
        return {"none": "no policy", "1": "1 rule"}[name]
    return f"{int(name):,} rules"


def format_packet_table(packet: dict) -> str:
    names = list(packet["scenarios"])
    header = ["per-packet cost, p50", "unit", *[rules_label(n) for n in names]]
    header += [f"{max(RULE_COUNTS)}/none", "target", "status"]
    body = []
    for row in packet["rows"]:
        body.append(
            [
                row["label"],
                "ns",
                *(number(row["p50_ns"][n]) if row["p50_ns"][n] is not None else "skipped" for n in names),
                "-" if row["ratio"] is None else f"{row['ratio']:.2f}x",
                "-" if row["target"] is None else f"<= {row['target']:.2f}x",
                "(info)"
                if row["target"] is None
                else ("-" if row["met"] is None else "met" if row["met"] else "NOT MET"),
            ]
        )
    return format_table(header, body)


# ---------------------------------------------------------------------------------------------
# The floor: what one map operation of a verdict costs here (bench/programs/map_primitives.py)

FLOOR_SIZES = [100, 10000, 30000]
FLOOR_LABELS = {
    "lpm_lookup": "LPM trie lookup (weir_pol_peers, weir_pol_rules)",
    "hash_lookup": "hash lookup (e.g. weir_pol_ct, weir_endpoints)",
    "lru_insert": "LRU hash insert (weir_pol_ct: a new flow's verdict remembered)",
}


def bench_floor() -> dict:
    out = run([sys.executable, str(MAP_PRIMITIVES_PROGRAM), ",".join(map(str, FLOOR_SIZES))], timeout=300)
    cases = json.loads(out.stdout)["cases"]
    return {"cases": cases}


def format_floor_table(floor: dict) -> str:
    header = ["one map operation (tight loop, warm)", *[f"{n:,} entries" for n in FLOOR_SIZES]]
    body = []
    for op, label in FLOOR_LABELS.items():
        by_size = {c["entries"]: c["ns"] for c in floor["cases"] if c["op"] == op}
        if op == "lru_insert":
            value = next(iter(by_size.values()), None)
            body.append([f"{label}, new keys", "-", f"{value:.0f} ns (262,144 slots)" if value else "-", "-"])
        else:
            body.append([label, *(f"{by_size[n]:.0f} ns" if n in by_size else "-" for n in FLOOR_SIZES)])
    return format_table(header, body, left=1)


# ---------------------------------------------------------------------------------------------
# 1,000 policies (parts 2 and 3)


def thousand_policies_yaml() -> str:
    """1,002 policies: in bench-0, 50 egress policies for the client and 50 ingress policies for the server
    (10 rules each), and the two that let the client reach the server on HTTP_PORT; in each of bench-1..9,
    100 ingress policies of 10 rules for the manifest-only pods (app-0 ... app-99)."""
    docs = [
        pm.policies_yaml("client-out", SUBJECT_NAMESPACE, CLIENT_LABELS, "egress", 500, rules_per_policy=10),
        pm.policies_yaml("server-in", SUBJECT_NAMESPACE, SERVER_LABELS, "ingress", 500, rules_per_policy=10),
        pm.allow_one_yaml("client-to-server", SUBJECT_NAMESPACE, CLIENT_LABELS, "egress", SERVER_LABELS, HTTP_PORT),
        pm.allow_one_yaml("server-from-client", SUBJECT_NAMESPACE, SERVER_LABELS, "ingress", CLIENT_LABELS, HTTP_PORT),
    ]
    for i in range(1, pm.NAMESPACES):
        for app in range(pm.APPS):
            docs.append(
                pm.policies_yaml(
                    f"app-{app}", pm.namespace_name(i), {"app": f"app-{app}"}, "ingress", 10, 10, first_rule=app * 10
                )
            )
    return "---\n".join(docs)


def thousand_policies_in_force(plab: PolicyLab, present: bool) -> None:
    """Until the client's egress to a port no rule admits is dropped (present) or passes (absent)."""
    if plab.wait_verdict(plab.flow(plab.egress, dport=DENIED_PORT), passed=not present, timeout=120) is None:
        raise RuntimeError(f"1,000 policies {'never in force' if present else 'never gone'}\n{plab.agent_log_tail()}")


def bench_latency(plab: PolicyLab, samples: int) -> dict:
    """A policy admitting one new (peer, port) for the client, written and removed `samples` times."""
    plab.set_policies("thousand", thousand_policies_yaml())
    thousand_policies_in_force(plab, True)
    allow_ms, deny_ms = [], []
    for i in range(samples):
        app = i % pm.APPS
        flow = plab.flow(plab.egress, dst=pm.fake_pod_ip(pm.pods_of_identity(app * pm.NAMESPACES, plab.pods)[0]))
        flow["dport"] = LATENCY_PORT + i
        if plab.command(cmd="verdict", flow=flow)["passed"]:
            raise RuntimeError(f"latency sample {i}: admitted before its policy was written")
        text = pm.allow_one_yaml(
            f"latency-{i}", SUBJECT_NAMESPACE, CLIENT_LABELS, "egress", {"app": f"app-{app}"}, flow["dport"]
        )
        written = plab.set_policies(f"latency-{i}", text)
        at = plab.wait_verdict(flow, passed=True, timeout=10)
        if at is None:
            raise RuntimeError(f"latency sample {i}: not in force after 10 s\n{plab.agent_log_tail()}")
        allow_ms.append((at - written) * 1000)
        removed = plab.set_policies(f"latency-{i}", None)
        at = plab.wait_verdict(flow, passed=False, timeout=10)
        if at is None:
            raise RuntimeError(f"latency sample {i}: still admitted 10 s after removal\n{plab.agent_log_tail()}")
        deny_ms.append((at - removed) * 1000)
        if i % 10 == 9:
            progress(f"policy write to enforcement: {i + 1}/{samples}, allow p50 {percentile(allow_ms, 50):.1f} ms")
    stats = {}
    for name, values in (("allow", allow_ms), ("deny", deny_ms)):
        stats[name] = {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99), "max_ms": max(values)}
    return {"allow_ms": allow_ms, "deny_ms": deny_ms, "stats": stats}


def run_wrk(plab: PolicyLab, duration: int, connections: int) -> dict:
    url = f"http://{plab.server.ipv4}:{HTTP_PORT}/"
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-H", "Connection: close", url]
    out = run(in_netns(plab.client.netns, cmd), check=False, timeout=duration * 3 + 30)
    done = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out.stdout)
    if out.returncode != 0 or not done:
        raise RuntimeError(f"wrk {url} failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    elapsed = float(done.group(2)) * {"s": 1, "ms": 1e-3, "m": 60}.get(done.group(3), 1)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out.stdout)
    return {
        "rps": int(done.group(1)) / elapsed,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
        "output": out.stdout,
    }


def bench_crr(plab: PolicyLab, rounds: int, duration: int, connections: int) -> dict:
    modes = ["none", "1000"] if plab.support.enabled else ["none"]
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for r in range(rounds):
        for mode in modes if r % 2 == 0 else list(reversed(modes)):
            plab.set_policies("thousand", thousand_policies_yaml() if mode == "1000" else None)
            if plab.support.enabled:
                thousand_policies_in_force(plab, mode == "1000")
            progress(f"TCP_CRR round {r + 1}/{rounds}: {'1,000 policies' if mode == '1000' else 'no policy'}")
            runs[mode].append(run_wrk(plab, duration, connections))
    plab.set_policies("thousand", None)
    median = {m: statistics.median(x["rps"] for x in v) for m, v in runs.items()}
    ratio = median["1000"] / median["none"] if "1000" in median else None
    return {"runs": runs, "median_rps": median, "ratio": ratio, "met": None if ratio is None else ratio >= TARGET_CRR}


# ---------------------------------------------------------------------------------------------
# 4. Agent memory


def agent_memory(node: Node) -> dict:
    status = Path(f"/proc/{node.agent.pid}/status").read_text()
    value = lambda key: int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1)) / 1024
    return {"rss_mb": value("VmRSS"), "hwm_mb": value("VmHWM")}


def settle(node: Node, timeout: float = 120) -> tuple[dict, float]:
    """Waits for the agent's first sync, then until its RSS has not changed for 2 s; (memory, seconds)."""
    start = time.monotonic()
    log = node.dir / "agent.log"
    while "synced" not in log.read_text():
        if time.monotonic() - start > timeout or node.agent.poll() is not None:
            raise RuntimeError(f"agent did not sync:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    synced = time.monotonic() - start
    last, stable_since = agent_memory(node)["rss_mb"], time.monotonic()
    while time.monotonic() - stable_since < 2 and time.monotonic() - start < timeout:
        time.sleep(0.2)
        now = agent_memory(node)["rss_mb"]
        if abs(now - last) > 0.5:
            last, stable_since = now, time.monotonic()
    return agent_memory(node), synced


def local_pods_yaml(node: str, count: int = 100) -> str:
    """Manifest-only pods on the agent's own node (its endpoints, as far as the objects say)."""
    docs = []
    for i in range(count):
        app = i % pm.APPS
        labels = {"app": f"app-{app}", "tier": f"t{app % 4}"}
        docs.append(pm.pod_yaml(f"local-{i}", pm.namespace_name(i % pm.NAMESPACES), labels, node, f"10.244.1.{i + 10}"))
    return "---\n".join(docs)


def bench_memory(support: PolicySupport, pods: int) -> dict:
    results = {}
    with Lab("plm") as lab:
        cluster = Cluster(lab, 1, agent_args=support.agent_args, start_agents=False)
        node = cluster.nodes[0]
        configs = [
            ("empty", "no pods, no policies (the node object only)", {}),
            (
                "pods",
                f"{pods:,} pods (100 on this node), 10 namespaces",
                {
                    "fake-nodes": pm.fake_nodes_yaml(),
                    "namespaces": pm.namespaces_yaml(),
                    "fake-pods": pm.fake_pods_yaml(pods - 100),
                    "local-pods": local_pods_yaml(node.name),
                },
            ),
            ("policies", "the same and 1,000 policies (10 rules each)", {"policies": memory_policies_yaml()}),
        ]
        for key, label, files in configs:
            for name, text in files.items():
                cluster.apply(name, text)
            node.stop_agent()
            (node.dir / "agent.log").write_text("")
            node.start_agent(*cluster.agent_args[node.name])
            memory, synced = settle(node)
            progress(f"agent memory, {label}: RSS {memory['rss_mb']:.1f} MB (peak {memory['hwm_mb']:.1f} MB)")
            results[key] = {"label": label, **memory, "synced_s": synced}
    return results


def memory_policies_yaml() -> str:
    """1,000 policies of 10 rules: 100 per namespace, one per app."""
    docs = []
    for i in range(pm.NAMESPACES):
        for app in range(pm.APPS):
            docs.append(
                pm.policies_yaml(
                    f"app-{app}", pm.namespace_name(i), {"app": f"app-{app}"}, "ingress", 10, 10, first_rule=app * 10
                )
            )
    return "---\n".join(docs)


# ---------------------------------------------------------------------------------------------
# Report


def plot(packet, latency, crr, memory, path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(22, 6.5), gridspec_kw={"width_ratios": [6, 4, 3, 3.5]})
    ax = axes[0]
    if packet:
        names = [n for n, s in packet["scenarios"].items() if "samples" in s]
        colors = {"none": "#9a9a9a", "1": "#9ecae1", "100": "#4292c6", "10000": "#08519c"}
        rows = [r for r in packet["rows"] if r["key"] != "harness"]
        width = 0.8 / max(1, len(names))
        for i, name in enumerate(names):
            xs = [k + (i - (len(names) - 1) / 2) * width for k in range(len(rows))]
            ys = [r["p50_ns"][name] for r in rows]
            bars = ax.bar(xs, ys, width, color=colors.get(name, "#555"), edgecolor="black", linewidth=0.4)
            bars.set_label(rules_label(name))
            for bar, y in zip(bars, ys):
                ax.annotate(
                    number(y),
                    (bar.get_x() + bar.get_width() / 2, y),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([r["label"].split(" (")[0] for r in rows], fontsize=8, rotation=10)
        ax.set_ylabel("ns per packet (p50; new flows minus the empty program)")
        ax.set_title("(1) per packet, BPF_PROG_TEST_RUN, 1,000 identities")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    ax = axes[1]
    if latency:
        for name, color in (("allow", "#2a7ab9"), ("deny", "#b03a2e")):
            values, stats = sorted(latency[f"{name}_ms"]), latency["stats"][name]
            ax.plot(
                values,
                [(i + 1) / len(values) for i in range(len(values))],
                color=color,
                label=f"{name}: p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms",
            )
        ax.axvline(TARGET_LATENCY_P99_MS, color="red", linestyle="dashed", linewidth=1.2, label="target p99 < 250 ms")
        ax.set_xscale("log")
        ax.set_xlabel("ms from the manifest write to the verdict flipping")
        ax.set_ylabel("fraction of samples")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    else:
        ax.text(0.5, 0.5, "skipped: the agent does not enforce yet", ha="center", va="center", fontsize=9)
        ax.set_axis_off()
    ax.set_title("(2) policy write to enforcement, 1,000 policies present")
    ax = axes[2]
    if crr:
        m = crr["median_rps"]
        keys = list(m)
        bars = ax.bar(
            range(len(keys)),
            [m[k] for k in keys],
            0.6,
            color=["#9a9a9a", "#2a7ab9"][: len(keys)],
            edgecolor="black",
            linewidth=0.4,
        )
        for bar, k in zip(bars, keys):
            ax.annotate(
                f"{m[k]:.0f}/s",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels(["no policy" if k == "none" else "1,000 policies" for k in keys])
        ax.set_ylabel("connections per second (wrk, Connection: close)")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    ax.set_title("(3) TCP_CRR, pod to pod")
    ax = axes[3]
    if memory:
        keys = list(memory)
        ax.bar(
            range(len(keys)),
            [memory[k]["rss_mb"] for k in keys],
            0.6,
            color="#3b9e5a",
            edgecolor="black",
            linewidth=0.4,
            label="VmRSS",
        )
        ax.scatter(
            range(len(keys)),
            [memory[k]["hwm_mb"] for k in keys],
            color="black",
            marker="_",
            s=300,
            label="VmHWM (peak)",
            zorder=3,
        )
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels(["empty", "10k pods", "+1k policies"][: len(keys)])
        ax.set_ylabel("MB")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    ax.set_title("(4) weir-agent memory")
    finish_figure(fig, path, "weir NetworkPolicy against no policy (same lab, same run)", subtitle)


def environment(args: argparse.Namespace, support: PolicySupport) -> dict:
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "build_dir": str(BUILD),
        "policy_support": vars(support),
        "args": vars(args),
        "loadavg_start": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples and seconds")
    parser.add_argument("--only", default="packet,floor,latency,crr,memory", help="comma-separated parts to run")
    parser.add_argument("--pods", type=int, default=10000, help="manifest-only pods (1,000 identities among them)")
    parser.add_argument("--flows", type=int, help="new flows per kind and run (default 500, quick 200)")
    parser.add_argument("--packet-runs", type=int, help="interleaved runs per scenario (default 5, quick 2)")
    parser.add_argument("--repeat", type=int, default=200, help="test-run repetitions of an established packet")
    parser.add_argument("--latency-samples", type=int, help="policy writes timed (default 100, quick 20)")
    parser.add_argument("--rounds", type=int, help="TCP_CRR rounds (default 3, quick 1)")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 5, quick 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections in flight")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for JSON and PNG")
    parser.add_argument(
        "--profile", type=Path, help="perf record each per-packet scenario into this directory (hottest symbols)"
    )
    args = parser.parse_args()
    args.flows = args.flows or (200 if args.quick else 500)
    args.packet_runs = args.packet_runs or (2 if args.quick else 5)
    args.latency_samples = args.latency_samples or (20 if args.quick else 100)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (2 if args.quick else 5)
    parts = set(args.only.split(","))
    if os.geteuid() != 0:
        print("needs root (network namespaces, bpffs, BPF programs)", file=sys.stderr)
        return 2
    missing = [str(p) for p in (WEIR_CNI, WEIR_AGENT, WEIRCTL) if not p.exists()]
    missing += [t for t in ("wrk", "nsenter", *SNAPSHOT_TOOLS) if shutil.which(t) is None]
    if missing:
        print(
            f"missing: {', '.join(missing)} (build with scripts/build.sh; wrk is the Debian package wrk)",
            file=sys.stderr,
        )
        return 2
    support = policy_support()
    env = environment(args, support)
    progress(f"weir from {BUILD}; policy enforcement: {support.reason}")
    before = root_snapshot()
    packet = latency = crr = memory = floor = None
    lab_ids, error = [], None
    try:
        if parts & {"packet", "latency", "crr"}:
            with Lab("plb") as lab:
                lab_ids.append(lab.id)
                progress(
                    f"lab {lab.id}: node1, pods client and server, {args.pods:,} manifest-only pods on 99 fake nodes"
                )
                plab = PolicyLab(lab, support, args.pods)
                if "packet" in parts:
                    packet = bench_packets(plab, args)
                    if packet["error"]:
                        raise RuntimeError(packet["error"])
                if "latency" in parts and support.enabled:
                    latency = bench_latency(plab, args.latency_samples)
                if "crr" in parts:
                    crr = bench_crr(plab, args.rounds, args.duration, args.connections)
                progress("removing the lab")
        if "memory" in parts:
            memory = bench_memory(support, args.pods)
        if "floor" in parts:
            progress("the floor: one map operation of each kind, BPF_PROG_TEST_RUN in a tight loop")
            floor = bench_floor()
    except Exception as e:  # the report, the leftover check and the root-namespace check still run
        error = f"{type(e).__name__}: {e}"
    left = [x for lab_id in lab_ids for x in leftovers(lab_id)]
    diff = root_diff(before, root_snapshot())
    env["loadavg_end"] = os.getloadavg()

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = args.out / f"policy_bench-{stamp}.json"
    png_path = args.out / f"policy_bench-{stamp}.png"
    results = {"environment": env, "packet": packet, "floor": floor, "latency": latency, "crr": crr, "memory": memory}
    json_path.write_text(
        json.dumps({**results, "root_namespace_changes": diff, "lab_leftovers": left}, indent=2, default=str) + "\n"
    )
    try:
        plot(
            packet,
            latency,
            crr,
            memory,
            png_path,
            f"{env['time']}  load {env['loadavg_start'][0]:.2f}  kernel {env['kernel']}  {env['cpus']} CPUs  "
            f"flows {args.packet_runs}x{args.flows}/kind; policy enforcement: {support.reason[:80]}",
        )
    except ImportError:
        png_path = None
    print()
    if not support.enabled:
        print(f"SKIPPED (policy parts): {support.reason}\n")
    if packet:
        print(format_packet_table(packet))
        print(
            "(new flows: one packet per test run, minus the median of the empty program run the same way; "
            "established: a test run of `repeat` packets)"
        )
        print()
    if floor:
        print(format_floor_table(floor))
        print(
            "(a new flow's verdict takes at least a peer lookup, a rule lookup and the insert that lets later "
            "packets ride conntrack; an established packet at least one lookup)"
        )
        print()
    if latency:
        header = ["policy write to enforcement", "p50 ms", "p99 ms", "max ms", "target", "status"]
        body = []
        for name in ("allow", "deny"):
            s = latency["stats"][name]
            met = s["p99_ms"] < TARGET_LATENCY_P99_MS
            body.append(
                [
                    f"{name} ({len(latency[f'{name}_ms'])} samples)",
                    f"{s['p50_ms']:.1f}",
                    f"{s['p99_ms']:.1f}",
                    f"{s['max_ms']:.1f}",
                    f"p99 < {TARGET_LATENCY_P99_MS:.0f}",
                    "met" if met else "NOT MET",
                ]
            )
        print(format_table(header, body, left=1))
        print()
    if crr:
        m = crr["median_rps"]
        header = ["TCP_CRR (wrk, Connection: close)", "no policy", "1,000 policies", "ratio", "target", "status"]
        body = [
            [
                "connections/s, median of rounds",
                number(m["none"]),
                number(m.get("1000")) if "1000" in m else "skipped",
                "-" if crr["ratio"] is None else f"{crr['ratio']:.2f}x",
                f">= {TARGET_CRR:.2f}x",
                "-" if crr["met"] is None else "met" if crr["met"] else "NOT MET",
            ]
        ]
        print(format_table(header, body, left=1))
        print()
    if memory:
        header = ["weir-agent memory", "VmRSS MB", "VmHWM MB", "first sync s"]
        body = [
            [v["label"], f"{v['rss_mb']:.1f}", f"{v['hwm_mb']:.1f}", f"{v['synced_s']:.2f}"] for v in memory.values()
        ]
        print(format_table(header, body, left=1))
        print()
    return finish_report(diff, left, json_path, png_path, error)


if __name__ == "__main__":
    sys.exit(main())
