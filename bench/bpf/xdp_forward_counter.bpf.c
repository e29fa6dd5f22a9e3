// SPDX-License-Identifier: GPL-2.0
/* The wire's far end in bench/dataplane_bench.py: attached (native XDP) to the fabric's end of a
 * measured node's uplink veth, it counts and drops every IPv4 UDP or IP-in-IP packet the node sends
 * (what the node forwarded: translated, wrapped for DSR, or only routed), and passes everything else
 * (ARP, ICMP, TCP: the lab's control traffic). Dropping here keeps the bridge, the backend and its
 * socket out of the measurement; on the generator's own target it is the drop program that shows
 * the generator's limit. Its presence also makes the veth deliver frames sent with XDP_TX. It is
 * frags-aware (it reads only the first buffer) because the lab's uplinks have a 9000-byte MTU. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} forwarded_packets SEC(".maps");

SEC("xdp.frags")
int xdp_forward_counter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_IPIP)
		return XDP_PASS;
	__u32 key = 0;
	__u64 *count = bpf_map_lookup_elem(&forwarded_packets, &key);

	if (count)
		*count += 1;
	return XDP_DROP;
}
