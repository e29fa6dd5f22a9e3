/* Emitting records to the events ring buffer. A full buffer (nobody reading) loses the record and
 * nothing else. Records never wake the reader (an irq_work per record costs microseconds): readers
 * poll the ring. */
#ifndef WEIR_BPF_EVENTS_H
#define WEIR_BPF_EVENTS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi/events.h"
#include "bpf/abi/service.h"
#include "bpf/lib/packet.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, WEIR_EVENTS_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_EVENTS_MAP SEC(".maps");

/* The tick (jiffies) in which this program last found the ring full. */
volatile __u64 events_ring_full_tick = 0;

/* Whether a record could be reserved now. Checked before the record is built: with nobody reading,
 * the ring is full on most nodes, and a failed bpf_ringbuf_output (after the clock read and the
 * ring's spinlock) costs more than the query. Once the query has found the ring full, it is taken
 * as full for the rest of that tick without asking again: the query is a helper call that reads
 * the ring's two position pages, about 70 ns of a new flow's first packet when they are out of
 * cache (bench/lb_bench.py), and jiffies is one load. A reader that starts draining the ring
 * therefore sees records from the next tick on (at most 1/HZ later, 4 ms at HZ=250). */
static __always_inline bool events_ring_has_room(void)
{
	/* Each record takes an 8-byte header and is padded to 8 bytes. */
	const __u64 record = (sizeof(struct weir_event) + 8 + 7) & ~7ull;
	__u64 tick = bpf_jiffies64();

	if (events_ring_full_tick == tick)
		return false;
	if (bpf_ringbuf_query(&weir_events, BPF_RB_AVAIL_DATA) + record <= WEIR_EVENTS_RING_BYTES)
		return true;
	events_ring_full_tick = tick;
	return false;
}

static __always_inline void fill_event(struct weir_event *ev, struct ctx_buff *skb, const struct packet *pkt,
				       __u8 type)
{
	ev->timestamp_ns = bpf_ktime_get_ns();
	ev->saddr = pkt->saddr;
	ev->daddr = pkt->daddr;
	ev->sport = pkt->sport;
	ev->dport = pkt->dport;
	ev->proto = pkt->proto;
	ev->family = pkt->family;
	ev->type = type;
	ev->ifindex = ctx_ifindex(skb);
}

static __always_inline void emit_drop(struct ctx_buff *skb, const struct packet *pkt, __u8 reason,
				      __u32 service_id)
{
	if (!events_ring_has_room())
		return;
	struct weir_event ev = {};

	fill_event(&ev, skb, pkt, WEIR_EVENT_DROP);
	ev.reason = reason;
	ev.service_id = service_id;
	bpf_ringbuf_output(&weir_events, &ev, sizeof(ev), BPF_RB_NO_WAKEUP);
}

static __always_inline void emit_translation(struct ctx_buff *skb, const struct packet *pkt,
					     const struct weir_backend *backend, __u32 service_id,
					     __u32 backend_id)
{
	if (!events_ring_has_room())
		return;
	struct weir_event ev = {};

	fill_event(&ev, skb, pkt, WEIR_EVENT_TRANSLATION);
	ev.nat_addr = backend->addr;
	ev.nat_port = backend->port;
	ev.service_id = service_id;
	ev.backend_id = backend_id;
	bpf_ringbuf_output(&weir_events, &ev, sizeof(ev), BPF_RB_NO_WAKEUP);
}

/* A socket-LB verdict on a connect() or datagram to `frontend`; `backend` is NULL when refused. */
static __always_inline void emit_socket_verdict(struct bpf_sock_addr *ctx, const union weir_addr *frontend,
						__be16 frontend_port, __u8 family, __u8 verdict,
						__u32 service_id, const struct weir_backend *backend,
						__u32 backend_id)
{
	if (!events_ring_has_room())
		return;
	struct weir_event ev = {};

	ev.timestamp_ns = bpf_ktime_get_ns();
	ev.daddr = *frontend;
	ev.dport = frontend_port;
	ev.proto = (__u8)ctx->protocol;
	ev.family = family;
	ev.type = WEIR_EVENT_SOCKET;
	ev.reason = verdict;
	ev.service_id = service_id;
	if (backend) {
		ev.nat_addr = backend->addr;
		ev.nat_port = backend->port;
		ev.backend_id = backend_id;
	}
	ev.socket_cookie = bpf_get_socket_cookie(ctx);
	ev.cgroup_id = bpf_get_current_cgroup_id();
	bpf_ringbuf_output(&weir_events, &ev, sizeof(ev), BPF_RB_NO_WAKEUP);
}

#endif
