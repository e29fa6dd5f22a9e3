/* Direct server return with IPIP: the node a client reached forwards the packet unchanged inside an
 * IPv4-in-IPv4 (IPv6: IPv6-in-IPv6) header addressed to the backend; the backend's node unwraps it,
 * translates the destination to the backend and remembers the frontend, so that the backend's reply
 * leaves that node straight to the client with the frontend as its source. The outer header's IP id
 * (IPv6: its flow label, see dsr_encap_ip6ip6) carries the backend port (the outer destination is
 * the backend address), so no extra option is needed. */
#ifndef WEIR_BPF_DSR_H
#define WEIR_BPF_DSR_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/conntrack.h"
#include "bpf/lib/csum.h"
#include "bpf/lib/ctx.h"
#include "bpf/lib/nat.h"
#include "bpf/lib/packet.h"

#define IPIP_OUTER_TTL 64
#define IP6IP6_OUTER_HOP_LIMIT 64

/* The IP-option variant: the client's packet, translated to the backend, carries the frontend in an
 * IPv4 option (the type Cilium uses too), which the backend's node takes off. No encapsulation, so
 * no MTU headroom is needed beyond 8 bytes. */
#define DSR_IP_OPTION_TYPE 0x9a
#define IPV4_PLAIN_L4_OFF (sizeof(struct ethhdr) + sizeof(struct iphdr))

struct dsr_ip_option {
	__u8 type;
	__u8 len;
	__be16 port;
	__be32 addr;
};

#define IPV4_OPTION_L4_OFF (IPV4_PLAIN_L4_OFF + sizeof(struct dsr_ip_option))

static __always_inline int ipv4_rewrite_header_length(struct ctx_buff *skb, __u8 ihl, int delta)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip4 = data + sizeof(struct ethhdr);

	if ((void *)(ip4 + 1) > data_end)
		return -1;
	ip4->ihl = ihl;
	ip4->tot_len = bpf_htons(bpf_ntohs(ip4->tot_len) + delta);
	ip4->check = 0;
	if (ihl == 5) {
		__s64 sum = bpf_csum_diff(NULL, 0, (__be32 *)ip4, sizeof(struct iphdr), 0);

		if (sum < 0)
			return -1;
		ip4->check = csum_fold32((__u32)sum);
		return 0;
	}
	if (data + IPV4_OPTION_L4_OFF > data_end)
		return -1;
	__s64 sum =
		bpf_csum_diff(NULL, 0, (__be32 *)ip4, sizeof(struct iphdr) + sizeof(struct dsr_ip_option), 0);

	if (sum < 0)
		return -1;
	ip4->check = csum_fold32((__u32)sum);
	return 0;
}

/* On the node the client reached: translate to the backend and add the frontend as an option. */
static __always_inline int dsr_add_ip_option(struct ctx_buff *skb, struct packet *pkt,
					     const struct weir_backend *backend)
{
	if (pkt->family != WEIR_FAMILY_IPV4 || pkt->l4_off != IPV4_PLAIN_L4_OFF)
		return -1;
	__be32 frontend = pkt->daddr.v4;
	__be16 frontend_port = pkt->dport;

	if (dnat(skb, pkt, &backend->addr, backend->port))
		return -1;
	if (ctx_adjust_room(skb, sizeof(struct dsr_ip_option), BPF_ADJ_ROOM_NET, 0))
		return -1;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct dsr_ip_option *opt = data + IPV4_PLAIN_L4_OFF;

	if ((void *)(opt + 1) > data_end)
		return -1;
	opt->type = DSR_IP_OPTION_TYPE;
	opt->len = sizeof(*opt);
	opt->port = frontend_port;
	opt->addr = frontend;
	if (ipv4_rewrite_header_length(skb, 7, sizeof(*opt)))
		return -1;
	pkt->l4_off = IPV4_OPTION_L4_OFF;
	if (pkt->l4_csum_off)
		pkt->l4_csum_off += sizeof(*opt);
	return 0;
}

/* What the backend's node found in a packet from its uplink. */
enum dsr_unwrap_result {
	DSR_ERROR = -1, /* weir's, but it could not be taken apart: dropped and counted */
	DSR_UNWRAPPED = 0, /* `pkt` now describes the inner packet for a local backend */
	DSR_NOT_OURS = 1, /* not a DSR packet of weir's: the ordinary path */
};

/* On the backend's node: a packet for a local pod carrying weir's option. Records the flow so the
 * reply is sent as the frontend and removes the option. DSR_NOT_OURS when the packet has no such
 * option. */
