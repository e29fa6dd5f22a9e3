/* Endpoints map: which addresses live on this node and how to deliver to them.
 * Shared by BPF and C++ (lib/abi_layout.cc checks sizes and offsets). */
#ifndef WEIR_ABI_ENDPOINT_H
#define WEIR_ABI_ENDPOINT_H

#include <linux/types.h>

#include "bpf/abi/constants.h"

enum weir_ip_family {
	WEIR_FAMILY_IPV4 = 4,
	WEIR_FAMILY_IPV6 = 6,
};

/* An address of either family; IPv4 uses the first word, the rest is zero. */
union weir_addr {
	__be32 v4;
	__be32 v6[4];
	__u8 bytes[16];
};

struct weir_endpoint_key {
	union weir_addr addr;
	__u8 family; /* enum weir_ip_family */
	__u8 pad[3];
};

enum weir_endpoint_flags {
	WEIR_ENDPOINT_LOCAL_POD = 1 << 0, /* a pod on this node: redirect into it */
	WEIR_ENDPOINT_HOST = 1 << 1, /* an address of this node: hand to the stack */
};

struct weir_endpoint_value {
	__u32 host_ifindex; /* host end of the pod's veth */
	__u8 pod_mac[6]; /* MAC of the pod's interface */
	__u16 flags; /* enum weir_endpoint_flags */
	__u64 pod_id; /* hash of the container id, for weirctl */
};

#endif
