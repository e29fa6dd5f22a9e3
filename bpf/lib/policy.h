/* NetworkPolicy gates: an endpoint's egress (its packets as they leave it, after Service
 * translation, before any SNAT) and its ingress (packets about to be redirected into it). Only
 * endpoints whose entry carries WEIR_ENDPOINT_POLICY_SUBJECT reach a gate. A flow takes its verdict
 * on its first packet; later packets and replies ride the policy conntrack (bpf/abi/policy.h). */
#ifndef WEIR_BPF_POLICY_H
#define WEIR_BPF_POLICY_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi/conntrack.h"
#include "bpf/abi/endpoint.h"
#include "bpf/abi/events.h"
#include "bpf/abi/policy.h"
#include "bpf/lib/clock.h"
#include "bpf/lib/conntrack.h"
#include "bpf/lib/events.h"
#include "bpf/lib/packet.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, WEIR_POLICY_PEERS_DEFAULT_SIZE);
	__type(key, struct weir_policy_peer_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_POLICY_PEERS_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, WEIR_POLICY_RULES_DEFAULT_SIZE);
	__type(key, struct weir_policy_rule_key);
	__type(value, struct weir_policy_rule_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_POLICY_RULES_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, WEIR_POLICY_CIDRS_DEFAULT_SIZE);
	__type(key, struct weir_policy_cidr_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_POLICY_CIDRS_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WEIR_POLICY_CT_DEFAULT_SIZE);
	__type(key, struct weir_ct_key);
	__type(value, struct weir_policy_ct_value);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_POLICY_CT_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, WEIR_ENDPOINTS_DEFAULT_SIZE);
	__type(key, __u32);
	__type(value, struct weir_policy_counters);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_POLICY_COUNTERS_MAP SEC(".maps");

/* The endpoint a gate judges for, copied from its endpoint entry. */
struct policy_endpoint {
	__u32 policy_id;
	__u16 flags; /* enum weir_endpoint_flags */
};

/* The gates' keys and the egress gate's copy of the packet as the pod sent it. The tc programs'
 * stack is nearly full with translation's state, so they live here, one per CPU (a program runs
 * to its end on one CPU). */
struct policy_scratch {
	struct packet sent;
	union weir_addr frontend; /* a Service flow's destination before translation */
	__be16 frontend_port;
	struct weir_ct_key key;
	struct weir_ct_key reverse;
	struct weir_policy_peer_key peer;
	struct weir_policy_rule_key rule;
	struct weir_policy_cidr_key cidr;
	struct weir_policy_ct_value granted;
	struct weir_policy_counters zero;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct policy_scratch);
} weir_pol_scratch SEC(".maps");

static __always_inline struct policy_scratch *policy_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&weir_pol_scratch, &zero);
}

static __always_inline __u32 peer_identity(struct policy_scratch *s, __u8 family, const union weir_addr *addr)
{
	s->peer.prefixlen = WEIR_POLICY_PEER_FAMILY_BITS + (family == WEIR_FAMILY_IPV4 ? 32 : 128);
	s->peer.family = family;
	s->peer.addr = *addr;
	__u32 *identity = bpf_map_lookup_elem(&weir_pol_peers, &s->peer);

	return identity ? *identity : WEIR_IDENTITY_WORLD;
}

static __always_inline bool rule_exists(struct policy_scratch *s, __u32 peer)
{
	s->rule.peer = peer;
	return bpf_map_lookup_elem(&weir_pol_rules, &s->rule) != NULL;
}

static __always_inline __u32 cidr_class(struct policy_scratch *s, __u32 policy_id, __u8 direction, __u8 family,
					const union weir_addr *addr)
{
	s->cidr.prefixlen = WEIR_POLICY_CIDR_FIXED_BITS + (family == WEIR_FAMILY_IPV4 ? 32 : 128);
	s->cidr.policy_id = policy_id;
	s->cidr.direction = direction;
	s->cidr.family = family;
	s->cidr.addr = *addr;
	__u32 *class = bpf_map_lookup_elem(&weir_pol_cidrs, &s->cidr);

	return class ? *class : 0;
}

/* The rules of an isolated direction: by the peer's identity, by the CIDR class of its address,
 * then the rules for every peer. Protocols without ports (ICMP, ...) look up port 0 under their
 * own protocol number, which only a rule for every protocol covers. */
