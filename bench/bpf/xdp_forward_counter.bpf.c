// SPDX-License-Identifier: GPL-2.0
/* The wire's far end in bench/dataplane_bench.py: attached (native XDP) to the fabric's end of a
 * measured node's uplink veth, it counts and drops every IPv4 UDP or IP-in-IP packet the node sends
 * (what the node forwarded: translated, wrapped for DSR, or only routed), and passes everything else
 * (ARP, ICMP, TCP: the lab's control traffic). Dropping here keeps the bridge, the backend and its
 * socket out of the measurement; on the generator's own target it is the drop program that shows
 * the generator's limit. Its presence also makes the veth deliver frames sent with XDP_TX. It is
 * frags-aware (it reads only the first buffer) because the lab's uplinks have a 9000-byte MTU.
 * Every 1024th packet's first bytes are kept in sample_packet: the bench checks that what it counts
 * is what a backend would receive (addresses, ports, checksums). */
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

#define SAMPLE_BYTES 128
#define SAMPLE_EVERY 1024

struct sample {
	__u32 len;
	__u8 bytes[SAMPLE_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sample);
} sample_packet SEC(".maps");

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

	if (!count)
		return XDP_DROP;
	if ((*count)++ % SAMPLE_EVERY == 0) {
		struct sample *sample = bpf_map_lookup_elem(&sample_packet, &key);
		__u64 len = (__u64)(data_end - data);

		/* the barrier keeps the bounds check on the register the helper gets */
		asm volatile("" : "+r"(len));
		if (len > SAMPLE_BYTES)
			len = SAMPLE_BYTES;
		if (sample && len >= sizeof(*eth) + sizeof(*ip) &&
		    bpf_xdp_load_bytes(ctx, 0, sample->bytes, len) == 0)
			sample->len = len;
	}
	return XDP_DROP;
}
