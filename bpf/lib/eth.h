/* Ethernet parsing and the gateway MAC every pod sees as its next hop. */
#ifndef WEIR_BPF_ETH_H
#define WEIR_BPF_ETH_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi/constants.h"

/* Set by the agent through the skeleton before load. Host ends of pod veths carry this MAC too. */
const volatile __u8 gateway_mac[ETH_ALEN] = WEIR_GATEWAY_MAC;

static __always_inline void copy_mac(__u8 *dst, const volatile __u8 *src)
{
	for (int i = 0; i < ETH_ALEN; i++)
		dst[i] = src[i];
}

static __always_inline struct ethhdr *parse_eth(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return NULL;
	return eth;
}

#endif