static __always_inline bool rules_allow(struct policy_scratch *s, const struct policy_endpoint *ep, __u8 direction,
					__u32 identity, const struct packet *flow, const union weir_addr *peer)
{
	s->rule.prefixlen = WEIR_POLICY_RULE_FULL_BITS;
	s->rule.policy_id = ep->policy_id;
	s->rule.direction = direction;
	s->rule.proto = flow->proto;
	s->rule.port = flow->has_ports ? flow->dport : 0;
	if (rule_exists(s, identity))
		return true;
	__u32 class = cidr_class(s, ep->policy_id, direction, flow->family, peer);

	if (class && rule_exists(s, WEIR_POLICY_PEER_CIDR_CLASS | class))
		return true;
	return rule_exists(s, WEIR_POLICY_PEER_ANY);
}

static __always_inline __u8 policy_verdict(struct policy_scratch *s, const struct policy_endpoint *ep,
					   __u8 direction, __u32 identity, const struct packet *flow,
					   const union weir_addr *peer)
{
	bool ingress = direction == WEIR_POLICY_INGRESS;
	bool allowed;

	/* A pod's traffic with its own node always passes. */
	if (identity == WEIR_IDENTITY_HOST)
		return WEIR_POLICY_ALLOWED;
	if (ep->flags & WEIR_ENDPOINT_POLICY_PENDING)
		allowed = false;
	else if (!(ep->flags & (ingress ? WEIR_ENDPOINT_INGRESS_ISOLATED : WEIR_ENDPOINT_EGRESS_ISOLATED)))
		allowed = true;
	else
		allowed = rules_allow(s, ep, direction, identity, flow, peer);
	if (allowed)
		return WEIR_POLICY_ALLOWED;
	return (ep->flags & (ingress ? WEIR_ENDPOINT_INGRESS_AUDIT : WEIR_ENDPOINT_EGRESS_AUDIT)) ? WEIR_POLICY_AUDITED
												   : WEIR_POLICY_DENIED;
}

static __always_inline void policy_count(struct policy_scratch *s, __u32 policy_id, __u8 direction, __u8 verdict)
{
	struct weir_policy_counters *counters = bpf_map_lookup_elem(&weir_pol_counts, &policy_id);

	if (!counters) {
		__builtin_memset(&s->zero, 0, sizeof(s->zero));
		bpf_map_update_elem(&weir_pol_counts, &policy_id, &s->zero, BPF_NOEXIST);
		counters = bpf_map_lookup_elem(&weir_pol_counts, &policy_id);
		if (!counters)
			return;
	}
	if (direction <= WEIR_POLICY_EGRESS && verdict < WEIR_POLICY_VERDICTS)
		counters->packets[direction][verdict]++;
}

/* Written straight into the ring (reserved, not built on the stack). */
static __always_inline void emit_policy_verdict(struct __sk_buff *skb, const struct packet *flow,
						const struct policy_endpoint *ep, __u8 direction, __u32 identity,
						__u8 verdict)
{
	if (!events_ring_has_room())
		return;
	struct weir_event *ev = bpf_ringbuf_reserve(&weir_events, sizeof(*ev), 0);

	if (!ev)
		return;
	__builtin_memset(ev, 0, sizeof(*ev));
	fill_event(ev, skb, flow, WEIR_EVENT_POLICY);
	ev->reason = verdict;
	ev->direction = direction;
	ev->policy_id = ep->policy_id;
	ev->peer_identity = identity;
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
}

/* A live entry for `key`, NULL when absent or idle past its lifetime. */
static __always_inline struct weir_policy_ct_value *policy_ct_find(const struct weir_ct_key *key, __u64 now)
{
	struct weir_policy_ct_value *entry = bpf_map_lookup_elem(&weir_pol_ct, key);

	if (!entry)
		return NULL;
	__u64 lifetime = key->proto == IPPROTO_TCP ? WEIR_POLICY_CT_TCP_LIFETIME_NS : WEIR_POLICY_CT_OTHER_LIFETIME_NS;

	if ((__s64)(now - entry->last_seen_ns) > (__s64)lifetime)
		return NULL;
	if ((__s64)(now - entry->last_seen_ns) >= (__s64)CT_REFRESH_NS)
		entry->last_seen_ns = now;
	return entry;
}

/* Notes that one side's gate let the flow through. `fresh`: the flow starts over (a TCP SYN on
 * its way out), so what earlier flows of the same tuple were granted is forgotten. */
