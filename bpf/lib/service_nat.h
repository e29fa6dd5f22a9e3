/* Per-packet service translation for flows that socket-level load balancing did not translate:
 * pods with socket LB limited to the host, and traffic from outside to NodePorts, LoadBalancer IPs
 * and externalIPs. Conntrack keeps every later packet of a flow on its backend and translates the
 * replies back. */
#ifndef WEIR_BPF_SERVICE_NAT_H
#define WEIR_BPF_SERVICE_NAT_H

#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi/metrics.h"
#include "bpf/lib/conntrack.h"
#include "bpf/lib/dsr.h"
#include "bpf/lib/events.h"
#include "bpf/lib/lb.h"
#include "bpf/lib/maps.h"
#include "bpf/lib/nat.h"
#include "bpf/lib/packet.h"

/* This node's addresses, the source of SNATed NodePort traffic to other nodes' backends and of
 * masqueraded traffic from pods. */
const volatile __be32 node_ipv4 = 0;
const volatile __be32 node_ipv6[4] = {};
/* DSR dispatch: false wraps in IPIP, true carries the frontend in an IPv4 option. IPv6 is always
 * wrapped (IPv6-in-IPv6): the option variant exists for IPv4 only. */
const volatile bool dsr_ip_option = false;

static __always_inline int dsr_dispatch(struct ctx_buff *skb, struct packet *pkt, const union weir_addr *node,
					const struct weir_backend *backend)
{
	if (pkt->family == WEIR_FAMILY_IPV6)
		return dsr_encap_ip6ip6(skb, pkt, node, backend);
	return dsr_ip_option ? dsr_add_ip_option(skb, pkt, backend)
			     : dsr_encap_ipip(skb, pkt, node->v4, backend);
}

enum translation {
	TRANSLATION_NONE, /* not a Service flow */
	TRANSLATION_DONE, /* pkt now holds the translated addresses */
	TRANSLATION_NO_BACKEND, /* a Service without a usable endpoint: reject */
	TRANSLATION_DSR, /* wrapped for the backend's node, which answers the client itself */
	TRANSLATION_ERROR,
	TRANSLATION_UNTOUCHED, /* a pod answering an outside client's flow: on as it is, never masqueraded */
	TRANSLATION_REPLY, /* a reply of a translated flow: pkt now holds the addresses translated back */
	TRANSLATION_HELD, /* dropped while an upgrade moves conntrack: the sender retransmits */
	/* A later packet of a flow between pods that its policy conntrack entry knows as plain
	 * (bpf/lib/policy.h, policy_plain_flow): nothing looked up, nothing to translate, gates passed. */
	TRANSLATION_PLAIN,
};

/* A FIN or RST of a tracked TCP flow: its entries are collected after a short lifetime. */
static __always_inline void ct_note_closing(const struct packet *pkt, struct weir_ct_value *entry)
{
	if (pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)))
		entry->flags |= WEIR_CT_CLOSING;
}

/* A reply of a translated flow, by its reply entry `ct`: the source back to the frontend (not for a
 * masqueraded flow, whose far side is its own), and after SNAT the destination back to the client. */
static __always_inline enum translation translate_reply(struct ctx_buff *skb, struct packet *pkt,
							const struct weir_ct_value *ct)
{
	if (!(ct->flags & WEIR_CT_MASQ) && snat(skb, pkt, &ct->nat_addr, ct->nat_port))
		return TRANSLATION_ERROR;
	if ((ct->flags & WEIR_CT_SNAT) && dnat(skb, pkt, &ct->snat_addr, ct->snat_port))
		return TRANSLATION_ERROR;
	count(WEIR_METRIC_REPLY_TRANSLATED, skb);
	return TRANSLATION_REPLY;
}

/* Set by an agent that migrates the pinned maps (lib/datapath.cc, PinAndSwitch) from just before
 * it switches the links to these programs until it has copied the entries the old programs made
 * meanwhile (CLOCK_MONOTONIC; 0: no migration). A flow the old programs opened an instant before is
 * unknown to these programs until then. Its next segment to the frontend, balanced anew, could meet
 * another backend, which answers with a reset; its backend's reply, untranslated, meets a stack
 * (the client pod's, or the node's for a NodePort's SNAT port) that resets the backend's side. So
 * such segments to a frontend, and resets of flows conntrack does not know, are dropped while the
 * hold lasts: the senders retransmit once the copy has brought the flow's entries over. */
volatile __u64 upgrade_hold_until_ns = 0;

static __always_inline bool held_at_upgrade(const struct packet *pkt, bool to_frontend)
{
	if (pkt->proto != IPPROTO_TCP)
		return false;
	if (to_frontend ? (pkt->tcp_flags & TCP_FLAG_SYN) : !(pkt->tcp_flags & TCP_FLAG_RST))
		return false;
	__u64 until = upgrade_hold_until_ns;

	return until && bpf_ktime_get_ns() < until;
}

