// SPDX-License-Identifier: GPL-2.0
/* Attached at tc egress of the node's uplink device(s). One job: the replies of the node's own
 * processes to flows from_uplink translated to one of the node's addresses (a hostNetwork endpoint
 * of a NodePort, LoadBalancer IP or externalIP; with DSR, the unwrapped flow of another node's
 * frontend). Pods' replies are translated back as they leave the pod (from_pod); the host's answers
 * pass no other weir program, and without this they would leave with the backend's port as their
 * source, which the client does not know. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/maps.h"
#include "bpf/lib/packet.h"
#include "bpf/lib/service_nat.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tc")
int to_uplink(struct __sk_buff *skb)
{
	struct packet pkt = {};

	if (parse_packet(skb, &pkt) != PARSE_OK)
		return TC_ACT_OK;
	switch (translate_host_reply(skb, &pkt)) {
	case TRANSLATION_ERROR:
		count(WEIR_METRIC_TRANSLATION_ERROR, skb);
		return TC_ACT_SHOT;
	case TRANSLATION_HELD:
		count(WEIR_METRIC_HELD_AT_UPGRADE, skb);
		return TC_ACT_SHOT;
	default:
		return TC_ACT_OK;
	}
}