static __always_inline enum dsr_unwrap_result dsr_take_ip_option(struct ctx_buff *skb, struct packet *pkt)
{
	if (pkt->family != WEIR_FAMILY_IPV4 || pkt->l4_off != IPV4_OPTION_L4_OFF || !pkt->has_ports)
		return DSR_NOT_OURS;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct dsr_ip_option *opt = data + IPV4_PLAIN_L4_OFF;

	if ((void *)(opt + 1) > data_end || opt->type != DSR_IP_OPTION_TYPE || opt->len != sizeof(*opt))
		return DSR_NOT_OURS;
	struct packet as_sent = *pkt;

	as_sent.daddr.v4 = opt->addr;
	as_sent.dport = opt->port;
	struct weir_backend backend = {.port = pkt->dport, .proto = pkt->proto, .family = WEIR_FAMILY_IPV4};

	backend.addr.v4 = pkt->daddr.v4;
	if (ct_remember_dsr_reply(&as_sent, &backend))
		return DSR_ERROR;
	if (ctx_adjust_room(skb, -(int)sizeof(struct dsr_ip_option), BPF_ADJ_ROOM_NET, 0))
		return DSR_ERROR;
	if (ipv4_rewrite_header_length(skb, 5, -(int)sizeof(struct dsr_ip_option)))
		return DSR_ERROR;
	pkt->l4_off = IPV4_PLAIN_L4_OFF;
	if (pkt->l4_csum_off)
		pkt->l4_csum_off -= sizeof(struct dsr_ip_option);
	return DSR_UNWRAPPED;
}

/* Wraps the IPv4 packet for `backend`; afterwards `pkt` describes the outer packet. */
static __always_inline int dsr_encap_ipip(struct ctx_buff *skb, struct packet *pkt, __be32 outer_src,
					  const struct weir_backend *backend)
{
	__u16 inner_len = ctx_len(skb) - sizeof(struct ethhdr);

	if (ctx_adjust_room(skb, sizeof(struct iphdr), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4))
		return -1;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *outer = data + sizeof(struct ethhdr);

	if ((void *)(outer + 1) > data_end)
		return -1;
	outer->version = 4;
	outer->ihl = 5;
	outer->tos = 0;
	outer->tot_len = bpf_htons(inner_len + sizeof(struct iphdr));
	outer->id = backend->port;
	outer->frag_off = 0;
	outer->ttl = IPIP_OUTER_TTL;
	outer->protocol = IPPROTO_IPIP;
	outer->check = 0;
	outer->saddr = outer_src;
	outer->daddr = backend->addr.v4;
	__s64 sum = bpf_csum_diff(NULL, 0, (__be32 *)outer, sizeof(*outer), 0);

	if (sum < 0)
		return -1;
	outer->check = csum_fold32((__u32)sum);

	pkt->saddr.v4 = outer_src;
	pkt->daddr.v4 = backend->addr.v4;
	pkt->proto = IPPROTO_IPIP;
	pkt->sport = pkt->dport = 0;
	return 0;
}

/* The common tail of both unwrappings: takes the `outer_len` bytes of outer header off, records the
 * flow so the reply is sent as the frontend, and points the inner destination at `backend`. */
static __always_inline enum dsr_unwrap_result dsr_unwrap(struct ctx_buff *skb, struct packet *pkt,
							 __u32 outer_len, const struct weir_backend *backend)
{
	if (ctx_adjust_room(skb, -(int)outer_len, BPF_ADJ_ROOM_MAC, 0))
		return DSR_ERROR;
	struct packet inner = {};

	if (parse_packet(skb, &inner) != PARSE_OK || !inner.has_ports)
		return DSR_ERROR;
	if (ct_remember_dsr_reply(&inner, backend))
		return DSR_ERROR;
	if (dnat(skb, &inner, &backend->addr, backend->port))
		return DSR_ERROR;
	*pkt = inner;
	return DSR_UNWRAPPED;
}

/* On the backend's node: an IPIP packet for a local pod. Unwraps it, records the flow so the reply
 * is sent as the frontend, and points the destination at the backend. */
static __always_inline enum dsr_unwrap_result dsr_decap_ipip(struct ctx_buff *skb, struct packet *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *outer = data + sizeof(struct ethhdr);

	if (pkt->family != WEIR_FAMILY_IPV4 || pkt->proto != IPPROTO_IPIP)
		return DSR_NOT_OURS;
	if ((void *)(outer + 1) > data_end || outer->ihl != 5)
		return DSR_NOT_OURS;
	/* Naming a union member in an initializer leaves the union's other bytes undefined. */
	struct weir_backend backend = {.port = outer->id, .family = WEIR_FAMILY_IPV4};

	backend.addr.v4 = outer->daddr;

	return dsr_unwrap(skb, pkt, sizeof(struct iphdr), &backend);
}

