/* Answers a pod's ARP requests with the gateway MAC, so that pods need no bridge: every address a
 * pod asks for is reached through the host end of its veth. */
#ifndef WEIR_BPF_ARP_H
#define WEIR_BPF_ARP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/eth.h"
#include "bpf/lib/maps.h"

/* linux/if_arp.h drags in libc headers that do not build for the BPF target. */
#define ARPHRD_ETHER 1
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2

struct arp_header {
	__be16 ar_hrd;
	__be16 ar_pro;
	__u8 ar_hln;
	__u8 ar_pln;
	__be16 ar_op;
};

struct arp_ipv4 {
	struct arp_header hdr;
	__u8 sha[ETH_ALEN];
	__be32 sip;
	__u8 tha[ETH_ALEN];
	__be32 tip;
} __attribute__((packed));

/* Returns TC_ACT_REDIRECT with the reply sent back out of the ingress device, or TC_ACT_OK to leave
 * anything that is not a plain IPv4-over-Ethernet request (including gratuitous ARP) to the stack. */
static __always_inline int answer_arp(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct arp_ipv4 *arp = (void *)(eth + 1);

	if ((void *)(arp + 1) > data_end)
		return TC_ACT_OK;
	if (arp->hdr.ar_op != bpf_htons(ARPOP_REQUEST) || arp->hdr.ar_hrd != bpf_htons(ARPHRD_ETHER) ||
	    arp->hdr.ar_pro != bpf_htons(ETH_P_IP) || arp->hdr.ar_hln != ETH_ALEN || arp->hdr.ar_pln != 4)
		return TC_ACT_OK;
	if (arp->tip == arp->sip)
		return TC_ACT_OK;

	__be32 asked = arp->tip;

	__builtin_memcpy(arp->tha, arp->sha, ETH_ALEN);
	arp->tip = arp->sip;
	copy_mac(arp->sha, gateway_mac);
	arp->sip = asked;
	arp->hdr.ar_op = bpf_htons(ARPOP_REPLY);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	copy_mac(eth->h_source, gateway_mac);

	count(WEIR_METRIC_ARP_REPLY, skb);
	return bpf_redirect(skb->ifindex, 0);
}

#endif
