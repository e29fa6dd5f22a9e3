/* Conntrack entries for translated flows, one per direction (see bpf/abi/conntrack.h). LRU maps
 * evict under pressure; the agent removes entries idle past their lifetime. */
#ifndef WEIR_BPF_CONNTRACK_H
#define WEIR_BPF_CONNTRACK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi/conntrack.h"
#include "bpf/lib/clock.h"
#include "bpf/lib/maps.h"
#include "bpf/lib/packet.h"

/* Conntrack times: the coarse monotonic clock is CLOCK_MONOTONIC (what the agent's collector compares
 * with) a tick or two behind, and reading it costs no TSC read and mostly no helper call. */
static __always_inline __u64 ct_now(void)
{
	return coarse_now_ns();
}

/* A packet of a known flow rewrites the entry's time only when it moved by this much, as Cilium's
 * report interval does: most packets then leave the entry's cache line clean. Far below the shortest
 * lifetime the collector applies (10 s for closing flows). */
#define CT_REFRESH_NS 1000000000ull

static __always_inline void ct_refresh(struct weir_ct_value *entry, __u64 now)
{
	if ((__s64)(now - entry->last_seen_ns) >= (__s64)CT_REFRESH_NS)
		entry->last_seen_ns = now;
}

static __always_inline void ct_key_of(const struct packet *pkt, struct weir_ct_key *key)
{
	key->saddr = pkt->saddr;
	key->daddr = pkt->daddr;
	key->sport = pkt->sport;
	key->dport = pkt->dport;
	key->proto = pkt->proto;
	key->family = pkt->family;
}

static __always_inline struct weir_ct_value *ct_lookup(const struct packet *pkt)
{
	struct weir_ct_key key = {};

	ct_key_of(pkt, &key);
	struct weir_ct_value *entry = bpf_map_lookup_elem(&weir_ct, &key);

	if (entry)
		ct_refresh(entry, ct_now());
	return entry;
}

/* Records a translated flow: `pkt` as it arrived (client -> frontend), the backend it goes to and,
 * with SNAT, the source it leaves with. The reply entry is keyed by the reply as it will arrive. */
static __always_inline int ct_create(const struct packet *pkt, const struct weir_backend *backend,
				     __u32 backend_id, __u32 service_id, const union weir_addr *snat_addr,
				     __be16 snat_port, __u8 flags)
{
	__u64 now = ct_now();
	struct weir_ct_key forward_key = {};
	struct weir_ct_value forward = {.nat_addr = backend->addr,
					.nat_port = backend->port,
					.kind = WEIR_CT_FORWARD,
					.flags = flags,
					.backend_id = backend_id,
					.service_id = service_id,
					.last_seen_ns = now};

	ct_key_of(pkt, &forward_key);
	if (snat_addr) {
		forward.snat_addr = *snat_addr;
		forward.snat_port = snat_port;
	}

	struct weir_ct_key reply_key = {
		.saddr = backend->addr, .sport = backend->port, .proto = pkt->proto, .family = pkt->family};
	struct weir_ct_value reply = {.nat_addr = pkt->daddr,
				      .nat_port = pkt->dport,
				      .kind = WEIR_CT_REPLY,
				      .flags = flags,
				      .backend_id = backend_id,
				      .service_id = service_id,
				      .last_seen_ns = now};

	if (snat_addr) {
		reply_key.daddr = *snat_addr;
		reply_key.dport = snat_port;
		reply.snat_addr = pkt->saddr;
		reply.snat_port = pkt->sport;
	} else {
		reply_key.daddr = pkt->saddr;
		reply_key.dport = pkt->sport;
	}
	/* Reply first: once the forward entry exists, replies may come at any moment. */
	if (bpf_map_update_elem(&weir_ct, &reply_key, &reply, BPF_ANY))
		return -1;
	return bpf_map_update_elem(&weir_ct, &forward_key, &forward, BPF_ANY);
}

/* On a DSR backend's node: only the reply entry matters (the forward direction arrives wrapped and
 * is translated from the wrapping each time). Written once per flow, refreshed after that. */
static __always_inline int ct_remember_dsr_reply(const struct packet *pkt, const struct weir_backend *backend)
{
	struct weir_ct_key key = {.saddr = backend->addr,
				  .daddr = pkt->saddr,
				  .sport = backend->port,
				  .dport = pkt->sport,
				  .proto = pkt->proto,
				  .family = pkt->family};
	struct weir_ct_value *known = bpf_map_lookup_elem(&weir_ct, &key);
	__u64 now = ct_now();

	if (known && known->kind == WEIR_CT_REPLY && known->nat_port == pkt->dport &&
	    addr_equal(&known->nat_addr, &pkt->daddr)) {
		ct_refresh(known, now);
		return 0;
	}
	struct weir_ct_value reply = {.nat_addr = pkt->daddr,
				      .nat_port = pkt->dport,
				      .kind = WEIR_CT_REPLY,
				      .flags = WEIR_CT_DSR,
				      .last_seen_ns = now};

	return bpf_map_update_elem(&weir_ct, &key, &reply, BPF_ANY);
}

#endif
