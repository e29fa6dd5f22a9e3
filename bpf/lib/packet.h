/* A parsed view of an IPv4/IPv6 packet with its L4 ports: what translation needs, with the offsets
 * of every field it may rewrite. Pointers into the packet are not kept: helpers that change the
 * packet invalidate them. */
#ifndef WEIR_BPF_PACKET_H
#define WEIR_BPF_PACKET_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <stdbool.h>
#include <stddef.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi/endpoint.h"
#include "bpf/lib/ctx.h"

struct packet {
	union weir_addr saddr;
	union weir_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto; /* IPPROTO_TCP / UDP / SCTP, or another L4 (ports then 0) */
	__u8 family; /* enum weir_ip_family */
	__u8 tcp_flags; /* byte 13 of the TCP header */
	__u8 has_ports;
	__u16 l3_off;
	__u16 l4_off;
	__u16 l4_csum_off; /* 0: no L4 checksum to fix (SCTP's CRC covers no addresses) */
	__u8 echo; /* enum icmp_echo: an ICMP(v6) echo, whose identifier stands in for a port */
	__u8 from_pod; /* set by the program on a pod's device; decides how a local pod is entered */
};

/* An echo request carries its identifier as the source "port", the reply as the destination's, so
 * that a request and its reply make the same tuple reversed (as in Cilium and netfilter). Portless
 * otherwise (has_ports stays 0): no Service is looked up for them. */
enum icmp_echo {
	ECHO_NONE = 0,
	ECHO_REQUEST = 1,
	ECHO_REPLY = 2,
};

#define ICMP_ECHO_REQUEST 8
#define ICMP_ECHO_REPLY 0
#define ICMPV6_ECHO_REQUEST_TYPE 128
#define ICMPV6_ECHO_REPLY_TYPE 129
/* type, code, checksum, then the identifier */
#define ICMP_ECHO_ID_OFF 4

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

/* What parsing found. Only PARSE_OK leaves `pkt` describing the packet. */
enum parse_result {
	PARSE_TRUNCATED = -1, /* a header runs past the linear data */
	PARSE_OK = 0,
	PARSE_NOT_IP = 1, /* neither IPv4 nor IPv6: the stack's business */
};

static __always_inline enum parse_result parse_echo(struct ctx_buff *skb, struct packet *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *icmp = data + pkt->l4_off;

	if ((void *)(icmp + 8) > data_end)
		return PARSE_TRUNCATED;
	bool v4 = pkt->family == WEIR_FAMILY_IPV4;
	__be16 id = *(__be16 *)(icmp + ICMP_ECHO_ID_OFF);

	if (icmp[0] == (v4 ? ICMP_ECHO_REQUEST : ICMPV6_ECHO_REQUEST_TYPE)) {
		pkt->echo = ECHO_REQUEST;
		pkt->sport = id;
	} else if (icmp[0] == (v4 ? ICMP_ECHO_REPLY : ICMPV6_ECHO_REPLY_TYPE)) {
		pkt->echo = ECHO_REPLY;
		pkt->dport = id;
	} else {
		return PARSE_OK;
	}
	pkt->l4_csum_off = pkt->l4_off + 2;
	return PARSE_OK;
}

static __always_inline enum parse_result parse_l4(struct ctx_buff *skb, struct packet *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u16 *ports = data + pkt->l4_off;

	if ((pkt->family == WEIR_FAMILY_IPV4 && pkt->proto == IPPROTO_ICMP) ||
	    (pkt->family == WEIR_FAMILY_IPV6 && pkt->proto == IPPROTO_ICMPV6))
		return parse_echo(skb, pkt);
	if (pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP && pkt->proto != IPPROTO_SCTP)
		return PARSE_OK;
	if ((void *)(ports + 2) > data_end)
		return PARSE_TRUNCATED;
	pkt->sport = ports[0];
	pkt->dport = ports[1];
	pkt->has_ports = 1;
	if (pkt->proto == IPPROTO_TCP) {
		struct tcphdr *tcp = data + pkt->l4_off;

		if ((void *)(tcp + 1) > data_end)
			return PARSE_TRUNCATED;
		pkt->tcp_flags = ((__u8 *)tcp)[13];
		pkt->l4_csum_off = pkt->l4_off + offsetof(struct tcphdr, check);
	} else if (pkt->proto == IPPROTO_UDP) {
		pkt->l4_csum_off = pkt->l4_off + offsetof(struct udphdr, check);
	}
	return PARSE_OK;
}

static __always_inline enum parse_result parse_packet(struct ctx_buff *skb, struct packet *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return PARSE_TRUNCATED;
	pkt->l3_off = sizeof(*eth);
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip4 = (void *)(eth + 1);

		if ((void *)(ip4 + 1) > data_end || ip4->ihl < 5)
			return PARSE_TRUNCATED;
		pkt->family = WEIR_FAMILY_IPV4;
		pkt->saddr.v4 = ip4->saddr;
		pkt->daddr.v4 = ip4->daddr;
		pkt->proto = ip4->protocol;
		pkt->l4_off = pkt->l3_off + ip4->ihl * 4;
		/* Later fragments carry no ports. */
		if (ip4->frag_off & bpf_htons(0x1fff))
			return PARSE_OK;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return PARSE_TRUNCATED;
		pkt->family = WEIR_FAMILY_IPV6;
		__builtin_memcpy(pkt->saddr.v6, ip6->saddr.in6_u.u6_addr32, 16);
		__builtin_memcpy(pkt->daddr.v6, ip6->daddr.in6_u.u6_addr32, 16);
		pkt->proto = ip6->nexthdr; /* extension headers: treated as portless */
		pkt->l4_off = pkt->l3_off + sizeof(*ip6);
	} else {
		return PARSE_NOT_IP;
	}
	return parse_l4(skb, pkt);
}

static __always_inline bool addr_equal(const union weir_addr *a, const union weir_addr *b)
{
	return a->v6[0] == b->v6[0] && a->v6[1] == b->v6[1] && a->v6[2] == b->v6[2] && a->v6[3] == b->v6[3];
}

static __always_inline __u32 flow_hash(const struct packet *pkt)
{
	__u32 h = pkt->saddr.v6[0] ^ pkt->saddr.v6[1] ^ pkt->saddr.v6[2] ^ pkt->saddr.v6[3];

	h = h * 0x9e3779b1u ^ (pkt->daddr.v6[0] ^ pkt->daddr.v6[1] ^ pkt->daddr.v6[2] ^ pkt->daddr.v6[3]);
	h = h * 0x85ebca6bu ^ ((__u32)pkt->sport << 16 | pkt->dport);
	h = h * 0xc2b2ae35u ^ pkt->proto;
	h ^= h >> 16;
	return h ? h : 1;
}

#endif
