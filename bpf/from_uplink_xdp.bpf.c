// SPDX-License-Identifier: GPL-2.0
/* Attached at XDP on each uplink when the agent's nodePortAcceleration setting asks for it (native
 * where the driver has XDP, generic otherwise), in front of from_uplink at tc ingress. It runs the
 * same translation as from_uplink (translate_service, shared through bpf/lib/ctx.h) on TCP and UDP
 * from the wire, and finishes here what leaves the node again: a NodePort, LoadBalancer or
 * externalIP flow to a backend on another node (SNAT, or DSR's wrapping), and the backends' replies
 * to the clients of SNAT flows. What ends in a local pod or the node's stack goes on to from_uplink
 * with the translation's result in the XDP metadata (bpf/lib/xdp_handoff.h), which delivers it
 * without translating again; what XDP does not touch (DSR unwrapping and its check of the sender,
 * SCTP, packets without ports, anything not IP) goes on unmarked, as if there were no XDP. */
#define WEIR_XDP

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi/metrics.h"
#include "bpf/lib/ctx.h"
#include "bpf/lib/fib.h"
#include "bpf/lib/maps.h"
#include "bpf/lib/packet.h"
#include "bpf/lib/service_nat.h"
#include "bpf/lib/xdp_handoff.h"

char LICENSE[] SEC("license") = "GPL";

/* Whether the (translated) destination is a pod of this node: from_uplink enters it (ingress
 * policy, TTL, bpf_redirect_peer), which XDP cannot. */
static __always_inline bool for_local_pod(const struct packet *pkt)
{
	struct weir_endpoint_key key = {.family = pkt->family, .addr = pkt->daddr};
	struct weir_endpoint_value *ep = bpf_map_lookup_elem(&weir_endpoints, &key);

	return ep && (ep->flags & WEIR_ENDPOINT_LOCAL_POD);
}

#define SEND_ON_IN_TC (-1)

/* Out of the node by the FIB, as fib_redirect does in tc: back out of the uplink (XDP_TX) or out
 * of another device; a routed hop unless `wrapped` for DSR (fib_send_wrapped). SEND_ON_IN_TC when
 * the route needs what only the stack or tc has (no neighbour entry yet, a local destination, no
 * route, no TTL left). */
static __always_inline int send_on(struct xdp_md *ctx, const struct packet *pkt, bool wrapped)
{
	struct bpf_fib_lookup route = {};
	long rc = fib_lookup_for(ctx, pkt, &route);

	if (rc != BPF_FIB_LKUP_RET_SUCCESS || (!wrapped && !routed_hop(ctx, pkt->family)))
		return SEND_ON_IN_TC;
	struct ethhdr *eth = (void *)(long)ctx->data;

	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, route.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, route.smac, ETH_ALEN);
	count(WEIR_METRIC_XDP_SENT, ctx);
	if (route.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(route.ifindex, 0);
}

/* On to from_uplink with the translation's result. A packet translated here must not reach tc
 * unmarked (it would be taken for a new flow to its new destination): without room for the
 * metadata it is dropped and counted. */
static __always_inline int hand_on(struct xdp_md *ctx, enum translation result)
{
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct xdp_handoff)))
		goto no_room;
	struct xdp_handoff *handoff = (void *)(long)ctx->data_meta;

	if ((void *)(handoff + 1) > (void *)(long)ctx->data)
		goto no_room;
	handoff->magic = XDP_HANDOFF_MAGIC;
	handoff->translation = result;
	return XDP_PASS;
no_room:
	if (result == TRANSLATION_NONE)
		return XDP_PASS;
	count(WEIR_METRIC_TRANSLATION_ERROR, ctx);
	return XDP_DROP;
}

static __always_inline int accelerate(struct xdp_md *ctx)
{
	struct packet pkt = {};

	if (parse_packet(ctx, &pkt) != PARSE_OK || !pkt.has_ports || pkt.proto == IPPROTO_SCTP)
		return XDP_PASS;
	/* IPv4 options: maybe DSR's, which from_uplink takes off before anything else. */
	if (pkt.family == WEIR_FAMILY_IPV4 && pkt.l4_off != IPV4_PLAIN_L4_OFF)
		return XDP_PASS;
	enum translation result = translate_service(ctx, &pkt, false);

	switch (result) {
	case TRANSLATION_ERROR:
		count(WEIR_METRIC_TRANSLATION_ERROR, ctx);
		return XDP_DROP;
	case TRANSLATION_DSR:
	case TRANSLATION_DONE:
	case TRANSLATION_REPLY:
		if (result == TRANSLATION_DSR || !for_local_pod(&pkt)) {
			int verdict = send_on(ctx, &pkt, result == TRANSLATION_DSR);

			if (verdict != SEND_ON_IN_TC)
				return verdict;
		}
		break;
	default:
		break;
	}
	return hand_on(ctx, result);
}

/* Native mode (the driver's hook). xdp.frags: packets larger than a page come in several buffers
 * (an uplink's MTU above about 3.5 KB needs it on veth and most drivers); every header this program
 * reads or writes is in the first. */
SEC("xdp.frags")
int from_uplink_xdp(struct xdp_md *ctx)
{
	return accelerate(ctx);
}

/* Generic mode (the hook every device has, on the skb): the same program without frags. For a
 * program that takes frags, generic XDP copies a packet it cannot run in place (cloned, nonlinear,
 * or with less than 256 bytes of headroom: nearly every packet) into a new skb (skb_pp_cow_data)
 * that keeps no mac_len (Linux 6.18), and tc, which puts the MAC header back by mac_len, then sees
 * the packet from its IP header and the metadata 14 bytes off: from_uplink cannot parse it and hands
 * it to the stack, untranslated or, translated here, dropped as from a local source. For a program
 * without frags the kernel linearizes the same skb instead, which keeps mac_len; the skb then holds
 * the whole packet in one buffer, whatever its size. */
SEC("xdp")
int from_uplink_xdp_generic(struct xdp_md *ctx)
{
	return accelerate(ctx);
}
