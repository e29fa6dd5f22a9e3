// SPDX-License-Identifier: GPL-2.0
/* Attached at tc ingress of the host end of every pod veth: everything a pod sends starts here. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/arp.h"
#include "bpf/lib/delivery.h"
#include "bpf/lib/eth.h"
#include "bpf/lib/maps.h"
#include "bpf/lib/nd.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = parse_eth(skb);

	if (!eth) {
		count(WEIR_METRIC_PARSE_ERROR, skb);
		return TC_ACT_OK;
	}

	switch (eth->h_proto) {
	case bpf_htons(ETH_P_ARP):
		return answer_arp(skb);
	case bpf_htons(ETH_P_IP): {
		struct iphdr *ip4 = (void *)(eth + 1);

		if ((void *)(ip4 + 1) > data_end) {
			count(WEIR_METRIC_PARSE_ERROR, skb);
			return TC_ACT_OK;
		}
		return deliver_v4(skb, ip4->daddr);
	}
	case bpf_htons(ETH_P_IPV6): {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end) {
			count(WEIR_METRIC_PARSE_ERROR, skb);
			return TC_ACT_OK;
		}
		if (ip6->nexthdr == IPPROTO_ICMPV6) {
			int verdict = answer_nd(skb);

			if (verdict != TC_ACT_OK)
				return verdict;
			/* answer_nd may have resized nothing when it declined, but re-parse to be safe. */
			data_end = (void *)(long)skb->data_end;
			ip6 = (void *)(long)skb->data + sizeof(struct ethhdr);
			if ((void *)(ip6 + 1) > data_end)
				return TC_ACT_OK;
		}
		struct in6_addr daddr = ip6->daddr;

		return deliver_v6(skb, &daddr);
	}
	default:
		count(WEIR_METRIC_TO_STACK, skb);
		return TC_ACT_OK;
	}
}
