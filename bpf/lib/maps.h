/* Maps shared by weir's programs; pinned by name under the agent's bpf root so that CNI invocations
 * and agent restarts see the same state. */
#ifndef WEIR_BPF_MAPS_H
#define WEIR_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi/endpoint.h"
#include "bpf/abi/metrics.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct weir_endpoint_key);
	__type(value, struct weir_endpoint_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WEIR_METRIC_MAX);
	__type(key, __u32);
	__type(value, struct weir_metric_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weir_metrics SEC(".maps");

static __always_inline void count(__u32 metric, struct __sk_buff *skb)
{
	struct weir_metric_value *v = bpf_map_lookup_elem(&weir_metrics, &metric);

	if (v) {
		v->packets++;
		v->bytes += skb->len;
	}
}

#endif
