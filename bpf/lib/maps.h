/* Maps shared by weir's programs; pinned by name under the agent's bpf root so that CNI invocations
 * and agent restarts see the same state. */
#ifndef WEIR_BPF_MAPS_H
#define WEIR_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi/constants.h"
#include "bpf/abi/endpoint.h"
#include "bpf/abi/conntrack.h"
#include "bpf/abi/metrics.h"
#include "bpf/abi/service.h"
#include "bpf/lib/ctx.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEIR_ENDPOINTS_DEFAULT_SIZE);
	__type(key, struct weir_endpoint_key);
	__type(value, struct weir_endpoint_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_ENDPOINTS_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WEIR_METRIC_MAX);
	__type(key, __u32);
	__type(value, struct weir_metric_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_METRICS_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEIR_SERVICES_DEFAULT_SIZE);
	__type(key, struct weir_service_key);
	__type(value, struct weir_service_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_SERVICES_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEIR_BACKENDS_DEFAULT_SIZE);
	__type(key, struct weir_slot_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_BACKEND_SLOTS_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEIR_BACKENDS_DEFAULT_SIZE);
	__type(key, __u32);
	__type(value, struct weir_backend);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_BACKENDS_MAP SEC(".maps");

/* Value: __u32 backend ids[maglev_table_size]; the agent sets the value size before load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEIR_MAGLEV_TABLES_MAX);
	__type(key, __u32);
	__uint(value_size, WEIR_MAGLEV_DEFAULT_SIZE * sizeof(__u32));
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_MAGLEV_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WEIR_AFFINITY_SIZE);
	__type(key, struct weir_affinity_key);
	__type(value, struct weir_affinity_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_AFFINITY_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WEIR_SOCK_REVNAT_SIZE);
	__type(key, struct weir_sock_revnat_key);
	__type(value, struct weir_sock_revnat_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_SOCK_REVNAT_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WEIR_CONNTRACK_DEFAULT_SIZE);
	__type(key, struct weir_ct_key);
	__type(value, struct weir_ct_value);
	/* Per-CPU LRU lists: inserts on the packet path without a shared lock. */
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} WEIR_CONNTRACK_MAP SEC(".maps");

static __always_inline void count(__u32 metric, struct ctx_buff *skb)
{
	struct weir_metric_value *v = bpf_map_lookup_elem(&weir_metrics, &metric);

	if (v) {
		v->packets++;
		v->bytes += ctx_len(skb);
	}
}

/* The socket-LB hooks count calls, not packets: nothing has been sent yet. */
static __always_inline void count_call(__u32 metric)
{
	struct weir_metric_value *v = bpf_map_lookup_elem(&weir_metrics, &metric);

	if (v)
		v->packets++;
}

#endif
