/* The answer to a flow for a Service without a usable endpoint, as kube-proxy's reject rule gives:
 * a TCP reset or an ICMP port unreachable, so that clients fail at once instead of timing out. The
 * packet is turned around in place. Other protocols are dropped (and counted). */
#ifndef WEIR_BPF_REJECT_H
#define WEIR_BPF_REJECT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/nd.h"
#include "bpf/lib/packet.h"

/* The answer goes back where the packet came from. */
static __always_inline void swap_macs(struct ethhdr *eth)
{
	__u8 mac[ETH_ALEN];

	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
}

struct tcp_pseudo_v4 {
	__be32 saddr;
	__be32 daddr;
	__u8 zero;
	__u8 proto;
	__be16 len;
};

/* `l4_off` is a constant at each call site, so the verifier can check every access after the
 * resize. */
static __always_inline int reject_tcp_at(struct __sk_buff *skb, const struct packet *pkt, const __u32 l4_off)
{
	__u32 l4_len = sizeof(struct tcphdr);
	__u32 total = l4_off + l4_len;

	if (bpf_skb_change_tail(skb, total, 0))
		return TC_ACT_SHOT;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *tcp = data + l4_off;

	if ((void *)(eth + 1) > data_end || (void *)(tcp + 1) > data_end)
		return TC_ACT_SHOT;

	swap_macs(eth);

	__be32 ack = bpf_htonl(bpf_ntohl(tcp->seq) + ((pkt->tcp_flags & TCP_FLAG_SYN) ? 1 : 0));
	__be32 seq = (pkt->tcp_flags & TCP_FLAG_ACK) ? tcp->ack_seq : 0;
	__be16 port = tcp->source;

	tcp->source = tcp->dest;
	tcp->dest = port;
	tcp->seq = seq;
	tcp->ack_seq = ack;
	((__u8 *)tcp)[12] = (sizeof(struct tcphdr) / 4) << 4;
	((__u8 *)tcp)[13] = TCP_FLAG_RST | TCP_FLAG_ACK;
	tcp->window = 0;
	tcp->check = 0;
	tcp->urg_ptr = 0;

	__s64 sum;

	if (pkt->family == WEIR_FAMILY_IPV4) {
		struct iphdr *ip4 = data + sizeof(struct ethhdr);

		if ((void *)(ip4 + 1) > data_end)
			return TC_ACT_SHOT;
		__be32 addr = ip4->saddr;

		ip4->saddr = ip4->daddr;
		ip4->daddr = addr;
		ip4->tot_len = bpf_htons(total - sizeof(struct ethhdr));
		ip4->ttl = 64;
		ip4->check = 0;
		sum = bpf_csum_diff(NULL, 0, (__be32 *)ip4, sizeof(*ip4), 0);
		if (sum < 0)
			return TC_ACT_SHOT;
		ip4->check = csum_fold((__u32)sum);
		struct tcp_pseudo_v4 pseudo = {.saddr = ip4->saddr,
					       .daddr = ip4->daddr,
					       .proto = IPPROTO_TCP,
					       .len = bpf_htons(l4_len)};

		sum = bpf_csum_diff(NULL, 0, (__be32 *)&pseudo, sizeof(pseudo), 0);
	} else {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);

		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_SHOT;
		struct in6_addr addr = ip6->saddr;

		ip6->saddr = ip6->daddr;
		ip6->daddr = addr;
		ip6->payload_len = bpf_htons(l4_len);
		ip6->hop_limit = 64;
		struct icmp6_pseudo_tail tail = {.payload_len = bpf_htonl(l4_len),
						 .next_header = bpf_htonl(IPPROTO_TCP)};

		sum = bpf_csum_diff(NULL, 0, (__be32 *)&ip6->saddr, 32, 0);
		sum = bpf_csum_diff(NULL, 0, (__be32 *)&tail, sizeof(tail), sum);
	}
	sum = bpf_csum_diff(NULL, 0, (__be32 *)tcp, sizeof(*tcp), sum);
	if (sum < 0)
		return TC_ACT_SHOT;
	tcp->check = csum_fold((__u32)sum);
	return bpf_redirect(skb->ifindex, 0);
}

#define ICMP_DEST_UNREACH 3
#define ICMP_PORT_UNREACH 3
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PORT_UNREACH 4
#define QUOTED_L4_BYTES 8

struct icmp_unreachable {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__u32 unused;
};

/* ICMP port unreachable for a UDP datagram, quoting its IP header and first 8 bytes, sent back out
 * of the device it came in on. Room for the new IP and ICMP headers is made in front of the original
 * IP header, and the datagram is cut after the quoted bytes. */
