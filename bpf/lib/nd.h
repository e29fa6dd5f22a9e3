/* Answers a pod's IPv6 neighbour solicitations (for its gateway fe80::1, or any on-link address)
 * with a neighbour advertisement carrying the gateway MAC: IPv6's counterpart of arp.h. */
#ifndef WEIR_BPF_ND_H
#define WEIR_BPF_ND_H

#include <linux/bpf.h>
#include <linux/icmpv6.h>
#include <linux/if_ether.h>
#include <linux/in6.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <stdbool.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/eth.h"
#include "bpf/lib/maps.h"

#define ND_NEIGHBOR_SOLICIT 135
#define ND_NEIGHBOR_ADVERT 136
#define ND_OPT_TARGET_LL_ADDR 2
#define ND_NA_FLAGS_ROUTER_SOLICITED_OVERRIDE 0xe0

struct nd_message {
	struct icmp6hdr icmp;
	struct in6_addr target;
	__u8 opt_type;
	__u8 opt_len; /* in units of 8 bytes */
	__u8 opt_mac[ETH_ALEN];
} __attribute__((packed));

#define ND_PACKET_LEN (sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + sizeof(struct nd_message))
#define ND_NO_OPTION_LEN (ND_PACKET_LEN - 8)

struct icmp6_pseudo_tail {
	__be32 payload_len;
	__be32 next_header;
};

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline bool ipv6_unspecified(const struct in6_addr *a)
{
	return (a->in6_u.u6_addr32[0] | a->in6_u.u6_addr32[1] | a->in6_u.u6_addr32[2] |
		a->in6_u.u6_addr32[3]) == 0;
}

/* `ip6` is known to carry ICMPv6. Returns TC_ACT_REDIRECT with the advertisement sent back to the
 * pod, or TC_ACT_OK for anything else (other ICMPv6, duplicate address detection). */
static __always_inline int answer_nd(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct nd_message *nd = (void *)(ip6 + 1);

	if ((void *)nd + sizeof(struct icmp6hdr) + sizeof(struct in6_addr) > data_end)
		return TC_ACT_OK;
	if (nd->icmp.icmp6_type != ND_NEIGHBOR_SOLICIT || nd->icmp.icmp6_code != 0 || ip6->hop_limit != 255 ||
	    ipv6_unspecified(&ip6->saddr))
		return TC_ACT_OK;

	/* A unicast solicitation may lack the source link-layer option: size the packet for ours. */
	if (skb->len != ND_PACKET_LEN && bpf_skb_change_tail(skb, ND_PACKET_LEN, 0))
		return TC_ACT_OK;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	ip6 = (void *)(eth + 1);
	nd = (void *)(ip6 + 1);
	if ((void *)(nd + 1) > data_end)
		return TC_ACT_OK;

	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	copy_mac(eth->h_source, gateway_mac);
	ip6->daddr = ip6->saddr;
	ip6->saddr = nd->target;
	ip6->payload_len = bpf_htons(sizeof(struct nd_message));
	nd->icmp.icmp6_type = ND_NEIGHBOR_ADVERT;
	nd->icmp.icmp6_cksum = 0;
	nd->icmp.icmp6_dataun.un_data32[0] = 0;
	nd->icmp.icmp6_dataun.un_data8[0] = ND_NA_FLAGS_ROUTER_SOLICITED_OVERRIDE;
	nd->opt_type = ND_OPT_TARGET_LL_ADDR;
	nd->opt_len = 1;
	copy_mac(nd->opt_mac, gateway_mac);

	struct icmp6_pseudo_tail tail = {
		.payload_len = bpf_htonl(sizeof(struct nd_message)),
		.next_header = bpf_htonl(IPPROTO_ICMPV6),
	};
	__s64 sum = bpf_csum_diff(NULL, 0, (__be32 *)&ip6->saddr, 2 * sizeof(struct in6_addr), 0);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&tail, sizeof(tail), sum);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)nd, sizeof(*nd), sum);
	if (sum < 0)
		return TC_ACT_OK;
	nd->icmp.icmp6_cksum = csum_fold((__u32)sum);

	count(WEIR_METRIC_ND_REPLY, skb);
	return bpf_redirect(skb->ifindex, 0);
}

#endif
