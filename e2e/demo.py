"""The README's demo: one node, a handful of pods wired by the weir CNI plugin, traffic between them
delivered by weir's datapath, and weirctl showing what the datapath holds. Cleans up on exit."""
import json
import subprocess
import sys
import time

from e2e.lab import NETCHECK, Lab


def main() -> int:
    with Lab("demo") as lab:
        print("== node1: a network namespace with weir-agent and a private bpffs")
        node = lab.add_node("node1", ["10.244.1.0/24", "fd00:10:244:1::/112"])
        pods = []
        for i in range(4):
            pod = node.add_pod(f"pod{i}")
            pods.append(pod)
            print(f"   ADD pod{i}: {', '.join(pod.addresses())}")
        servers = [lab.spawn(["nsenter", f"--net=/run/netns/{p.netns}", "python3", str(NETCHECK), "serve", "8080"],
                              stdout=subprocess.DEVNULL)
                   for p in pods]
        time.sleep(0.5)

        print("== pod0 pings every other pod (IPv4 and IPv6)")
        for pod in pods[1:]:
            for address in pod.addresses():
                out = pods[0].exec(["ping", "-c1", "-W1", address], check=False)
                line = [l for l in out.stdout.splitlines() if "time=" in l]
                print(f"   {address:<24} {line[0].split('time=')[1] if line else 'LOST'}")

        print("== pod0 opens TCP and UDP to every other pod")
        for proto in ("tcp", "udp"):
            targets = [a for p in pods[1:] for a in p.addresses()]
            out = pods[0].exec(["python3", str(NETCHECK), proto, "8080", *targets])
            for target, reply in json.loads(out.stdout).items():
                print(f"   {proto} {target:<24} {reply}")

        print("== weirctl endpoints")
        print(node.weirctl("endpoints"))
        print("== weirctl metrics (local_delivery: packets redirected pod-to-pod by bpf_redirect_peer)")
        print(node.weirctl("metrics"))
        for proc in servers:
            proc.kill()
        for pod in list(node.pods.values()):
            node.delete_pod(pod)
        print("== DEL for every pod done; removing the lab")
    return 0


if __name__ == "__main__":
    sys.exit(main())
