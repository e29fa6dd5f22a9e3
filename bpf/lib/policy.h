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
#include "bpf/lib/maps.h"
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
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEIR_POLICY_PEERS_DEFAULT_SIZE);
	__type(key, struct weir_policy_host_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_POLICY_HOSTS_MAP SEC(".maps");

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

/* A gate's whole state: the endpoint it judges for, the flow as that endpoint sees it, its keys
 * and its intermediate results. The tc programs' stack is nearly full with translation's state,
 * and BPF keeps only four registers across a helper call, so the gates work here, one per CPU (a
 * program runs to its end on one CPU) rather than in locals the compiler would spill. */
struct policy_scratch {
	struct weir_endpoint_key sender; /* the sending pod's address, to find its entry */
	struct weir_endpoint_value endpoint;
	struct packet flow;
	union weir_addr frontend; /* egress, a Service flow: its destination before translation */
	__be16 frontend_port;
	__u8 direction; /* enum weir_policy_direction */
	__u8 verdict; /* enum weir_policy_verdict */
	__u8 sender_judged; /* from_pod: the sender is a subject of policy (policy_remember_sender) */
	/* The flow is neither translated nor in the main conntrack on this node: a grant to a pod peer
	 * marks it WEIR_POLICY_CT_PLAIN. Set by the gate's caller for each gate. */
	__u8 untracked;
	__u32 identity; /* the peer's */
	__u64 now;
	struct weir_ct_key key;
	struct weir_ct_key reverse;
	struct weir_policy_host_key host;
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

static __always_inline bool flow_is_syn(const struct packet *flow)
{
	return flow->proto == IPPROTO_TCP &&
	       (flow->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
}

/* The peer's address: the destination going out, the source coming in. */
static __always_inline const union weir_addr *peer_address(const struct policy_scratch *s)
{
	return s->direction == WEIR_POLICY_EGRESS ? &s->flow.daddr : &s->flow.saddr;
}

/* The peer's identity: its whole address in the hosts map, else the longest prefix of the peers
 * trie, else world. */
static __always_inline void lookup_peer_identity(struct policy_scratch *s)
{
	__u8 family = s->flow.family;

	s->host.family = family;
	s->host.pad[0] = s->host.pad[1] = s->host.pad[2] = 0;
	s->host.addr = *peer_address(s);
	/* An IPv6 link-local peer is on the pod's own link, so it is the node: neighbour discovery's
	 * answers to the node's solicitations must pass, as ARP (no IP) does. */
	if (family == WEIR_FAMILY_IPV6 && s->host.addr.bytes[0] == 0xfe &&
	    (s->host.addr.bytes[1] & 0xc0) == 0x80) {
		s->identity = WEIR_IDENTITY_HOST;
		return;
	}
	__u32 *identity = bpf_map_lookup_elem(&weir_pol_hosts, &s->host);

	if (identity) {
		s->identity = *identity;
		return;
	}
	s->peer.prefixlen = WEIR_POLICY_PEER_FAMILY_BITS + (family == WEIR_FAMILY_IPV4 ? 32 : 128);
	s->peer.family = family;
	s->peer.pad[0] = s->peer.pad[1] = s->peer.pad[2] = 0;
	s->peer.addr = s->host.addr;
	identity = bpf_map_lookup_elem(&weir_pol_peers, &s->peer);

	s->identity = identity ? *identity : WEIR_IDENTITY_WORLD;
}

static __always_inline bool rule_exists(struct policy_scratch *s, __u32 peer)
{
	s->rule.peer = peer;
	return bpf_map_lookup_elem(&weir_pol_rules, &s->rule) != NULL;
}

static __always_inline __u32 cidr_class(struct policy_scratch *s)
{
	__u8 family = s->flow.family;

	s->cidr.prefixlen = WEIR_POLICY_CIDR_FIXED_BITS + (family == WEIR_FAMILY_IPV4 ? 32 : 128);
	s->cidr.policy_id = s->endpoint.policy_id;
	s->cidr.direction = s->direction;
	s->cidr.family = family;
	s->cidr.addr = *peer_address(s);
	__u32 *class = bpf_map_lookup_elem(&weir_pol_cidrs, &s->cidr);

	return class ? *class : 0;
}

/* The rules of an isolated direction: by the peer's identity, by the CIDR class of its address,
 * then the rules for every peer. Protocols without ports (ICMP, ...) look up port 0 under their
 * own protocol number, which only a rule for every protocol covers. */
static __always_inline bool rules_allow(struct policy_scratch *s)
{
	s->rule.prefixlen = WEIR_POLICY_RULE_FULL_BITS;
	s->rule.policy_id = s->endpoint.policy_id;
	s->rule.direction = s->direction;
	s->rule.proto = s->flow.proto;
	s->rule.port = s->flow.has_ports ? s->flow.dport : 0;
	if (rule_exists(s, s->identity))
		return true;
	__u32 class = cidr_class(s);

	if (class && rule_exists(s, WEIR_POLICY_PEER_CIDR_CLASS | class))
		return true;
	return rule_exists(s, WEIR_POLICY_PEER_ANY);
}

static __always_inline void take_verdict(struct policy_scratch *s)
{
	bool ingress = s->direction == WEIR_POLICY_INGRESS;
	__u16 flags = s->endpoint.flags;
	bool allowed;

	/* A pod's traffic with its own node always passes. */
	if (s->identity == WEIR_IDENTITY_HOST)
		allowed = true;
	else if (flags & WEIR_ENDPOINT_POLICY_PENDING)
		allowed = false;
	else if (!(flags & (ingress ? WEIR_ENDPOINT_INGRESS_ISOLATED : WEIR_ENDPOINT_EGRESS_ISOLATED)))
		allowed = true;
	else
		allowed = rules_allow(s);
	if (allowed)
		s->verdict = WEIR_POLICY_ALLOWED;
	else if (flags & (ingress ? WEIR_ENDPOINT_INGRESS_AUDIT : WEIR_ENDPOINT_EGRESS_AUDIT))
		s->verdict = WEIR_POLICY_AUDITED;
	else
		s->verdict = WEIR_POLICY_DENIED;
}

static __always_inline void count_verdict(struct policy_scratch *s)
{
	__u32 *policy_id = &s->endpoint.policy_id;
	struct weir_policy_counters *counters = bpf_map_lookup_elem(&weir_pol_counts, policy_id);

	if (!counters) {
		__builtin_memset(&s->zero, 0, sizeof(s->zero));
		bpf_map_update_elem(&weir_pol_counts, policy_id, &s->zero, BPF_NOEXIST);
		counters = bpf_map_lookup_elem(&weir_pol_counts, policy_id);
		if (!counters)
			return;
	}
	__u8 direction = s->direction, verdict = s->verdict;

	if (direction <= WEIR_POLICY_EGRESS && verdict < WEIR_POLICY_VERDICTS)
		counters->packets[direction][verdict]++;
}

/* Written straight into the ring (reserved, not built on the stack). */
static __always_inline void emit_verdict(struct __sk_buff *skb, struct policy_scratch *s)
{
	if (!events_ring_has_room())
		return;
	struct weir_event *ev = bpf_ringbuf_reserve(&weir_events, sizeof(*ev), 0);

	if (!ev)
		return;
	__builtin_memset(ev, 0, sizeof(*ev));
	fill_event(ev, skb, &s->flow, WEIR_EVENT_POLICY);
	ev->reason = s->verdict;
	ev->direction = s->direction;
	ev->policy_id = s->endpoint.policy_id;
	ev->peer_identity = s->identity;
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
}

/* A live entry for `key`, NULL when absent or idle past its lifetime. */
static __always_inline struct weir_policy_ct_value *policy_ct_find(const struct weir_ct_key *key, __u64 now)
{
	struct weir_policy_ct_value *entry = bpf_map_lookup_elem(&weir_pol_ct, key);

	if (!entry)
		return NULL;
	__u64 lifetime =
		key->proto == IPPROTO_TCP ? WEIR_POLICY_CT_TCP_LIFETIME_NS : WEIR_POLICY_CT_OTHER_LIFETIME_NS;

	if ((__s64)(now - entry->last_seen_ns) > (__s64)lifetime)
		return NULL;
	if ((__s64)(now - entry->last_seen_ns) >= (__s64)CT_REFRESH_NS)
		entry->last_seen_ns = now;
	return entry;
}

/* Notes on s->key's entry that one side's gate let the flow through. `fresh`: the flow starts
 * over (a TCP SYN on its way out), so what earlier flows of the same tuple were granted is
 * forgotten. A flow between pods that nothing translates or tracks here is marked plain; any other
 * grant of the tuple takes the mark away. A function of its own: inlined in from_pod's two gates,
 * it grows from_pod's frame past the 512-byte stack it shares with its subprograms. */
static __noinline void policy_ct_grant(struct policy_scratch *s, __u32 flag, bool fresh)
{
	struct weir_policy_ct_value *entry = fresh ? NULL : policy_ct_find(&s->key, s->now);
	bool plain = s->untracked && s->identity >= WEIR_IDENTITY_FIRST_POD;

	/* Not atomic: both gates of one flow run on one packet's way, on one CPU. */
	if (entry) {
		__u32 flags =
			(entry->flags & ~WEIR_POLICY_CT_PLAIN) | flag | (plain ? WEIR_POLICY_CT_PLAIN : 0);

		if (entry->flags != flags)
			entry->flags = flags;
		return;
	}
	s->granted.last_seen_ns = s->now;
	s->granted.flags = flag | (plain ? WEIR_POLICY_CT_PLAIN : 0);
	s->granted.pad = 0;
	bpf_map_update_elem(&weir_pol_ct, &s->key, &s->granted, BPF_ANY);
}

static __always_inline void policy_ct_key(struct policy_scratch *s)
{
	__builtin_memset(&s->key, 0, sizeof(s->key));
	ct_key_of(&s->flow, &s->key);
}

static __always_inline void policy_ct_reverse_key(struct policy_scratch *s)
{
	const struct packet *flow = &s->flow;

	__builtin_memset(&s->reverse, 0, sizeof(s->reverse));
	s->reverse.saddr = flow->daddr;
	s->reverse.daddr = flow->saddr;
	s->reverse.sport = flow->dport;
	s->reverse.dport = flow->sport;
	s->reverse.proto = flow->proto;
	s->reverse.family = flow->family;
}

/* Whether s->flow may pass s->endpoint's gate of s->direction. */
static __always_inline bool policy_gate(struct __sk_buff *skb, struct policy_scratch *s)
{
	bool egress = s->direction == WEIR_POLICY_EGRESS;

	/* A later IPv4 fragment carries no ports: it passes, and the first one (with the ports) takes
	 * the verdict; a receiver cannot reassemble without it. */
	if (!s->flow.has_ports &&
	    (s->flow.proto == IPPROTO_TCP || s->flow.proto == IPPROTO_UDP || s->flow.proto == IPPROTO_SCTP))
		return true;
	s->now = coarse_now_ns();
	policy_ct_key(s);
	/* A SYN always takes a verdict: a new connection on an old tuple must not ride the old one. */
	if (!flow_is_syn(&s->flow)) {
		struct weir_policy_ct_value *known = policy_ct_find(&s->key, s->now);

		if (known && (known->flags & (egress ? WEIR_POLICY_CT_EGRESS : WEIR_POLICY_CT_INGRESS)))
			return true;
		policy_ct_reverse_key(s);
		struct weir_policy_ct_value *opened = policy_ct_find(&s->reverse, s->now);

		/* A reply: the other side's gate let the flow this answers through. */
		if (opened && (opened->flags & (egress ? WEIR_POLICY_CT_INGRESS : WEIR_POLICY_CT_EGRESS)))
			return true;
	}
	lookup_peer_identity(s);
	take_verdict(s);
	count_verdict(s);
	if (s->verdict != WEIR_POLICY_ALLOWED)
		emit_verdict(skb, s);
	if (s->verdict == WEIR_POLICY_DENIED)
		return false;
	egress = s->direction == WEIR_POLICY_EGRESS;
	policy_ct_grant(s, egress ? WEIR_POLICY_CT_EGRESS : WEIR_POLICY_CT_INGRESS,
			egress && flow_is_syn(&s->flow));
	return true;
}

/* Before translation, for every packet a pod sends: finds the sender's endpoint entry by the
 * packet's source address and, when it is a subject of policy, keeps the entry and the packet as
 * sent for its egress gate (policy_egress_allowed). The verdict that it is one is kept here too
 * (the gate reads it after translation, across which a local would cost a spill slot); it is
 * returned too, for from_pod's plain-flow check right after the conntrack lookup. */
static __always_inline bool policy_remember_sender(const struct packet *pkt)
{
	struct policy_scratch *s = policy_scratch();

	if (!s)
		return false;
	__builtin_memset(&s->sender, 0, sizeof(s->sender));
	s->sender.addr = pkt->saddr;
	s->sender.family = pkt->family;
	struct weir_endpoint_value *ep = bpf_map_lookup_elem(&weir_endpoints, &s->sender);

	s->sender_judged = ep && (ep->flags & WEIR_ENDPOINT_POLICY_SUBJECT);
	if (!s->sender_judged)
		return false;
	s->endpoint = *ep;
	s->flow = *pkt;
	return true;
}

/* A Service flow the sender's egress gate let through (s->flow, with the backend as destination):
 * its replies reach the sender translated back to the frontend, so the frontend's tuple is granted
 * too. On every packet of the flow, which keeps that entry as fresh as the backend's. */
static __always_inline void policy_grant_frontend(struct policy_scratch *s)
{
	s->flow.daddr = s->frontend;
	s->flow.dport = s->frontend_port;
	s->now = coarse_now_ns();
	s->untracked = 0;
	policy_ct_key(s);
	policy_ct_grant(s, WEIR_POLICY_CT_EGRESS, flow_is_syn(&s->flow));
}

/* After translation of a packet a pod sent (`translated` is the packet now; `to_backend`: a
 * Service flow's first or later packet was sent to a backend; `untracked`: neither translated nor
 * known to conntrack): the sender's egress gate, when policy_remember_sender found the sender a
 * subject of policy. It judges the flow as the pod sees it: its own source (before any SNAT), and
 * the backend as the destination of a Service flow; a reply of a translated flow is judged as the
 * pod sent it, before its source went back to the frontend. */
static __always_inline bool policy_egress_allowed(struct __sk_buff *skb, const struct packet *translated,
						  bool to_backend, bool untracked)
{
	struct policy_scratch *s = policy_scratch();

	if (!s)
		return false;
	if (!s->sender_judged)
		return true;
	s->direction = WEIR_POLICY_EGRESS;
	s->untracked = untracked;
	if (to_backend) {
		s->frontend = s->flow.daddr;
		s->frontend_port = s->flow.dport;
		s->flow.daddr = translated->daddr;
		s->flow.dport = translated->dport;
	}
	if (!policy_gate(skb, s))
		return false;
	if (to_backend)
		policy_grant_frontend(s);
	return true;
}

/* The ingress gate of the pod whose entry is `receiver`, about to receive `pkt` (`untracked`: as
 * for policy_egress_allowed). */
static __always_inline bool policy_ingress_allowed(struct __sk_buff *skb, const struct packet *pkt,
						   const struct weir_endpoint_value *receiver, bool untracked)
{
	struct policy_scratch *s = policy_scratch();

	if (!s)
		return false;
	s->endpoint = *receiver;
	s->flow = *pkt;
	s->direction = WEIR_POLICY_INGRESS;
	s->untracked = untracked;
	return policy_gate(skb, s);
}

/* Whether s->flow is a later packet of a plain flow (WEIR_POLICY_CT_PLAIN) that s->endpoint's gate
 * of `direction` has let through: its own entry carries that direction's flag, or the reversed
 * one the other direction's (a reply). Such a packet needs no Service or conntrack lookup and no
 * verdict. Never a TCP SYN (a new connection takes a verdict); a FIN or RST takes the mark away, so
 * that the flow's last packets go the whole way and a tuple reused later by a translated flow
 * meets no stale mark. */
static __always_inline bool policy_plain_flow(struct policy_scratch *s, __u8 direction)
{
	if (!s->flow.has_ports || flow_is_syn(&s->flow))
		return false;
	__u32 own = direction == WEIR_POLICY_EGRESS ? WEIR_POLICY_CT_EGRESS : WEIR_POLICY_CT_INGRESS;
	__u32 other = own ^ (WEIR_POLICY_CT_EGRESS | WEIR_POLICY_CT_INGRESS);

	s->now = coarse_now_ns();
	policy_ct_key(s);
	struct weir_policy_ct_value *entry = policy_ct_find(&s->key, s->now);
	__u32 wanted = own;

	/* The reversed tuple only when the flow's own misses: a reply. */
	if (!entry) {
		policy_ct_reverse_key(s);
		entry = policy_ct_find(&s->reverse, s->now);
		wanted = other;
	}
	if (!entry || (entry->flags & (WEIR_POLICY_CT_PLAIN | wanted)) != (WEIR_POLICY_CT_PLAIN | wanted))
		return false;
	if (s->flow.proto == IPPROTO_TCP && (s->flow.tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))) {
		entry->flags &= ~WEIR_POLICY_CT_PLAIN;
		return false;
	}
	return true;
}

/* from_pod, for a packet of a sender under policy that conntrack does not know, before any Service
 * lookup: whether the packet policy_remember_sender kept rides a plain flow its sender's gates let through (its egress, or
 * its ingress for a reply). After conntrack, which stays authoritative: a translated flow reusing
 * the tuple of a stale plain one is still translated. A function of its own: inlined, it grows
 * from_pod's frame past the 512-byte stack it shares with its subprograms. */
static __noinline bool policy_sender_plain_flow(void)
{
	struct policy_scratch *s = policy_scratch();

	return s && policy_plain_flow(s, WEIR_POLICY_EGRESS);
}

/* From the uplink, to the pod whose entry is `receiver` (a subject of policy), before any Service
 * lookup: whether `pkt` rides a plain flow the receiver's gates let through. The receiver's entry
 * is kept for policy_plain_receiver. */
static __always_inline bool policy_receiver_plain_flow(const struct packet *pkt,
						       const struct weir_endpoint_value *receiver)
{
	struct policy_scratch *s = policy_scratch();

	if (!s)
		return false;
	s->endpoint = *receiver;
	s->flow = *pkt;
	return policy_plain_flow(s, WEIR_POLICY_INGRESS);
}

/* The receiver policy_receiver_plain_flow found riding a plain flow. */
static __always_inline const struct weir_endpoint_value *policy_plain_receiver(void)
{
	struct policy_scratch *s = policy_scratch();

	return s ? &s->endpoint : NULL;
}

/* Whether an endpoint entry makes its endpoint a subject of policy (its packets meet gates). */
static __always_inline bool policy_subject(const struct weir_endpoint_value *ep)
{
	return ep && (ep->flags & WEIR_ENDPOINT_POLICY_SUBJECT);
}

#endif
