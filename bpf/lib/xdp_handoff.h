/* What the XDP program on an uplink (from_uplink_xdp.bpf.c) tells the tc program behind it
 * (from_uplink) about a packet it passes on: that translate_service already ran on it, and with
 * which result, so that tc only delivers it. Carried in the XDP metadata in front of the packet,
 * which tc sees as skb->data_meta; only an XDP program on the same device can put it there. */
#ifndef WEIR_BPF_XDP_HANDOFF_H
#define WEIR_BPF_XDP_HANDOFF_H

#include <linux/types.h>

#define XDP_HANDOFF_MAGIC 0x77656972u /* "weir" */

struct xdp_handoff {
	__u32 magic;
	__u32 translation; /* enum translation (bpf/lib/service_nat.h) */
};

#endif
