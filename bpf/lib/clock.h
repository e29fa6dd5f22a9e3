/* A coarse clock for per-packet bookkeeping that costs no helper call on most packets. The coarse
 * monotonic clock (CLOCK_MONOTONIC as of the last tick) only moves at a tick, so each CPU reads it
 * once per tick and serves it from a cache while jiffies, which the verifier inlines as one load,
 * has not moved. A value may lag CLOCK_MONOTONIC by up to about two ticks. */
#ifndef WEIR_BPF_CLOCK_H
#define WEIR_BPF_CLOCK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct coarse_clock {
	__u64 jiffies; /* bpf_jiffies64() when `ns` was read */
	__u64 ns; /* bpf_ktime_get_coarse_ns() */
};

/* Not pinned: a cache, nothing to keep across loads. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct coarse_clock);
} weir_coarse_clock SEC(".maps");

static __always_inline __u64 coarse_now_ns(void)
{
	__u32 zero = 0;
	struct coarse_clock *clock = bpf_map_lookup_elem(&weir_coarse_clock, &zero);
	__u64 jiffies = bpf_jiffies64();

	if (!clock)
		return bpf_ktime_get_coarse_ns();
	if (clock->jiffies != jiffies || !clock->ns) {
		clock->ns = bpf_ktime_get_coarse_ns();
		clock->jiffies = jiffies;
	}
	return clock->ns;
}

#endif
