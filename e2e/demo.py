"""The README's demo: a two-node lab in network namespaces, pods wired by the weir CNI plugin,
Services load-balanced by weir-agent in standalone mode (YAML manifests, no cluster), requests
through a ClusterIP (socket LB and per-packet), a NodePort in SNAT mode (node1) and in DSR mode
(node2), and a LoadBalancer IP from an outside client; weirctl shows what the datapath holds.
Everything is removed on exit."""

import collections
import subprocess
import sys
import time

from weirlab.cluster import CLIENT_IP, Cluster, endpoint_slice_yaml, node_ip, service_yaml
from weirlab.lab import WEIRCTL, Lab

LB_IP = "203.0.113.10"


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def tally(replies: list[str]) -> str:
    counts = collections.Counter(r.split(":")[0] if not r.startswith("error") else r for r in replies)
    return ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))


def main() -> int:
    with Lab("demo") as lab:
        section(
            "lab: node1 (SNAT mode) and node2 (DSR mode) on a fabric, an outside client "
            f"{CLIENT_IP}; weir-agent on each node, standalone"
        )
        cluster = Cluster(lab, 2, ["snat", "dsr"])
        node1, node2 = cluster.nodes
        run = lambda cmd: subprocess.run(cmd, check=True, capture_output=True)
        run(["nsenter", f"--net=/run/netns/{cluster.client}", "ip", "route", "add", f"{LB_IP}/32", "via", node_ip(1)])

        section("pods wired by the weir CNI plugin (CNI ADD)")
        web = [node1.add_pod("web-1"), node2.add_pod("web-2"), node2.add_pod("web-3")]
        shell = node1.add_pod("shell")
        for pod in web + [shell]:
            print(f"   {pod.name:<6} {', '.join(pod.addresses())}")
        for pod in web:
            cluster.serve(pod)

        section("same-node pod to pod (out of the host veth) and cross-node (routed)")
        for target in (web[0], web[1]):
            out = shell.exec(["ping", "-c1", "-W1", target.ipv4], check=False).stdout
            rtt = [l.split("time=")[1] for l in out.splitlines() if "time=" in l]
            print(f"   shell -> {target.name} {target.ipv4}: {rtt[0] if rtt else 'LOST'}")

        section("Services from YAML: ClusterIP 10.96.0.10:80 (TCP+UDP), NodePort 30080, " f"LoadBalancer {LB_IP}")
        nodes = ["node1", "node2", "node2"]
        cluster.apply(
            "web",
            service_yaml(
                "web",
                [("http", 80, 8080, "TCP"), ("udp", 80, 8080, "UDP")],
                cluster_ip="10.96.0.10",
                type_="LoadBalancer",
                node_port=30080,
                lb_ips=[LB_IP],
            )
            + "---\n"
            + endpoint_slice_yaml("web", list(zip(web, nodes)), [("http", 8080, "TCP"), ("udp", 8080, "UDP")]),
        )
        cluster.wait_for_frontend("10.96.0.10:80", backends=3)

        section("shell pod -> ClusterIP, socket LB (connect() rewritten once, in the node's cgroup)")
        replies = [cluster.request(shell.netns, "tcp", "10.96.0.10", 80, node=node1) for _ in range(9)]
        print(f"   TCP x9: {tally(replies)}")
        replies = [cluster.request(shell.netns, "udp", "10.96.0.10", 80, node=node1) for _ in range(6)]
        print(f"   UDP x6: {tally(replies)}")
        section("shell pod -> ClusterIP, per-packet translation at the pod's veth (outside the cgroup)")
        replies = [cluster.request(shell.netns, "tcp", "10.96.0.10", 80) for _ in range(6)]
        print(f"   TCP x6: {tally(replies)}")

        events = subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{node1.netns}",
                str(WEIRCTL),
                f"--bpf_root={node1.bpf_root}",
                "events",
                "--count=6",
                "--timeout_s=20",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.3)
        section("outside client -> NodePort on node1 (SNAT: remote backends see node1's address)")
        for _ in range(4):
            print(f"   {cluster.request(cluster.client, 'tcp', node_ip(1), 30080)}")
        section("outside client -> NodePort on node2 (DSR: backends see the client, replies skip node2)")
        for _ in range(4):
            print(f"   {cluster.request(cluster.client, 'tcp', node_ip(2), 30080)}")
        section(f"outside client -> LoadBalancer {LB_IP}:80 (routed to node1)")
        for _ in range(3):
            print(f"   {cluster.request(cluster.client, 'tcp', LB_IP, 80)}")

        section("no endpoints: a Service whose backends are gone is refused at once (RST / ICMP)")
        cluster.apply(
            "empty",
            service_yaml("empty", [("http", 80, 8080, "TCP"), ("udp", 80, 8080, "UDP")], cluster_ip="10.96.0.20"),
        )
        cluster.wait_for_frontend("10.96.0.20:80")
        for proto in ("tcp", "udpc"):
            started = time.monotonic()
            reply = cluster.request(shell.netns, proto, "10.96.0.20", 80)
            print(f"   {proto} -> 10.96.0.20:80: {reply} ({(time.monotonic() - started) * 1000:.0f} ms)")

        section("weirctl events (node1: translations and drops, from the ring buffer)")
        try:
            print(events.communicate(timeout=20)[0])
        except subprocess.TimeoutExpired:
            events.kill()
        section("weirctl services (node1)")
        print(node1.weirctl("services"))
        section("weirctl conntrack (node1)")
        print(node1.weirctl("conntrack"))
        section("weirctl metrics (node1)")
        print(node1.weirctl("metrics"))

        section("removing the Service: the agents follow the manifest directory")
        cluster.delete("web")
        time.sleep(1.5)
        print(f"   shell -> ClusterIP now: {cluster.request(shell.netns, 'tcp', '10.96.0.10', 80, node=node1)}")
        section("CNI DEL for every pod; removing the lab")
        for node in cluster.nodes:
            for pod in list(node.pods.values()):
                node.delete_pod(pod)
    return 0


if __name__ == "__main__":
    sys.exit(main())
