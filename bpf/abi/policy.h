/* NetworkPolicy enforcement: the peer identities, the per-endpoint rules and CIDR classes, the
 * policy conntrack and the per-endpoint verdict counters. Shared by BPF and C++
 * (lib/abi_layout.cc checks). docs/network-policy.md describes the model.
 *
 * LPM tries compare a key's bytes after `prefixlen` most significant bit first, so each key puts
 * the fields that must always match exactly first and the wildcardable ones last. */
#ifndef WEIR_ABI_POLICY_H
#define WEIR_ABI_POLICY_H

#include <linux/types.h>

#include "bpf/abi/constants.h"
#include "bpf/abi/endpoint.h"

enum weir_policy_direction {
	WEIR_POLICY_INGRESS = 0, /* into the endpoint; the port is the endpoint's */
	WEIR_POLICY_EGRESS = 1, /* out of the endpoint; the port is the peer's */
};

/* Reserved identities (proxy/policy/identity.h numbers them the same). */
#define WEIR_IDENTITY_WORLD 1 /* an address the peers map does not know */
#define WEIR_IDENTITY_HOST 2 /* this node: always allowed, both ways */
/* Identities from here on stand for pods (labels); below are reserved ones (world, nodes). */
#define WEIR_IDENTITY_FIRST_POD 256

/* Peers: address or CIDR -> identity, both families in one trie. The prefix counts the family
 * byte and its padding (WEIR_POLICY_PEER_FAMILY_BITS) before the address bits. */
#define WEIR_POLICY_PEER_FAMILY_BITS 32

struct weir_policy_peer_key {
	__u32 prefixlen;
	__u8 family; /* enum weir_ip_family */
	__u8 pad[3];
	union weir_addr addr;
};

/* Hosts: the peers that are one whole address (every pod address, every node address), by exact
 * match, looked up before the peers trie, which keeps only wider prefixes. A hash lookup costs
 * about the same at any size (30-44 ns here), a trie walk grows with the trie (80 ns at 10,000
 * entries, 290 ns at 30,000: bench/policy_bench.py, part floor). Value: __u32 identity. */
struct weir_policy_host_key {
	__u8 family; /* enum weir_ip_family */
	__u8 pad[3];
	union weir_addr addr;
};

/* A rule's peer: an identity (below 2^31), every peer (0), or one of the endpoint-direction's
 * CIDR classes (the high bit set; see weir_policy_cidr_key). */
#define WEIR_POLICY_PEER_ANY 0
#define WEIR_POLICY_PEER_CIDR_CLASS 0x80000000u

/* Rules: what an endpoint lets through in one direction. policy_id, peer and direction always
 * match exactly (WEIR_POLICY_RULE_FIXED_BITS); a rule for every protocol ends there; a rule for one
 * protocol adds its 8 bits, and its port prefix up to 16 more (an endPort range is a few prefixes,
 * never an entry per port). */
#define WEIR_POLICY_RULE_FIXED_BITS 72
#define WEIR_POLICY_RULE_PROTO_BITS 80
#define WEIR_POLICY_RULE_FULL_BITS 96

struct weir_policy_rule_key {
	__u32 prefixlen;
	__u32 policy_id; /* the endpoint's, from weir_endpoint_value */
	__u32 peer; /* identity, WEIR_POLICY_PEER_ANY or WEIR_POLICY_PEER_CIDR_CLASS | class */
	__u8 direction; /* enum weir_policy_direction */
	__u8 proto; /* IPPROTO_TCP / UDP / SCTP */
	__be16 port;
};

struct weir_policy_rule_value {
	__u32 reserved; /* 0; a rule's presence is the allow */
};

/* CIDR classes: per endpoint-direction, the addresses its ipBlock peers (with their excepts) and
 * its named-port address peers cover. Each prefix the writer names maps to the class of exactly
 * the peers that contain it (0: none, e.g. an except), so the longest match gives the class of
 * any address; the rules then name classes as peers. The prefix counts policy_id, direction,
 * family and padding (WEIR_POLICY_CIDR_FIXED_BITS) before the address bits. */
#define WEIR_POLICY_CIDR_FIXED_BITS 64

struct weir_policy_cidr_key {
	__u32 prefixlen;
	__u32 policy_id;
	__u8 direction; /* enum weir_policy_direction */
	__u8 family; /* enum weir_ip_family */
	__u8 pad[2];
	union weir_addr addr;
};

/* Value: __u32 class (without the high bit); 0 is "no class". */

/* Policy conntrack: one entry per flow some gate judged, keyed by the flow as the endpoint on
 * this node sees it (after Service translation, before SNAT: struct weir_ct_key). A gate passes a
 * packet whose own entry carries its flag, or whose reversed entry carries the flag of the other
 * side (a reply of a flow that side let through). */
enum weir_policy_ct_flags {
	WEIR_POLICY_CT_EGRESS = 1 << 0, /* the source endpoint's egress gate let the flow out */
	WEIR_POLICY_CT_INGRESS = 1 << 1, /* the destination endpoint's ingress gate let it in */
	/* A flow between two pods that this node neither translates nor tracks in its main conntrack
	 * (no Service frontend, no masquerade: a pod address is neither): its later packets skip the
	 * Service and conntrack lookups and the gate (bpf/lib/policy.h, policy_plain_flow). Cleared by a
	 * FIN or RST, and by a grant of the same tuple that is not plain. */
	WEIR_POLICY_CT_PLAIN = 1 << 2,
};

struct weir_policy_ct_value {
	__u64 last_seen_ns; /* CLOCK_MONOTONIC, coarse, refreshed about once a second */
	__u32 flags; /* enum weir_policy_ct_flags */
	__u32 pad;
};

/* Idle lifetimes: an older entry counts as absent (the next packet takes a verdict again). */
#define WEIR_POLICY_CT_TCP_LIFETIME_NS (6ull * 3600 * 1000000000ull)
#define WEIR_POLICY_CT_OTHER_LIFETIME_NS (60ull * 1000000000ull)

/* Per-endpoint counters (per CPU), keyed by policy_id (0: endpoints still pending their first
 * policy). Allowed and audited count verdicts (a flow's first packet); denied counts packets. */
enum weir_policy_verdict {
	WEIR_POLICY_ALLOWED = 0,
	WEIR_POLICY_DENIED = 1,
	WEIR_POLICY_AUDITED = 2, /* would have been denied; passed because the direction audits */
	WEIR_POLICY_VERDICTS = 3,
};

struct weir_policy_counters {
	__u64 packets[2][WEIR_POLICY_VERDICTS]; /* [enum weir_policy_direction][enum weir_policy_verdict] */
};

#endif