static __always_inline int reject_udp_v4(struct __sk_buff *skb)
{
	const __u32 added = sizeof(struct iphdr) + sizeof(struct icmp_unreachable);
	const __u32 total = sizeof(struct ethhdr) + added + sizeof(struct iphdr) + QUOTED_L4_BYTES;

	if (bpf_skb_adjust_room(skb, added, BPF_ADJ_ROOM_MAC, 0) || bpf_skb_change_tail(skb, total, 0))
		return TC_ACT_SHOT;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip4 = data + sizeof(*eth);
	struct icmp_unreachable *icmp = (void *)(ip4 + 1);
	struct iphdr *quoted = (void *)(icmp + 1);

	if (data + total > data_end)
		return TC_ACT_SHOT;
	swap_macs(eth);

	ip4->version = 4;
	ip4->ihl = 5;
	ip4->tos = 0;
	ip4->tot_len = bpf_htons(total - sizeof(*eth));
	ip4->id = 0;
	ip4->frag_off = 0;
	ip4->ttl = 64;
	ip4->protocol = IPPROTO_ICMP;
	ip4->check = 0;
	ip4->saddr = quoted->daddr;
	ip4->daddr = quoted->saddr;
	__s64 sum = bpf_csum_diff(NULL, 0, (__be32 *)ip4, sizeof(*ip4), 0);

	if (sum < 0)
		return TC_ACT_SHOT;
	ip4->check = csum_fold((__u32)sum);

	icmp->type = ICMP_DEST_UNREACH;
	icmp->code = ICMP_PORT_UNREACH;
	icmp->checksum = 0;
	icmp->unused = 0;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)icmp, sizeof(*icmp) + sizeof(struct iphdr) + QUOTED_L4_BYTES,
			    0);
	if (sum < 0)
		return TC_ACT_SHOT;
	icmp->checksum = csum_fold((__u32)sum);
	return bpf_redirect(skb->ifindex, 0);
}

static __always_inline int reject_udp_v6(struct __sk_buff *skb)
{
	const __u32 added = sizeof(struct ipv6hdr) + sizeof(struct icmp_unreachable);
	const __u32 quoted_len = sizeof(struct icmp_unreachable) + sizeof(struct ipv6hdr) + QUOTED_L4_BYTES;
	const __u32 total = sizeof(struct ethhdr) + added + sizeof(struct ipv6hdr) + QUOTED_L4_BYTES;

	if (bpf_skb_adjust_room(skb, added, BPF_ADJ_ROOM_MAC, 0) || bpf_skb_change_tail(skb, total, 0))
		return TC_ACT_SHOT;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + sizeof(*eth);
	struct icmp_unreachable *icmp = (void *)(ip6 + 1);
	struct ipv6hdr *quoted = (void *)(icmp + 1);

	if (data + total > data_end)
		return TC_ACT_SHOT;
	swap_macs(eth);

	__builtin_memset(ip6, 0, sizeof(*ip6));
	ip6->version = 6;
	ip6->payload_len = bpf_htons(quoted_len);
	ip6->nexthdr = IPPROTO_ICMPV6;
	ip6->hop_limit = 64;
	ip6->saddr = quoted->daddr;
	ip6->daddr = quoted->saddr;

	icmp->type = ICMPV6_DEST_UNREACH;
	icmp->code = ICMPV6_PORT_UNREACH;
	icmp->checksum = 0;
	icmp->unused = 0;
	struct icmp6_pseudo_tail tail = {.payload_len = bpf_htonl(quoted_len),
					 .next_header = bpf_htonl(IPPROTO_ICMPV6)};
	__s64 sum = bpf_csum_diff(NULL, 0, (__be32 *)&ip6->saddr, 32, 0);

	sum = bpf_csum_diff(NULL, 0, (__be32 *)&tail, sizeof(tail), sum);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)icmp, quoted_len, sum);
	if (sum < 0)
		return TC_ACT_SHOT;
	icmp->checksum = csum_fold((__u32)sum);
	return bpf_redirect(skb->ifindex, 0);
}

static __always_inline int reject_tcp(struct __sk_buff *skb, const struct packet *pkt)
{
	if (pkt->proto != IPPROTO_TCP || (pkt->tcp_flags & TCP_FLAG_RST))
		return TC_ACT_SHOT;
	if (pkt->family == WEIR_FAMILY_IPV4 && pkt->l4_off == sizeof(struct ethhdr) + sizeof(struct iphdr))
		return reject_tcp_at(skb, pkt, sizeof(struct ethhdr) + sizeof(struct iphdr));
	if (pkt->family == WEIR_FAMILY_IPV6)
		return reject_tcp_at(skb, pkt, sizeof(struct ethhdr) + sizeof(struct ipv6hdr));
	return TC_ACT_SHOT; /* IPv4 options: rare enough to drop */
}

/* The answer kube-proxy's reject rule gives: a reset for TCP, port unreachable for UDP. */
static __always_inline int reject_flow(struct __sk_buff *skb, const struct packet *pkt)
{
	if (pkt->proto == IPPROTO_UDP) {
		if (pkt->family == WEIR_FAMILY_IPV4 &&
		    pkt->l4_off == sizeof(struct ethhdr) + sizeof(struct iphdr))
			return reject_udp_v4(skb);
		if (pkt->family == WEIR_FAMILY_IPV6)
			return reject_udp_v6(skb);
		return TC_ACT_SHOT;
	}
	return reject_tcp(skb, pkt);
}

#endif