/* A packet of a flow conntrack knows: the next packet of a translated flow, or a reply. */
static __always_inline enum translation translate_tracked(struct ctx_buff *skb, struct packet *pkt)
{
	struct weir_ct_value *entry = ct_lookup(pkt);

	if (!entry)
		return TRANSLATION_NONE;
	ct_note_closing(pkt, entry);
	struct weir_ct_value ct = *entry;

	if (ct.flags & WEIR_CT_INBOUND)
		return TRANSLATION_UNTOUCHED;
	/* A masqueraded flow's destination is its own: only the pod's side is rewritten. */
	bool masqueraded = ct.flags & WEIR_CT_MASQ;

	if (ct.kind == WEIR_CT_REPLY)
		return translate_reply(skb, pkt, &ct);
	if (ct.flags & WEIR_CT_DSR) {
		struct weir_backend backend = {.addr = ct.nat_addr, .port = ct.nat_port};

		return dsr_dispatch(skb, pkt, &ct.snat_addr, &backend) ? TRANSLATION_ERROR : TRANSLATION_DSR;
	}
	if (!masqueraded && dnat(skb, pkt, &ct.nat_addr, ct.nat_port))
		return TRANSLATION_ERROR;
	if ((ct.flags & WEIR_CT_SNAT) && snat(skb, pkt, &ct.snat_addr, ct.snat_port))
		return TRANSLATION_ERROR;
	return TRANSLATION_DONE;
}

/* Leaving through an uplink: a reply of this node's own stack to a flow translated to one of its
 * addresses, whose only conntrack entry that matches is the plain reply entry (a local hostNetwork
 * backend: no SNAT; or a DSR backend's). Everything else (pods' traffic, already translated as it
 * left the pod; the node's own flows) matches no reply entry and leaves as it is. */
static __always_inline enum translation translate_host_reply(struct ctx_buff *skb, struct packet *pkt)
{
	if (!pkt->has_ports)
		return TRANSLATION_NONE;
	struct weir_ct_value *entry = ct_lookup(pkt);

	if (!entry)
		return held_at_upgrade(pkt, false) ? TRANSLATION_HELD : TRANSLATION_NONE;
	if (entry->kind != WEIR_CT_REPLY || (entry->flags & (WEIR_CT_SNAT | WEIR_CT_MASQ)))
		return TRANSLATION_NONE;
	ct_note_closing(pkt, entry);
	struct weir_ct_value ct = *entry;

	return translate_reply(skb, pkt, &ct);
}

static __always_inline bool node_address(__u8 family, union weir_addr *out)
{
	if (family == WEIR_FAMILY_IPV4) {
		out->v4 = node_ipv4;
		return node_ipv4 != 0;
	}
	out->v6[0] = node_ipv6[0];
	out->v6[1] = node_ipv6[1];
	out->v6[2] = node_ipv6[2];
	out->v6[3] = node_ipv6[3];
	return (out->v6[0] | out->v6[1] | out->v6[2] | out->v6[3]) != 0;
}

/* A new TCP connection that is no Service flow may reuse the 4-tuple of an earlier translated one
 * whose reply entry is still there (TCP entries live long): without this, its SYN-ACK would be
 * "translated back" to the old frontend. The newest connection wins, as in netfilter. */
static __always_inline void forget_stale_reply(const struct packet *pkt)
{
	if (pkt->proto != IPPROTO_TCP || (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) != TCP_FLAG_SYN)
		return;
	struct weir_ct_key reply = {.saddr = pkt->daddr,
				    .daddr = pkt->saddr,
				    .sport = pkt->dport,
				    .dport = pkt->sport,
				    .proto = pkt->proto,
				    .family = pkt->family};

	bpf_map_delete_elem(&weir_ct, &reply);
}

#define SNAT_PORT_MIN 32768
#define SNAT_PORT_RANGE 28232 /* 32768..60999, the kernel's default ephemeral range */
#define SNAT_PORT_TRIES 16

/* A source port for SNAT to `source` such that the reply (backend -> source:port) is not already
 * someone else's: the client's own port when free, else a hashed one. 0: none found. NodePort SNAT
 * and egress masquerade share the range (one node address, one set of reply tuples). */
static __always_inline __be16 free_snat_port(const struct packet *pkt, const struct weir_backend *backend,
					     const union weir_addr *source)
{
	struct weir_ct_key reply = {.saddr = backend->addr,
				    .daddr = *source,
				    .sport = backend->port,
				    .proto = pkt->proto,
				    .family = pkt->family};
	__u32 hash = flow_hash(pkt);

	for (int i = 0; i < SNAT_PORT_TRIES; i++) {
		__be16 port =
			i == 0 ? pkt->sport : bpf_htons(SNAT_PORT_MIN + (hash + i * 7919) % SNAT_PORT_RANGE);

		reply.dport = port;
		struct weir_ct_value *taken = bpf_map_lookup_elem(&weir_ct, &reply);

		/* Free, or the stale entry of this very client flow (a retransmitted first packet). */
		if (!taken || (addr_equal(&taken->snat_addr, &pkt->saddr) && taken->snat_port == pkt->sport))
			return port;
	}
	return 0;
}

