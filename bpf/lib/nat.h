/* Rewriting addresses and ports with incremental checksum updates. */
#ifndef WEIR_BPF_NAT_H
#define WEIR_BPF_NAT_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/csum.h"
#include "bpf/lib/ctx.h"
#include "bpf/lib/packet.h"
#ifndef WEIR_XDP
#include "bpf/lib/sctp_csum.h"
#endif

static __always_inline __u64 l4_csum_flags(const struct packet *pkt, bool pseudo)
{
	__u64 flags = pseudo ? BPF_F_PSEUDO_HDR : 0;

	/* A UDP checksum of 0 means "none"; it must stay 0, and a computed 0 is sent as 0xffff. */
	if (pkt->proto == IPPROTO_UDP)
		flags |= BPF_F_MARK_MANGLED_0;
	return flags;
}

/* Headers at most this far into the packet: IPv4 with options (14 + 60) plus the L4 ports. Bounds
 * the offsets for the verifier. */
#define MAX_HEADER_OFF 128

/* Writable header bytes at `off`, which parse_packet found in the linear data. Checked again because
 * the checksum helpers invalidate every packet pointer. Fields are written directly rather than with
 * bpf_skb_store_bytes: one helper call less per field, and tc makes a cloned skb writable before the
 * program runs. */
static __always_inline void *header_at(struct ctx_buff *skb, __u32 off, __u32 len)
{
	void *data, *data_end;

	/* Loaded in asm: with many plain skb->data_end reads in one program, clang keeps &skb->data_end
	 * in a register and loads through it, which the verifier refuses for the context. */
	asm volatile("%0 = *(u32 *)(%1 + %2)" : "=r"(data) : "r"(skb), "i"(offsetof(struct ctx_buff, data)));
	asm volatile("%0 = *(u32 *)(%1 + %2)"
		     : "=r"(data_end)
		     : "r"(skb), "i"(offsetof(struct ctx_buff, data_end)));

	if (off > MAX_HEADER_OFF || data + off + len > data_end)
		return NULL;
	return data + off;
}

static __always_inline int rewrite_addr(struct ctx_buff *skb, const struct packet *pkt, bool source,
					const union weir_addr *old, const union weir_addr *new)
{
	if (pkt->family == WEIR_FAMILY_IPV4) {
		__be32 from = old->v4, to = new->v4;

		/* ICMP's checksum covers no pseudo header (ICMPv6's does). */
		if (pkt->l4_csum_off && pkt->proto != IPPROTO_ICMP &&
		    ctx_l4_csum_replace(skb, pkt->l4_csum_off, from, to, l4_csum_flags(pkt, true) | 4))
			return -1;
		/* The IPv4 header checksum covers only the header: no skb checksum state to keep. */
		struct iphdr *ip4 = header_at(skb, pkt->l3_off, sizeof(struct iphdr));

		if (!ip4)
			return -1;
		csum_replace4(&ip4->check, from, to);
		if (source)
			ip4->saddr = to;
		else
			ip4->daddr = to;
		return 0;
	}
	if (pkt->l4_csum_off) {
		/* Inlining this sum instead costs more stack than from_uplink has left. */
		__s64 diff = bpf_csum_diff((__be32 *)old->v6, 16, (__be32 *)new->v6, 16, 0);

		if (diff < 0 || ctx_l4_csum_replace(skb, pkt->l4_csum_off, 0, diff, l4_csum_flags(pkt, true)))
			return -1;
	}
	struct ipv6hdr *ip6 = header_at(skb, pkt->l3_off, sizeof(struct ipv6hdr));

	if (!ip6)
		return -1;
	__builtin_memcpy(source ? ip6->saddr.in6_u.u6_addr32 : ip6->daddr.in6_u.u6_addr32, new->v6, 16);
	return 0;
}

static __always_inline int rewrite_port(struct ctx_buff *skb, const struct packet *pkt, bool source,
					__be16 old, __be16 new)
{
	if (old == new)
		return 0;
	if (pkt->proto == IPPROTO_SCTP)
#ifdef WEIR_XDP
		return -1; /* from_uplink_xdp hands SCTP to tc before translating anything */
#else
		return sctp_rewrite_port(skb, pkt->l3_off, pkt->l4_off, pkt->family, source, old, new);
#endif
	if (pkt->l4_csum_off &&
	    ctx_l4_csum_replace(skb, pkt->l4_csum_off, old, new, l4_csum_flags(pkt, false) | 2))
		return -1;
	if (pkt->echo) {
		/* One identifier for both directions: the request's source, the reply's destination. */
		__be16 *id = header_at(skb, pkt->l4_off + ICMP_ECHO_ID_OFF, sizeof(__be16));

		if (!id)
			return -1;
		*id = new;
		return 0;
	}
	__be16 *ports = header_at(skb, pkt->l4_off, 2 * sizeof(__be16));

	if (!ports)
		return -1;
	ports[source ? 0 : 1] = new;
	return 0;
}

/* Destination becomes addr:port. */
static __always_inline int dnat(struct ctx_buff *skb, struct packet *pkt, const union weir_addr *addr,
				__be16 port)
{
	if (rewrite_addr(skb, pkt, false, &pkt->daddr, addr) ||
	    rewrite_port(skb, pkt, false, pkt->dport, port))
		return -1;
	pkt->daddr = *addr;
	pkt->dport = port;
	return 0;
}

/* Source becomes addr:port. */
static __always_inline int snat(struct ctx_buff *skb, struct packet *pkt, const union weir_addr *addr,
				__be16 port)
{
	if (rewrite_addr(skb, pkt, true, &pkt->saddr, addr) || rewrite_port(skb, pkt, true, pkt->sport, port))
		return -1;
	pkt->saddr = *addr;
	pkt->sport = port;
	return 0;
}

#endif
