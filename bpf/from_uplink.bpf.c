// SPDX-License-Identifier: GPL-2.0
/* Attached at tc ingress of the node's uplink device(s): traffic from other nodes and from outside.
 * NodePorts, LoadBalancer IPs and externalIPs are translated here; replies of flows translated on
 * this node are translated back; packets for local pods are redirected straight into them. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/delivery.h"
#include "bpf/lib/forward.h"
#include "bpf/lib/dsr.h"
#include "bpf/lib/fib.h"
#include "bpf/lib/maps.h"
#include "bpf/lib/masquerade.h"
#include "bpf/lib/packet.h"
#include "bpf/lib/reject.h"
#include "bpf/lib/service_nat.h"
#include "bpf/lib/xdp_handoff.h"

char LICENSE[] SEC("license") = "GPL";

/* The result of translate_service when the uplink's XDP program already ran it on this packet. */
static __always_inline bool translated_by_xdp(struct __sk_buff *skb, enum translation *result)
{
	struct xdp_handoff *handoff;
	void *data;

	/* Loaded in asm, as in header_at (bpf/lib/nat.h): plain reads here let clang keep &skb->data in
	 * a register for the rest of the program, which the verifier refuses. */
	asm volatile("%0 = *(u32 *)(%1 + %2)"
		     : "=r"(handoff)
		     : "r"(skb), "i"(offsetof(struct __sk_buff, data_meta)));
	asm volatile("%0 = *(u32 *)(%1 + %2)" : "=r"(data) : "r"(skb), "i"(offsetof(struct __sk_buff, data)));
	if ((void *)(handoff + 1) > data || handoff->magic != XDP_HANDOFF_MAGIC)
		return false;
	*result = handoff->translation;
	return true;
}

/* A packet conntrack does not know. To a pod of this node no Service is looked up (no frontend
 * is a pod's address; its entry, found here, is left in `local_pod` for the delivery), and a later
 * packet of a plain flow the pod's policy let in goes straight in. */
static __always_inline enum translation translate_untracked(struct __sk_buff *skb, struct packet *pkt,
							    struct weir_endpoint_value **local_pod)
{
	struct weir_endpoint_value *ep = lookup_endpoint(pkt);

	if (!ep || !(ep->flags & WEIR_ENDPOINT_LOCAL_POD))
		return translate_new_flow(skb, pkt, false);
	*local_pod = ep;
	if (policy_subject(ep) && policy_receiver_plain_flow(pkt, ep))
		return TRANSLATION_PLAIN;
	return not_a_service_flow(pkt);
}

SEC("tc")
int from_uplink(struct __sk_buff *skb)
{
	struct packet pkt = {};
	struct weir_endpoint_value *local_pod = NULL;
	enum translation result;

	if (parse_packet(skb, &pkt) != PARSE_OK)
		return TC_ACT_OK;
	/* One call of forward_translated in the program: a second inlined copy makes clang keep
	 * &skb->data in a register, which the verifier refuses. */
	if (!translated_by_xdp(skb, &result)) {
		if (dsr_wrapped(skb, &pkt) && classify_peer(pkt.family, &pkt.saddr) != PEER_NODE) {
			count(WEIR_METRIC_DSR_REFUSED, skb);
			emit_drop(skb, &pkt, WEIR_METRIC_DSR_REFUSED, 0);
			return TC_ACT_SHOT;
		}
		enum dsr_unwrap_result unwrapped = dsr_decap_ipip(skb, &pkt);

		if (unwrapped == DSR_NOT_OURS)
			unwrapped = dsr_decap_ip6ip6(skb, &pkt);
		if (unwrapped == DSR_NOT_OURS)
			unwrapped = dsr_take_ip_option(skb, &pkt);

		switch (unwrapped) {
		case DSR_ERROR:
			count(WEIR_METRIC_TRANSLATION_ERROR, skb);
			return TC_ACT_SHOT;
		case DSR_UNWRAPPED:
			return deliver(skb, &pkt, false);
		case DSR_NOT_OURS:
			break;
		}
		result = translate_tracked(skb, &pkt);
		if (result == TRANSLATION_NONE)
			result = translate_untracked(skb, &pkt, &local_pod);
	}
	return forward_translated(skb, &pkt, false, result, local_pod);
}