/* A packet of a flow that conntrack does not know and that is no Service's. */
static __always_inline enum translation not_a_service_flow(const struct packet *pkt)
{
	if (held_at_upgrade(pkt, false))
		return TRANSLATION_HELD;
	forget_stale_reply(pkt);
	return TRANSLATION_NONE;
}

/* The first packet of a flow to a Service frontend. `from_inside`: sent by a pod of this node.
 * Traffic from outside to a backend on another node is SNATed to this node's address so that the
 * reply comes back here to be translated. */
static __always_inline enum translation translate_new_flow(struct ctx_buff *skb, struct packet *pkt,
							   bool from_inside)
{
	if (!pkt->has_ports)
		return TRANSLATION_NONE;
	struct weir_service_key key = {
		.addr = pkt->daddr, .port = pkt->dport, .proto = pkt->proto, .family = pkt->family};
	struct weir_service_value *svc = lookup_service(&key, from_inside);

	if (!svc)
		return not_a_service_flow(pkt);
	if (held_at_upgrade(pkt, true))
		return TRANSLATION_HELD;
	struct weir_affinity_key affinity = {.client = pkt->saddr, .family = pkt->family};
	struct weir_backend backend = {};
	/* A pod's flow needs no backend flags: only which node a backend runs on matters, for traffic
	 * from outside. */
	__u32 backend_id = pick_backend_into(svc, &affinity, flow_hash(pkt), NULL, !from_inside, &backend);

	if (!backend_id || backend.family != pkt->family) {
		count(WEIR_METRIC_NO_BACKEND, skb);
		emit_drop(skb, pkt, WEIR_METRIC_NO_BACKEND, svc->service_id);
		return TRANSLATION_NO_BACKEND;
	}
	__u32 service_id = svc->service_id;
	union weir_addr source = {};
	bool remote_from_outside = !from_inside && !(backend.flags & WEIR_BACKEND_LOCAL);

	if (remote_from_outside && (svc->flags & WEIR_SVC_DSR) && node_address(pkt->family, &source)) {
		/* Only the forward entry: the reply never comes back through this node. */
		struct weir_ct_key key = {};
		struct weir_ct_value forward = {.nat_addr = backend.addr,
						.snat_addr = source,
						.nat_port = backend.port,
						.kind = WEIR_CT_FORWARD,
						.flags = WEIR_CT_DSR,
						.backend_id = backend_id,
						.service_id = service_id,
						.last_seen_ns = ct_now()};

		ct_key_of(pkt, &key);
		emit_translation(skb, pkt, &backend, service_id, backend_id);
		if (bpf_map_update_elem(&weir_ct, &key, &forward, BPF_ANY) ||
		    dsr_dispatch(skb, pkt, &source, &backend))
			return TRANSLATION_ERROR;
		count(WEIR_METRIC_SERVICE_TRANSLATED, skb);
		return TRANSLATION_DSR;
	}
	/* Hairpin: a pod that is its own backend would get a packet from itself to itself, which its
	 * stack drops; the frontend stands in as the source, as kube-proxy's masquerade does. */
	bool hairpin = from_inside && addr_equal(&backend.addr, &pkt->saddr);
	bool needs_snat = hairpin || (remote_from_outside && node_address(pkt->family, &source));
	__be16 source_port = pkt->sport;

	if (hairpin)
		source = pkt->daddr;
	if (needs_snat && !hairpin) {
		source_port = free_snat_port(pkt, &backend, &source);
		if (!source_port)
			return TRANSLATION_ERROR;
	}
	emit_translation(skb, pkt, &backend, service_id, backend_id);
	if (ct_create(pkt, &backend, backend_id, service_id, needs_snat ? &source : NULL, source_port,
		      needs_snat ? WEIR_CT_SNAT : 0))
		return TRANSLATION_ERROR;
	if (dnat(skb, pkt, &backend.addr, backend.port))
		return TRANSLATION_ERROR;
	if (needs_snat && snat(skb, pkt, &source, source_port))
		return TRANSLATION_ERROR;
	count(WEIR_METRIC_SERVICE_TRANSLATED, skb);
	return TRANSLATION_DONE;
}

static __always_inline enum translation translate_service(struct ctx_buff *skb, struct packet *pkt,
							  bool from_inside)
{
	enum translation result = translate_tracked(skb, pkt);

	if (result != TRANSLATION_NONE)
		return result;
	return translate_new_flow(skb, pkt, from_inside);
}

#endif
