/* Egress masquerade: the destinations traffic from pods keeps its source to, and the devices after
 * which the rest leaves with the node's address. Shared by BPF and C++ (lib/abi_layout.cc checks). */
#ifndef WEIR_ABI_MASQUERADE_H
#define WEIR_ABI_MASQUERADE_H

#include <linux/types.h>

#include "bpf/abi/constants.h"
#include "bpf/abi/endpoint.h"

/* The family is part of the key so that one trie holds both families: a key's prefixlen counts the
 * family byte and its padding (WEIR_NONMASQ_FAMILY_BITS) before the address bits. */
#define WEIR_NONMASQ_FAMILY_BITS 32

struct weir_nonmasq_key {
	__u32 prefixlen; /* WEIR_NONMASQ_FAMILY_BITS + the CIDR's length */
	__u8 family; /* enum weir_ip_family */
	__u8 pad[3];
	union weir_addr addr;
};

/* The trie's value: what kind of in-cluster CIDR an entry is. */
enum weir_nonmasq_kind {
	WEIR_NONMASQ_IN_CLUSTER = 0, /* a nonMasqueradeCIDRs entry */
	WEIR_NONMASQ_POD_CIDR = 1, /* a node's pod CIDR: an address there is a pod's */
	WEIR_NONMASQ_NODE = 2, /* a node's own address (a host prefix): DSR is taken only from these */
};

#endif
