/* Records on the events ring buffer: drops with their reason, service translations and the
 * socket LB's verdicts, for `weirctl events`. */
#ifndef WEIR_ABI_EVENTS_H
#define WEIR_ABI_EVENTS_H

#include <linux/types.h>

#include "bpf/abi/constants.h"
#include "bpf/abi/endpoint.h"

enum weir_event_type {
	WEIR_EVENT_DROP = 1, /* reason: enum weir_metric */
	WEIR_EVENT_TRANSLATION = 2, /* first packet of a flow sent to a backend */
	/* A socket-LB hook's verdict on a connect() or datagram, reason: the WEIR_METRIC_SOCK_* it
	 * counted. Refusals always; translations only when the agent asks (one record per connection).
	 * No packet exists yet: saddr, sport and ifindex are 0; daddr is the frontend; the socket is
	 * named by its cookie and its cgroup. */
	WEIR_EVENT_SOCKET = 3,
	/* A NetworkPolicy gate's denial (or, auditing, what it would have denied): reason is enum
	 * weir_policy_verdict, direction enum weir_policy_direction, policy_id the endpoint's and
	 * peer_identity what the peer's address resolved to. saddr/daddr/ports are the flow as the
	 * endpoint sees it (after Service translation). */
	WEIR_EVENT_POLICY = 4,
};

struct weir_event {
	__u64 timestamp_ns; /* bpf_ktime_get_ns() */
	union weir_addr saddr;
	union weir_addr daddr; /* as the packet arrived: the frontend for a translation */
	union weir_addr nat_addr; /* the backend chosen */
	__be16 sport;
	__be16 dport;
	__be16 nat_port;
	__u8 proto;
	__u8 family;
	__u8 type; /* enum weir_event_type */
	__u8 reason; /* enum weir_metric, for drops; enum weir_policy_verdict, for policy records */
	__u8 direction; /* policy records: enum weir_policy_direction */
	__u8 pad;
	__u32 ifindex;
	__u32 service_id;
	__u32 backend_id;
	__u64 socket_cookie; /* socket records: bpf_get_socket_cookie(), `ss -e` shows it as sk:<hex> */
	__u64 cgroup_id; /* socket records: the calling task's cgroup v2 id (its inode number) */
	__u32 policy_id; /* policy records: the endpoint's (0: pending its first policy) */
	__u32 peer_identity; /* policy records */
};

#endif
