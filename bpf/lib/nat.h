/* Rewriting addresses and ports with incremental checksum updates. */
#ifndef WEIR_BPF_NAT_H
#define WEIR_BPF_NAT_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/packet.h"

#define IPV4_CSUM_OFF(pkt) ((pkt)->l3_off + offsetof(struct iphdr, check))
#define IPV4_SADDR_OFF(pkt) ((pkt)->l3_off + offsetof(struct iphdr, saddr))
#define IPV4_DADDR_OFF(pkt) ((pkt)->l3_off + offsetof(struct iphdr, daddr))
#define IPV6_SADDR_OFF(pkt) ((pkt)->l3_off + offsetof(struct ipv6hdr, saddr))
#define IPV6_DADDR_OFF(pkt) ((pkt)->l3_off + offsetof(struct ipv6hdr, daddr))

static __always_inline __u64 l4_csum_flags(const struct packet *pkt, bool pseudo)
{
	__u64 flags = pseudo ? BPF_F_PSEUDO_HDR : 0;

	/* A UDP checksum of 0 means "none"; it must stay 0, and a computed 0 is sent as 0xffff. */
	if (pkt->proto == IPPROTO_UDP)
		flags |= BPF_F_MARK_MANGLED_0;
	return flags;
}

static __always_inline int rewrite_addr(struct __sk_buff *skb, const struct packet *pkt, bool source,
					const union weir_addr *old, const union weir_addr *new)
{
	if (pkt->family == WEIR_FAMILY_IPV4) {
		__u32 off = source ? IPV4_SADDR_OFF(pkt) : IPV4_DADDR_OFF(pkt);

		if (pkt->l4_csum_off &&
		    bpf_l4_csum_replace(skb, pkt->l4_csum_off, old->v4, new->v4, l4_csum_flags(pkt, true) | 4))
			return -1;
		if (bpf_l3_csum_replace(skb, IPV4_CSUM_OFF(pkt), old->v4, new->v4, 4))
			return -1;
		return bpf_skb_store_bytes(skb, off, &new->v4, 4, 0);
	}
	__u32 off = source ? IPV6_SADDR_OFF(pkt) : IPV6_DADDR_OFF(pkt);

	if (pkt->l4_csum_off) {
		__s64 diff = bpf_csum_diff((__be32 *)old->v6, 16, (__be32 *)new->v6, 16, 0);

		if (diff < 0 || bpf_l4_csum_replace(skb, pkt->l4_csum_off, 0, diff, l4_csum_flags(pkt, true)))
			return -1;
	}
	return bpf_skb_store_bytes(skb, off, new->v6, 16, 0);
}

static __always_inline int rewrite_port(struct __sk_buff *skb, const struct packet *pkt, bool source,
					__be16 old, __be16 new)
{
	if (old == new)
		return 0;
	if (pkt->proto == IPPROTO_SCTP)
		return -1;	/* SCTP's CRC32c cannot be updated incrementally */
	if (pkt->l4_csum_off && bpf_l4_csum_replace(skb, pkt->l4_csum_off, old, new, l4_csum_flags(pkt, false) | 2))
		return -1;
	return bpf_skb_store_bytes(skb, pkt->l4_off + (source ? 0 : 2), &new, 2, 0);
}

/* Destination becomes addr:port. */
static __always_inline int dnat(struct __sk_buff *skb, struct packet *pkt, const union weir_addr *addr, __be16 port)
{
	if (rewrite_addr(skb, pkt, false, &pkt->daddr, addr) || rewrite_port(skb, pkt, false, pkt->dport, port))
		return -1;
	pkt->daddr = *addr;
	pkt->dport = port;
	return 0;
}

/* Source becomes addr:port. */
static __always_inline int snat(struct __sk_buff *skb, struct packet *pkt, const union weir_addr *addr, __be16 port)
{
	if (rewrite_addr(skb, pkt, true, &pkt->saddr, addr) || rewrite_port(skb, pkt, true, pkt->sport, port))
		return -1;
	pkt->saddr = *addr;
	pkt->sport = port;
	return 0;
}

#endif