/* IPv6: the outer header has no id field, so the backend port travels in the low 16 bits of the
 * outer flow label (20 bits; the top 4 are 0). Chosen over a destination-options extension header:
 * no extra bytes (40 of overhead, as for any IPv6-in-IPv6 tunnel, instead of 48), the outer header
 * stays one fixed-size header that the backend's node reads without walking extension headers, and
 * networks that drop packets with extension headers (RFC 7872) let it through. RFC 6437 forbids
 * forwarding nodes to change the label. The cost: a fabric that hashes on the flow label for ECMP
 * sees one label per backend (the outer header has no ports either, as for IPv4's outer header).
 * Payload length covers the inner packet; traffic class 0 and hop limit 64, as for IPv4. */
#define DSR_FLOW_LABEL_MASK 0x000fffffu

/* The backend port an IPv6-in-IPv6 header of weir's carries in its flow label; 0 when the label
 * holds none (another tunnel's). */
static __always_inline __u32 dsr_flow_label_port(const struct ipv6hdr *outer)
{
	__u32 label = bpf_ntohl(*(__be32 *)outer) & DSR_FLOW_LABEL_MASK;

	return label > 0xffff ? 0 : label;
}

/* Whether the packet `pkt` describes is wrapped as weir's DSR wraps (IPIP, or IPv6-in-IPv6 with a
 * port in the flow label). Such a packet is unwrapped only when its outer source is a cluster node:
 * anyone else could otherwise have the backend's node deliver any inner packet to a local pod and
 * rewrite the source of the pod's replies to whatever address the inner packet names. */
static __always_inline bool dsr_wrapped(struct ctx_buff *skb, const struct packet *pkt)
{
	if (pkt->family == WEIR_FAMILY_IPV4)
		return pkt->proto == IPPROTO_IPIP;
	if (pkt->proto != IPPROTO_IPV6)
		return false;
	struct ipv6hdr *outer = header_at(skb, sizeof(struct ethhdr), sizeof(struct ipv6hdr));

	return outer && dsr_flow_label_port(outer) != 0;
}

/* A function of its own (a BPF-to-BPF call, taken by IPv6 DSR traffic only): inlined at both of
 * dsr_dispatch's call sites, clang 14 keeps &skb->data / &skb->data_end in spilled registers across
 * the program, which the verifier rejects (a modified ctx pointer). */

static __noinline int dsr_encap_ip6ip6(struct ctx_buff *skb, struct packet *pkt,
				       const union weir_addr *outer_src, const struct weir_backend *backend)
{
	__u16 inner_len = ctx_len(skb) - sizeof(struct ethhdr);

	if (ctx_adjust_room(skb, sizeof(struct ipv6hdr), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV6))
		return -1;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *outer = data + sizeof(struct ethhdr);

	if ((void *)(outer + 1) > data_end)
		return -1;
	/* Version 6, traffic class 0, flow label = the backend port. */
	*(__be32 *)outer = bpf_htonl(6u << 28 | bpf_ntohs(backend->port));
	outer->payload_len = bpf_htons(inner_len);
	outer->nexthdr = IPPROTO_IPV6;
	outer->hop_limit = IP6IP6_OUTER_HOP_LIMIT;
	__builtin_memcpy(outer->saddr.in6_u.u6_addr32, outer_src->v6, 16);
	__builtin_memcpy(outer->daddr.in6_u.u6_addr32, backend->addr.v6, 16);

	pkt->saddr = *outer_src;
	pkt->daddr = backend->addr;
	pkt->proto = IPPROTO_IPV6;
	pkt->sport = pkt->dport = 0;
	pkt->l4_csum_off = 0;
	return 0;
}

/* On the backend's node: an IPv6-in-IPv6 packet of weir's (flow label = a backend port) for a
 * local pod; the same contract as dsr_decap_ipip. */
static __always_inline enum dsr_unwrap_result dsr_decap_ip6ip6(struct ctx_buff *skb, struct packet *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *outer = data + sizeof(struct ethhdr);

	if (pkt->family != WEIR_FAMILY_IPV6 || pkt->proto != IPPROTO_IPV6)
		return DSR_NOT_OURS;
	if ((void *)(outer + 1) > data_end)
		return DSR_NOT_OURS;
	__u32 label = dsr_flow_label_port(outer);

	if (!label)
		return DSR_NOT_OURS; /* not one of weir's: some other tunnel, left to the stack */
	struct weir_backend backend = {.port = bpf_htons((__u16)label), .family = WEIR_FAMILY_IPV6};

	__builtin_memcpy(backend.addr.v6, outer->daddr.in6_u.u6_addr32, 16);
	return dsr_unwrap(skb, pkt, sizeof(struct ipv6hdr), &backend);
}

#endif
