// SPDX-License-Identifier: GPL-2.0
/* Attached at tc ingress of the host end of every pod veth: everything a pod sends starts here. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/arp.h"
#include "bpf/lib/delivery.h"
#include "bpf/lib/forward.h"
#include "bpf/lib/eth.h"
#include "bpf/lib/maps.h"
#include "bpf/lib/nd.h"
#include "bpf/lib/packet.h"
#include "bpf/lib/reject.h"
#include "bpf/lib/service_nat.h"

char LICENSE[] SEC("license") = "GPL";

static __always_inline bool is_icmpv6(struct __sk_buff *skb)
{
	struct ipv6hdr *ip6 = (void *)(long)skb->data + sizeof(struct ethhdr);

	return (void *)(ip6 + 1) <= (void *)(long)skb->data_end && ip6->nexthdr == IPPROTO_ICMPV6;
}

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	struct ethhdr *eth = parse_eth(skb);

	if (!eth) {
		count(WEIR_METRIC_PARSE_ERROR, skb);
		return TC_ACT_OK;
	}
	if (eth->h_proto == bpf_htons(ETH_P_ARP))
		return answer_arp(skb);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6) && is_icmpv6(skb)) {
		int verdict = answer_nd(skb);

		if (verdict != TC_ACT_OK)
			return verdict;
	}

	struct packet pkt = {.from_pod = 1};
	switch (parse_packet(skb, &pkt)) {
	case PARSE_TRUNCATED:
		count(WEIR_METRIC_PARSE_ERROR, skb);
		return TC_ACT_OK;
	case PARSE_NOT_IP:
		count(WEIR_METRIC_TO_STACK, skb);
		return TC_ACT_OK;
	case PARSE_OK:
		break;
	}
	/* The sender's endpoint entry (by the packet's source address) decides whether the packet meets
	 * an egress gate at all. */
	bool judged = policy_remember_sender(&pkt);
	enum translation result = translate_tracked(skb, &pkt);

	if (result == TRANSLATION_NONE)
		result = judged && policy_sender_plain_flow() ? TRANSLATION_PLAIN
							      : translate_new_flow(skb, &pkt, true);

	return forward_translated(skb, &pkt, true, result, NULL);
}
