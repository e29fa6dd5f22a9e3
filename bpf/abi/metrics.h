/* Per-CPU counters, indexed by enum weir_metric. The tc programs count packets (and their bytes);
 * the socket-LB hooks (WEIR_METRIC_SOCK_*) count calls: one connect() or datagram each, in
 * `packets`, with `bytes` left at 0. */
#ifndef WEIR_ABI_METRICS_H
#define WEIR_ABI_METRICS_H

#include <linux/types.h>

#include "bpf/abi/constants.h"

enum weir_metric {
	WEIR_METRIC_LOCAL_DELIVERY = 0, /* redirected into a pod on this node */
	WEIR_METRIC_TO_STACK = 1, /* handed to the node's stack (host or remote) */
	WEIR_METRIC_ARP_REPLY = 2,
	WEIR_METRIC_ND_REPLY = 3,
	WEIR_METRIC_TTL_EXCEEDED = 4, /* left to the stack to answer with ICMP */
	WEIR_METRIC_PARSE_ERROR = 5,
	WEIR_METRIC_SERVICE_TRANSLATED = 6, /* first packet of a flow sent to a backend */
	WEIR_METRIC_REPLY_TRANSLATED = 7,
	WEIR_METRIC_NO_BACKEND = 8, /* rejected: the Service has no usable endpoint */
	WEIR_METRIC_TRANSLATION_ERROR = 9,
	WEIR_METRIC_MASQUERADED =
		10, /* first packet of a pod's flow out of the cluster, SNATed to the node */
	/* Socket LB, per call. */
	WEIR_METRIC_SOCK_CONNECT4_TRANSLATED = 11, /* connect() to an IPv4 Service sent to a backend */
	WEIR_METRIC_SOCK_CONNECT6_TRANSLATED = 12,
	WEIR_METRIC_SOCK_CONNECT_REFUSED = 13, /* ECONNREFUSED: the Service has no usable endpoint */
	WEIR_METRIC_SOCK_CONNECT_PASSTHROUGH = 14, /* not a Service: left as it was */
	WEIR_METRIC_SOCK_AFFINITY_HIT = 15, /* sessionAffinity kept the client's last backend */
	WEIR_METRIC_SOCK_SENDMSG_TRANSLATED = 16, /* a datagram to a Service sent to a backend */
	WEIR_METRIC_SOCK_SENDMSG_REFUSED = 17, /* ECONNREFUSED: the Service has no usable endpoint */
	WEIR_METRIC_SOCK_RECVMSG_TRANSLATED = 18, /* a backend's datagram shown as from the Service */
	/* A TCP segment to a frontend, or a reset, of a flow conntrack does not know, dropped while an
	 * upgrade copies conntrack (bpf/lib/service_nat.h, held_at_upgrade). */
	WEIR_METRIC_HELD_AT_UPGRADE = 19,
	/* A packet wrapped as weir's DSR wraps whose outer source is no cluster node: dropped. */
	WEIR_METRIC_DSR_REFUSED = 20,
	/* Translated and sent on out of the node by the uplink's XDP program (XDP_TX or redirect). */
	WEIR_METRIC_XDP_SENT = 21,
	WEIR_METRIC_MAX = 32,
};

struct weir_metric_value {
	__u64 packets;
	__u64 bytes;
};

#endif
