/* Direct server return with IPIP: the node a client reached forwards the packet unchanged inside an
 * IPv4-in-IPv4 header addressed to the backend; the backend's node unwraps it, translates the
 * destination to the backend and remembers the frontend, so that the backend's reply leaves that
 * node straight to the client with the frontend as its source. The outer header's IP id carries the
 * backend port (the outer destination is the backend address), so no extra option is needed. */
#ifndef WEIR_BPF_DSR_H
#define WEIR_BPF_DSR_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/conntrack.h"
#include "bpf/lib/nat.h"
#include "bpf/lib/nd.h"
#include "bpf/lib/packet.h"

#define IPIP_OUTER_TTL 64

/* Wraps the IPv4 packet for `backend`; afterwards `pkt` describes the outer packet. */
static __always_inline int dsr_encap_ipip(struct __sk_buff *skb, struct packet *pkt, __be32 outer_src,
					  const struct weir_backend *backend)
{
	__u16 inner_len = skb->len - sizeof(struct ethhdr);

	if (bpf_skb_adjust_room(skb, sizeof(struct iphdr), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4))
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
	outer->check = csum_fold((__u32)sum);

	pkt->saddr.v4 = outer_src;
	pkt->daddr.v4 = backend->addr.v4;
	pkt->proto = IPPROTO_IPIP;
	pkt->sport = pkt->dport = 0;
	return 0;
}

/* On the backend's node: an IPIP packet for a local pod. Unwraps it, records the flow so the reply
 * is sent as the frontend, and points the destination at the backend. Returns 0 when `pkt` now
 * describes the translated inner packet, 1 when this is not a DSR packet, -1 on error. */
static __always_inline int dsr_decap_ipip(struct __sk_buff *skb, struct packet *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *outer = data + sizeof(struct ethhdr);

	if (pkt->family != WEIR_FAMILY_IPV4 || pkt->proto != IPPROTO_IPIP)
		return 1;
	if ((void *)(outer + 1) > data_end || outer->ihl != 5)
		return 1;
	/* Naming a union member in an initializer leaves the union's other bytes undefined. */
	struct weir_backend backend = {.port = outer->id, .family = WEIR_FAMILY_IPV4};

	backend.addr.v4 = outer->daddr;

	if (bpf_skb_adjust_room(skb, -(int)sizeof(struct iphdr), BPF_ADJ_ROOM_MAC, 0))
		return -1;
	struct packet inner = {};

	if (parse_packet(skb, &inner) != 0 || !inner.has_ports)
		return -1;
	backend.proto = inner.proto;
	if (ct_create(&inner, &backend, 0, 0, NULL, 0, WEIR_CT_DSR))
		return -1;
	if (dnat(skb, &inner, &backend.addr, backend.port))
		return -1;
	*pkt = inner;
	return 0;
}

#endif
