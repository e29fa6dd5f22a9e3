/* Delivery to endpoints on this node: a pod is entered through its host device (see
 * redirect_to_pod for which way), skipping the node's routing; everything else goes to the stack. */
#ifndef WEIR_BPF_DELIVERY_H
#define WEIR_BPF_DELIVERY_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <stdbool.h>
#include <stddef.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi/endpoint.h"
#include "bpf/lib/csum.h"
#include "bpf/lib/eth.h"
#include "bpf/lib/fib.h"
#include "bpf/lib/packet.h"
#include "bpf/lib/maps.h"
#include "bpf/lib/nat.h"
#include "bpf/lib/policy.h"
#include "bpf/lib/ttl.h"

static __always_inline struct weir_endpoint_value *lookup_endpoint_v4(__be32 addr)
{
	struct weir_endpoint_key key = {.family = WEIR_FAMILY_IPV4};

	key.addr.v4 = addr;
	return bpf_map_lookup_elem(&weir_endpoints, &key);
}

static __always_inline struct weir_endpoint_value *lookup_endpoint_v6(const struct in6_addr *addr)
{
	struct weir_endpoint_key key = {.family = WEIR_FAMILY_IPV6};

	__builtin_memcpy(key.addr.v6, addr->in6_u.u6_addr32, sizeof(key.addr.v6));
	return bpf_map_lookup_elem(&weir_endpoints, &key);
}

/* The one place that decides how a pod of this node is entered (decision 0020).
 *
 * From another pod: out of the destination's host device (bpf_redirect to its egress), so that
 * the pair hands the packet over as it does any routed packet (veth: through the backlog queue
 * once more, as Cilium does for pod to pod; netkit: the primary's xmit). bpf_redirect_peer here
 * measured fewer Gbit/s and many times ptp's TCP retransmits (decision 0020 has the numbers), and
 * from a netkit pod's program, which runs in its device's xmit and not at tc ingress, the kernel
 * drops what bpf_redirect_peer redirects.
 *
 * From the uplink: bpf_redirect_peer straight into the pod's namespace: the packet has been
 * through a backlog queue once already on its way in. *
 * A pod with an ingress bandwidth limit (WEIR_ENDPOINT_BANDWIDTH) is always entered through its
 * host veth's egress, where the CNI plugin put the limit's qdisc (docs/bandwidth.md):
 * bpf_redirect_peer would skip it.
 *
 * A function of its own: inlined at each delivery, the choice grows from_pod's frame past the
 * 512-byte stack it shares with its subprograms. */
static __noinline int redirect_to_pod(struct __sk_buff *skb, const struct weir_endpoint_value *ep,
				      bool from_pod)
{
	struct ethhdr *eth = parse_eth(skb);
	__u32 ifindex = ep->host_ifindex;
	bool through_qdisc = ep->flags & WEIR_ENDPOINT_BANDWIDTH;

	if (!eth)
		return TC_ACT_SHOT;
	__builtin_memcpy(eth->h_dest, ep->pod_mac, ETH_ALEN);
	copy_mac(eth->h_source, gateway_mac);
	count(WEIR_METRIC_LOCAL_DELIVERY, skb);
	return from_pod || through_qdisc ? bpf_redirect(ifindex, 0) : bpf_redirect_peer(ifindex, 0);
}

static __always_inline struct weir_endpoint_value *lookup_endpoint(const struct packet *pkt)
{
	return pkt->family == WEIR_FAMILY_IPV4 ? lookup_endpoint_v4(pkt->daddr.v4)
					       : lookup_endpoint_v6((const struct in6_addr *)pkt->daddr.v6);
}

/* Into the pod whose entry is `target`, past its ingress gate: one routed hop. */
static __always_inline int enter_pod(struct __sk_buff *skb, const struct packet *pkt,
				     const struct weir_endpoint_value *target)
{
	if (!routed_hop(skb, pkt->family)) {
		count(WEIR_METRIC_TTL_EXCEEDED, skb);
		return TC_ACT_OK;
	}
	return redirect_to_pod(skb, target, pkt->from_pod);
}

/* What happened to a packet before its delivery. */
enum delivery {
	DELIVERY_TRACKED, /* a flow conntrack knows, untranslated (inbound, DSR), or no flow at all */
	DELIVERY_TRANSLATED,
	DELIVERY_UNTRACKED, /* neither translated nor known to conntrack: policy may mark it plain */
};

/* Delivers a packet whose (possibly translated) destination is in `pkt` and whose endpoint entry
 * (NULL: none) is `ep`: into a pod of this node when it is one and its ingress policy lets the
 * packet in, else on through the FIB when it was translated (its source may now be an address of
 * this node, which the stack's input path would drop), else to the stack. */
static __always_inline int deliver_to(struct __sk_buff *skb, const struct packet *pkt,
				      const struct weir_endpoint_value *ep, enum delivery how)
{
	if (!ep || !(ep->flags & WEIR_ENDPOINT_LOCAL_POD)) {
		count(WEIR_METRIC_TO_STACK, skb);
		return how == DELIVERY_TRANSLATED ? fib_redirect(skb, pkt) : TC_ACT_OK;
	}
	struct weir_endpoint_value target = *ep;

	if (policy_subject(&target) && !policy_ingress_allowed(skb, pkt, &target, how == DELIVERY_UNTRACKED))
		return TC_ACT_SHOT;
	return enter_pod(skb, pkt, &target);
}

static __always_inline int deliver(struct __sk_buff *skb, const struct packet *pkt, bool translated)
{
	return deliver_to(skb, pkt, lookup_endpoint(pkt),
			  translated ? DELIVERY_TRANSLATED : DELIVERY_TRACKED);
}

#endif
