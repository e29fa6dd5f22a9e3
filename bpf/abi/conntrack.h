/* Conntrack for per-packet service translation: one entry per direction of a translated flow. The
 * forward entry (client -> frontend) holds the chosen backend; the reply entry (backend -> client)
 * holds the frontend to restore as the source. */
#ifndef WEIR_ABI_CONNTRACK_H
#define WEIR_ABI_CONNTRACK_H

#include <linux/types.h>

#include "bpf/abi/constants.h"
#include "bpf/abi/endpoint.h"

struct weir_ct_key {
	union weir_addr saddr;
	union weir_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

enum weir_ct_kind {
	WEIR_CT_FORWARD = 1, /* client -> frontend, translate destination to the backend */
	WEIR_CT_REPLY = 2, /* backend -> client, translate source back to the frontend */
};

enum weir_ct_flags {
	WEIR_CT_SNAT = 1 << 0, /* the source was rewritten too (NodePort SNAT mode) */
	WEIR_CT_DSR = 1 << 1, /* reply goes straight to the client from the backend's node */
	WEIR_CT_SEEN_REPLY = 1 << 2,
	WEIR_CT_CLOSING = 1 << 3, /* a FIN or RST passed: collected after a short lifetime */
	/* Egress masquerade (with WEIR_CT_SNAT): the destination is the flow's own, never rewritten;
	 * forward: the pod's source becomes the node's; reply: the destination goes back to the pod. */
	WEIR_CT_MASQ = 1 << 4,
	/* The reply direction of a flow an outside client opened to a pod: it leaves untranslated, not
	 * masqueraded (no backend, no NAT: kind WEIR_CT_FORWARD, keyed pod -> client). */
	WEIR_CT_INBOUND = 1 << 5,
};

struct weir_ct_value {
	union weir_addr nat_addr; /* forward: backend; reply: frontend */
	union weir_addr snat_addr; /* SNAT: forward: node address; reply: original client */
	__be16 nat_port;
	__be16 snat_port;
	__u8 kind; /* enum weir_ct_kind */
	__u8 flags; /* enum weir_ct_flags */
	__u16 pad;
	__u32 backend_id;
	__u32 service_id;
	__u64 last_seen_ns; /* CLOCK_MONOTONIC, coarse, refreshed about once a second; for garbage collection */
};

#endif
