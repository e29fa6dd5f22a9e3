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
	/* NetworkPolicy (bpf/lib/policy.h). Isolated: only what the endpoint's rules allow passes in
	 * that direction. Pending: the CNI wrote the entry before the agent computed the pod's policy;
	 * everything but its own node is denied both ways. Audit: a direction's denials pass, counted
	 * and reported. */
	WEIR_ENDPOINT_INGRESS_ISOLATED = 1 << 2,
	WEIR_ENDPOINT_EGRESS_ISOLATED = 1 << 3,
	WEIR_ENDPOINT_POLICY_PENDING = 1 << 4,
	WEIR_ENDPOINT_INGRESS_AUDIT = 1 << 5,
	WEIR_ENDPOINT_EGRESS_AUDIT = 1 << 6,
	/* A pod with an ingress bandwidth limit: entered through its host veth's qdisc (docs/bandwidth.md). */
	WEIR_ENDPOINT_BANDWIDTH = 1 << 7,
};

/* An endpoint with any of these has its traffic judged (and tracked) in both directions; without
 * them its packets pass with this one flag test. */
#define WEIR_ENDPOINT_POLICY_SUBJECT                                                                         \
	(WEIR_ENDPOINT_INGRESS_ISOLATED | WEIR_ENDPOINT_EGRESS_ISOLATED | WEIR_ENDPOINT_POLICY_PENDING)
/* Every policy flag: what the agent's policy writer owns in an entry. */
#define WEIR_ENDPOINT_POLICY_FLAGS                                                                           \
	(WEIR_ENDPOINT_POLICY_SUBJECT | WEIR_ENDPOINT_INGRESS_AUDIT | WEIR_ENDPOINT_EGRESS_AUDIT)

struct weir_endpoint_value {
	__u32 host_ifindex; /* host end of the pod's veth */
	__u8 pod_mac[6]; /* MAC of the pod's interface */
	__u16 flags; /* enum weir_endpoint_flags */
	__u32 policy_id; /* NetworkPolicy: the agent's number for the endpoint, keys its rules; 0: none yet */
	__u64 pod_id; /* hash of the container id, for weirctl */
};

#endif
