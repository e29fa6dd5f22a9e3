// SPDX-License-Identifier: GPL-2.0
/* The packet generator of bench/dataplane_bench.py (run by bench/xdp_traffic_gen.cc): the kernel runs
 * it with BPF_PROG_TEST_RUN and BPF_F_TEST_XDP_LIVE_FRAMES on a prebuilt IPv4/UDP frame, and sends
 * every frame it returns XDP_TX for out of the device the run names (a veth end in a lab namespace,
 * whose peer is the measured node's uplink). Frames cost no socket, no skb and no qdisc here.
 *
 * A page of the kernel's generator comes back with whatever the receiver left in it: a node that
 * forwarded the frame rewrote its MAC addresses, TTL and ports in place (and DSR moved its headers).
 * So every frame is written again from the template (its first 128 bytes, in 8-byte words: the
 * headers and the start of the payload, all a node ever writes), and gets the next of `flows` source
 * ports, its checksum updated from the template's. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define TEMPLATE_WORDS 16

const volatile __u64 frame_template[TEMPLATE_WORDS];
const volatile __u32 flows = 1;
const volatile __u16 first_source_port = 10000;

__u64 frames; /* one CPU runs the test: no atomics needed */

/* RFC 1624: HC' = ~(~HC + ~m + m'); an IPv4 UDP checksum of 0 means "none" and stays so. */
static __always_inline __u16 checksum_replace(__u16 check, __u16 from, __u16 to)
{
	__u32 sum = (__u16)~check + (__u16)~from + to;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	__u16 folded = ~sum;

	return folded ? folded : 0xffff;
}

SEC("xdp")
int xdp_traffic_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

#pragma unroll
	for (int i = 0; i < TEMPLATE_WORDS; i++) {
		if (data + (i + 1) * 8 > data_end)
			break;
		((__u64 *)data)[i] = frame_template[i];
	}
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > data_end)
		return XDP_ABORTED;
	__u64 n = frames++;

	if (flows > 1) {
		__u16 port = bpf_htons(first_source_port + (__u16)(n % flows));

		if (udp->check)
			udp->check = checksum_replace(udp->check, udp->source, port);
		udp->source = port;
	}
	return XDP_TX;
}
