/* The common tail of the tc programs: translate a parsed packet for Services, then reject it,
 * judge it by its sender's egress policy, deliver it into a local pod, masquerade it, or send it
 * on. */
#ifndef WEIR_BPF_FORWARD_H
#define WEIR_BPF_FORWARD_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <stdbool.h>

#include "bpf/lib/delivery.h"
#include "bpf/lib/fib.h"
#include "bpf/lib/maps.h"
#include "bpf/lib/masquerade.h"
#include "bpf/lib/packet.h"
#include "bpf/lib/policy.h"
#include "bpf/lib/reject.h"
#include "bpf/lib/service_nat.h"

/* `result` is what translate_service did to the packet `pkt` describes (here, or in the uplink's
 * XDP program: bpf/lib/xdp_handoff.h). `from_inside`: sent by a pod of this node, whose egress gate
 * (bpf/lib/policy.h; prepared by policy_remember_sender before translation) judges the flow after
 * translation. `local_pod`: the destination's endpoint entry when the caller has already found it
 * to be a local pod (NULL: looked up here). */
static __always_inline int forward_translated(struct __sk_buff *skb, struct packet *pkt, bool from_inside,
					      enum translation result, struct weir_endpoint_value *local_pod)
{
	if (from_inside && result != TRANSLATION_NO_BACKEND && result != TRANSLATION_ERROR &&
	    result != TRANSLATION_HELD && result != TRANSLATION_PLAIN &&
	    !policy_egress_allowed(skb, pkt, result == TRANSLATION_DONE, result == TRANSLATION_NONE))
		return TC_ACT_SHOT;
	switch (result) {
	case TRANSLATION_NO_BACKEND:
		return reject_flow(skb, pkt);
	case TRANSLATION_ERROR:
		count(WEIR_METRIC_TRANSLATION_ERROR, skb);
		return TC_ACT_SHOT;
	case TRANSLATION_HELD:
		count(WEIR_METRIC_HELD_AT_UPGRADE, skb);
		return TC_ACT_SHOT;
	case TRANSLATION_DONE:
	case TRANSLATION_REPLY:
		return deliver(skb, pkt, true);
	case TRANSLATION_DSR:
		/* Wrapped (or optioned) for the backend's node: never a local pod. */
		return fib_send_wrapped(skb, pkt);
	case TRANSLATION_UNTOUCHED:
		return deliver(skb, pkt, false);
	case TRANSLATION_PLAIN: {
		/* From the uplink: into the receiver policy_receiver_plain_flow found, whose gate let the
		 * flow in. From a pod: on as an untracked packet, its egress gate passed. */
		const struct weir_endpoint_value *receiver = from_inside ? NULL : policy_plain_receiver();

		if (receiver)
			return enter_pod(skb, pkt, receiver);
		break;
	}
	default:
		break;
	}
	/* No Service flow and none that conntrack knows. */
	struct weir_endpoint_value *ep = local_pod ? local_pod : lookup_endpoint(pkt);

	/* A plain flow's first packet was not masqueraded (its peer is a pod), nor are its later ones. */
	if (from_inside && !ep && result != TRANSLATION_PLAIN) {
		int verdict = masquerade_new_flow(skb, pkt);

		if (verdict != MASQUERADE_NOT_APPLICABLE)
			return verdict;
	}
	/* A peer that is no pod (a node, its host-network pods, the outside) reaches the pod through the
	 * node's stack, the way the pod's own packets to it leave (deliver_to): netfilter then sees such
	 * flows whole, which portmap's hostPort DNAT, the node's conntrack settings and host firewalls
	 * rely on. Pod-to-pod traffic keeps the direct path. */
	if (!from_inside && ep && (ep->flags & WEIR_ENDPOINT_LOCAL_POD)) {
		enum peer_class source = classify_peer(pkt->family, &pkt->saddr);

		if (source != PEER_POD) {
			/* The stack delivers it, so the pod's ingress gate is taken here. */
			if (policy_subject(ep) && !policy_ingress_allowed(skb, pkt, ep, false))
				return TC_ACT_SHOT;
			remember_inbound(pkt, source);
			count(WEIR_METRIC_TO_STACK, skb);
			return TC_ACT_OK;
		}
	}
	return deliver_to(skb, pkt, ep, DELIVERY_UNTRACKED);
}

#endif
