/* A routed hop: the node forwards a packet as its stack would, so the TTL (hop limit) goes down by
 * one, and a packet that has none left is not forwarded (the stack then answers it with ICMP time
 * exceeded). */
#ifndef WEIR_BPF_TTL_H
#define WEIR_BPF_TTL_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <stdbool.h>
#include <bpf/bpf_endian.h>

#include "bpf/abi/endpoint.h"
#include "bpf/lib/csum.h"
#include "bpf/lib/ctx.h"
#include "bpf/lib/nat.h"

static __always_inline bool decrement_ttl_v4(struct ctx_buff *skb)
{
	struct iphdr *ip4 = header_at(skb, sizeof(struct ethhdr), sizeof(struct iphdr));

	if (!ip4 || ip4->ttl <= 1)
		return false;
	/* The TTL shares a 16-bit checksum word with the protocol. */
	__u16 old_word = bpf_htons((__u16)ip4->ttl << 8 | ip4->protocol);
	__u16 new_word = bpf_htons((__u16)(ip4->ttl - 1) << 8 | ip4->protocol);

	ip4->ttl--;
	csum_replace2(&ip4->check, old_word, new_word);
	return true;
}

static __always_inline bool decrement_hop_limit_v6(struct ctx_buff *skb)
{
	struct ipv6hdr *ip6 = header_at(skb, sizeof(struct ethhdr), sizeof(struct ipv6hdr));

	if (!ip6 || ip6->hop_limit <= 1)
		return false;
	ip6->hop_limit--;
	return true;
}

/* Returns false when the packet must not be forwarded. */
static __always_inline bool routed_hop(struct ctx_buff *skb, __u8 family)
{
	return family == WEIR_FAMILY_IPV4 ? decrement_ttl_v4(skb) : decrement_hop_limit_v6(skb);
}

#endif
