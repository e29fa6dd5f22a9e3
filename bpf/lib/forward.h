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

/* `sender`: the policy state of the pod that sent the packet when it is a subject of policy, else
 * NULL (also for everything from outside the node). Its egress gate judges the flow as the pod
 * sees it: its own source (before any SNAT), and the backend as the destination of a Service flow;
 * a reply of a translated flow is judged as the pod sent it, before its source goes back to the
 * frontend. */
static __always_inline int translate_and_forward(struct __sk_buff *skb, struct packet *pkt, bool from_inside,
						 const struct policy_endpoint *sender)
{
	struct policy_scratch *scratch = sender ? policy_scratch() : NULL;

	if (sender && !scratch)
		return TC_ACT_SHOT;
	if (scratch)
		scratch->sent = *pkt;
	enum translation result = translate_service(skb, pkt, from_inside);

	if (scratch && result != TRANSLATION_NO_BACKEND && result != TRANSLATION_ERROR) {
		bool to_backend = result == TRANSLATION_DONE;

		if (to_backend) {
			scratch->frontend = scratch->sent.daddr;
			scratch->frontend_port = scratch->sent.dport;
			scratch->sent.daddr = pkt->daddr;
			scratch->sent.dport = pkt->dport;
		}
		if (!policy_gate(skb, scratch, &scratch->sent, sender, WEIR_POLICY_EGRESS))
			return TC_ACT_SHOT;
		if (to_backend)
			policy_grant_frontend(scratch);
	}
	switch (result) {
	case TRANSLATION_NO_BACKEND:
		return reject_flow(skb, pkt);
	case TRANSLATION_ERROR:
		count(WEIR_METRIC_TRANSLATION_ERROR, skb);
		return TC_ACT_SHOT;
	case TRANSLATION_DONE:
	case TRANSLATION_REPLY:
		return deliver(skb, pkt, true);
	case TRANSLATION_DSR:
		/* Wrapped (or optioned) for the backend's node: never a local pod. */
		return fib_redirect(skb, pkt);
	case TRANSLATION_UNTOUCHED:
		return deliver(skb, pkt, false);
	default:
		break;
	}
	/* No Service flow and none that conntrack knows. */
	struct weir_endpoint_value *ep = lookup_endpoint(pkt);

	if (from_inside && !ep) {
		int verdict = masquerade_new_flow(skb, pkt);

		if (verdict != MASQUERADE_NOT_APPLICABLE)
			return verdict;
	}
	if (!from_inside && ep && (ep->flags & WEIR_ENDPOINT_LOCAL_POD))
		remember_inbound(pkt);
	return deliver_to(skb, pkt, ep, false);
}

#endif