static __always_inline void policy_ct_grant(struct policy_scratch *s, __u32 flag, bool fresh, __u64 now)
{
	struct weir_policy_ct_value *entry = fresh ? NULL : policy_ct_find(&s->key, now);

	/* Not atomic: both gates of one flow run on one packet's way, on one CPU. */
	if (entry) {
		if (!(entry->flags & flag))
			entry->flags |= flag;
		return;
	}
	s->granted.last_seen_ns = now;
	s->granted.flags = flag;
	s->granted.pad = 0;
	bpf_map_update_elem(&weir_pol_ct, &s->key, &s->granted, BPF_ANY);
}

static __always_inline void policy_ct_keys(struct policy_scratch *s, const struct packet *flow)
{
	__builtin_memset(&s->key, 0, sizeof(s->key));
	ct_key_of(flow, &s->key);
	__builtin_memset(&s->reverse, 0, sizeof(s->reverse));
	s->reverse.saddr = flow->daddr;
	s->reverse.daddr = flow->saddr;
	s->reverse.sport = flow->dport;
	s->reverse.dport = flow->sport;
	s->reverse.proto = flow->proto;
	s->reverse.family = flow->family;
}

/* Whether `flow` (the packet as `ep` sees it) may pass `ep`'s gate of `direction`. */
static __always_inline bool policy_gate(struct __sk_buff *skb, struct policy_scratch *s, const struct packet *flow,
					const struct policy_endpoint *ep, __u8 direction)
{
	bool egress = direction == WEIR_POLICY_EGRESS;
	__u32 own = egress ? WEIR_POLICY_CT_EGRESS : WEIR_POLICY_CT_INGRESS;
	__u32 other = egress ? WEIR_POLICY_CT_INGRESS : WEIR_POLICY_CT_EGRESS;

	/* A later IPv4 fragment carries no ports: it passes, and the first one (with the ports) takes
	 * the verdict; a receiver cannot reassemble without it. */
	if (!flow->has_ports &&
	    (flow->proto == IPPROTO_TCP || flow->proto == IPPROTO_UDP || flow->proto == IPPROTO_SCTP))
		return true;
	__u64 now = coarse_now_ns();
	/* A SYN always takes a verdict: a new connection on an old tuple must not ride the old one. */
	bool syn = flow->proto == IPPROTO_TCP && (flow->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;

	policy_ct_keys(s, flow);
	if (!syn) {
		struct weir_policy_ct_value *known = policy_ct_find(&s->key, now);

		if (known && (known->flags & own))
			return true;
		struct weir_policy_ct_value *opened = policy_ct_find(&s->reverse, now);

		/* A reply: the other side's gate let the flow this answers through. */
		if (opened && (opened->flags & other))
			return true;
	}
	const union weir_addr *peer = egress ? &flow->daddr : &flow->saddr;
	__u32 identity = peer_identity(s, flow->family, peer);
	__u8 verdict = policy_verdict(s, ep, direction, identity, flow, peer);

	policy_count(s, ep->policy_id, direction, verdict);
	if (verdict != WEIR_POLICY_ALLOWED)
		emit_policy_verdict(skb, flow, ep, direction, identity, verdict);
	if (verdict == WEIR_POLICY_DENIED)
		return false;
	policy_ct_grant(s, own, syn && egress, now);
	return true;
}

/* A Service flow the sender's egress gate let through (s->sent, with the backend as destination):
 * its replies reach the sender translated back to the frontend, so the frontend's tuple is granted
 * too. On every packet of the flow, which keeps that entry as fresh as the backend's. */
static __always_inline void policy_grant_frontend(struct policy_scratch *s)
{
	bool syn = s->sent.proto == IPPROTO_TCP &&
		   (s->sent.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;

	s->sent.daddr = s->frontend;
	s->sent.dport = s->frontend_port;
	policy_ct_keys(s, &s->sent);
	policy_ct_grant(s, WEIR_POLICY_CT_EGRESS, syn, coarse_now_ns());
}

/* The ingress gate of a pod about to receive `pkt`. */
static __always_inline bool policy_ingress_allowed(struct __sk_buff *skb, const struct packet *pkt,
						   const struct policy_endpoint *receiver)
{
	struct policy_scratch *s = policy_scratch();

	return s && policy_gate(skb, s, pkt, receiver, WEIR_POLICY_INGRESS);
}

/* The endpoint entry's policy state, when it makes the endpoint a subject of policy. */
static __always_inline bool policy_subject(const struct weir_endpoint_value *ep, struct policy_endpoint *out)
{
	if (!ep || !(ep->flags & WEIR_ENDPOINT_POLICY_SUBJECT))
		return false;
	out->policy_id = ep->policy_id;
	out->flags = ep->flags;
	return true;
}

#endif
