/* Sending a packet on towards a destination that is not a local pod, without the node's input path
 * (which would drop a packet whose translated source is the node's own address as a martian). */
#ifndef WEIR_BPF_FIB_H
#define WEIR_BPF_FIB_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/maps.h"
#include "bpf/lib/packet.h"
#include "bpf/lib/ttl.h"

#define AF_INET 2
#define AF_INET6 10

/* The route `pkt` would take out of this node, from the interface it came in on. Returns the
 * helper's result (BPF_FIB_LKUP_RET_*, or a negative error); `params` holds the egress interface
 * and, on success, the MACs. */
static __always_inline long fib_lookup_for(struct ctx_buff *skb, const struct packet *pkt,
					   struct bpf_fib_lookup *params)
{
	params->ifindex = skb->ingress_ifindex;
	params->l4_protocol = pkt->proto;
	params->sport = pkt->sport;
	params->dport = pkt->dport;
	params->tot_len = 0;
	if (pkt->family == WEIR_FAMILY_IPV4) {
		params->family = AF_INET;
		params->ipv4_src = pkt->saddr.v4;
		params->ipv4_dst = pkt->daddr.v4;
	} else {
		params->family = AF_INET6;
		__builtin_memcpy(params->ipv6_src, pkt->saddr.v6, 16);
		__builtin_memcpy(params->ipv6_dst, pkt->daddr.v6, 16);
	}
	return bpf_fib_lookup(skb, params, sizeof(*params), 0);
}

/* Sends the packet where fib_lookup_for found its route; to the stack when there is none. */
static __always_inline int fib_forward(struct ctx_buff *skb, const struct bpf_fib_lookup *params, long rc)
{
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return bpf_redirect_neigh(params->ifindex, NULL, 0, 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return TC_ACT_OK;

	struct ethhdr *eth = (void *)(long)skb->data;

	if ((void *)(eth + 1) > (void *)(long)skb->data_end)
		return TC_ACT_SHOT;
	__builtin_memcpy(eth->h_dest, params->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, params->smac, ETH_ALEN);
	return bpf_redirect(params->ifindex, 0);
}

/* A routed hop out of the node: a translated packet to another node or the outside. */
static __always_inline int fib_redirect(struct ctx_buff *skb, const struct packet *pkt)
{
	struct bpf_fib_lookup params = {};
	long rc = fib_lookup_for(skb, pkt, &params);

	if ((rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH) &&
	    !routed_hop(skb, pkt->family)) {
		count(WEIR_METRIC_TTL_EXCEEDED, skb);
		return TC_ACT_OK;
	}
	return fib_forward(skb, &params, rc);
}

/* A packet wrapped for DSR to the backend's node: its outer header is this node's own, and the
 * client's packet inside keeps its TTL, as an IPVS tunnel does. */
static __always_inline int fib_send_wrapped(struct ctx_buff *skb, const struct packet *pkt)
{
	struct bpf_fib_lookup params = {};

	return fib_forward(skb, &params, fib_lookup_for(skb, pkt, &params));
}

#endif
