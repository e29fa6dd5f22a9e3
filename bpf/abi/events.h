/* Records on the events ring buffer: drops with their reason and service translations, for
 * `weirctl events`. */
#ifndef WEIR_ABI_EVENTS_H
#define WEIR_ABI_EVENTS_H

#include <linux/types.h>

#include "bpf/abi/endpoint.h"

#define WEIR_EVENTS_MAP_NAME "weir_events"
#define WEIR_EVENTS_RING_BYTES (256 * 1024)

enum weir_event_type {
	WEIR_EVENT_DROP = 1,		/* reason: enum weir_metric */
	WEIR_EVENT_TRANSLATION = 2,	/* first packet of a flow sent to a backend */
};

struct weir_event {
	__u64 timestamp_ns;		/* bpf_ktime_get_ns() */
	union weir_addr saddr;
	union weir_addr daddr;		/* as the packet arrived: the frontend for a translation */
	union weir_addr nat_addr;	/* the backend chosen */
	__be16 sport;
	__be16 dport;
	__be16 nat_port;
	__u8 proto;
	__u8 family;
	__u8 type;			/* enum weir_event_type */
	__u8 reason;			/* enum weir_metric, for drops */
	__u16 pad;
	__u32 ifindex;
	__u32 service_id;
	__u32 backend_id;
	__u32 pad2[2];
};

#endif
