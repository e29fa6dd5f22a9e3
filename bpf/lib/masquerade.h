/* Egress masquerade, as ip-masq-agent or Cilium's BPF masquerade do it: a flow a pod opens to a
 * destination outside the cluster (not in weir_nonmasq) that leaves through an uplink gets the node's
 * address and a free port as its source, with the same conntrack entries as NodePort SNAT; its reply
 * arrives on the uplink and is translated back to the pod by translate_tracked. */
#ifndef WEIR_BPF_MASQUERADE_H
#define WEIR_BPF_MASQUERADE_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi/conntrack.h"
#include "bpf/abi/masquerade.h"
#include "bpf/abi/metrics.h"
#include "bpf/lib/conntrack.h"
#include "bpf/lib/fib.h"
#include "bpf/lib/maps.h"
#include "bpf/lib/nat.h"
#include "bpf/lib/packet.h"
#include "bpf/lib/service_nat.h"

/* The agent's `masquerade` setting. Off, the verifier drops every path below. */
const volatile bool masquerade = false;

/* In-cluster destinations (every node's pod CIDRs and addresses, and nonMasqueradeCIDRs): an LPM
 * trie of both families. Sized by the agent's nonMasqueradeCIDRsMax. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, WEIR_NONMASQ_DEFAULT_SIZE);
	__type(key, struct weir_nonmasq_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_NONMASQ_MAP SEC(".maps");

/* The interfaces the agent attached the uplink program to: masquerade applies to what leaves
 * there. Key: ifindex; value unused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEIR_UPLINKS_MAX);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_UPLINKS_MAP SEC(".maps");

/* Where an address stands, from the non-masquerade trie: one lookup answers both what masquerade
 * asks (in the cluster or not) and what delivery asks (a pod or not). */
enum peer_class {
	PEER_OUTSIDE, /* in no entry */
	PEER_IN_CLUSTER, /* a nonMasqueradeCIDRs entry */
	PEER_POD, /* inside some node's pod CIDR */
	PEER_NODE, /* a node's own address */
};

static __always_inline enum peer_class classify_peer(__u8 family, const union weir_addr *addr)
{
	struct weir_nonmasq_key key = {.family = family, .addr = *addr};

	key.prefixlen = WEIR_NONMASQ_FAMILY_BITS + (family == WEIR_FAMILY_IPV4 ? 32 : 128);
	__u32 *kind = bpf_map_lookup_elem(&weir_nonmasq, &key);

	if (!kind)
		return PEER_OUTSIDE;
	if (*kind == WEIR_NONMASQ_POD_CIDR)
		return PEER_POD;
	return *kind == WEIR_NONMASQ_NODE ? PEER_NODE : PEER_IN_CLUSTER;
}

static __always_inline bool in_cluster(__u8 family, const union weir_addr *addr)
{
	return classify_peer(family, addr) != PEER_OUTSIDE;
}

/* Only flows the pod opens: a TCP segment other than a first SYN of an untracked flow is the pod's
 * side of a connection someone else opened (or one older than its conntrack entry), which must keep
 * its source. UDP and SCTP have no such marker; an outside client's flows to pods are remembered
 * on the way in instead (remember_inbound). ICMP: echo requests, by their identifier (an echo reply
 * answers someone else's request); other ICMP, errors included, is not masqueraded. */
static __always_inline bool opens_flow(const struct packet *pkt)
{
	if (!pkt->has_ports)
		return pkt->echo == ECHO_REQUEST;
	return pkt->proto != IPPROTO_TCP || (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
}

#define MASQUERADE_NOT_APPLICABLE (-1)

/* The first packet of a pod's flow that no Service translated. Returns a tc verdict once the packet
 * is masqueraded and sent, MASQUERADE_NOT_APPLICABLE when it keeps its source (then delivered as
 * before). */
static __always_inline int masquerade_new_flow(struct __sk_buff *skb, struct packet *pkt)
{
	if (!masquerade || !opens_flow(pkt) || in_cluster(pkt->family, &pkt->daddr))
		return MASQUERADE_NOT_APPLICABLE;
	union weir_addr source = {};

	if (!node_address(pkt->family, &source))
		return MASQUERADE_NOT_APPLICABLE;
	/* Leaving through an uplink: a destination behind another device of the node (a local address,
	 * a bridge, a tunnel that is not weir's) is the stack's to route, with the pod's source. */
	struct bpf_fib_lookup route = {};
	long rc = fib_lookup_for(skb, pkt, &route);
	__u32 egress = route.ifindex;

	if ((rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) ||
	    !bpf_map_lookup_elem(&weir_uplinks, &egress))
		return MASQUERADE_NOT_APPLICABLE;

	/* The destination plays the backend: the reply entry is keyed destination -> node:port. */
	struct weir_backend destination = {.addr = pkt->daddr, .port = pkt->dport};
	__be16 port = free_snat_port(pkt, &destination, &source);

	if (!port || ct_create(pkt, &destination, 0, 0, &source, port, WEIR_CT_SNAT | WEIR_CT_MASQ) ||
	    snat(skb, pkt, &source, port)) {
		count(WEIR_METRIC_TRANSLATION_ERROR, skb);
		return TC_ACT_SHOT;
	}
	count(WEIR_METRIC_MASQUERADED, skb);
	if (!routed_hop(skb, pkt->family)) {
		count(WEIR_METRIC_TTL_EXCEEDED, skb);
		return TC_ACT_OK;
	}
	return fib_forward(skb, &route, rc);
}

/* On the way in, a UDP or SCTP flow an outside client opened to a local pod: its reply direction
 * (pod -> client) is recorded so that the pod's answers leave untranslated instead of being taken
 * for a new flow to the outside. Written once per flow, refreshed after that. */
static __always_inline void remember_inbound(const struct packet *pkt, enum peer_class source)
{
	if (!masquerade || !pkt->has_ports || pkt->proto == IPPROTO_TCP || source != PEER_OUTSIDE)
		return;
	struct weir_ct_key key = {.saddr = pkt->daddr,
				  .daddr = pkt->saddr,
				  .sport = pkt->dport,
				  .dport = pkt->sport,
				  .proto = pkt->proto,
				  .family = pkt->family};
	struct weir_ct_value *known = bpf_map_lookup_elem(&weir_ct, &key);
	__u64 now = ct_now();

	if (known && (known->flags & WEIR_CT_INBOUND)) {
		ct_refresh(known, now);
		return;
	}
	/* Anything else under this key is a flow the pod opened itself, which stays as it is. */
	if (known)
		return;
	struct weir_ct_value inbound = {.nat_addr = pkt->saddr,
					.nat_port = pkt->sport,
					.kind = WEIR_CT_FORWARD,
					.flags = WEIR_CT_INBOUND,
					.last_seen_ns = now};

	bpf_map_update_elem(&weir_ct, &key, &inbound, BPF_NOEXIST);
}

#endif
