/* What the datapath (BPF) and the userspace that loads, sizes and reads it (C++) must agree on,
 * written once: map names, default sizes, the gateway MAC and the Maglev table size rule.
 *
 * Each map's identifier is spelled here only. The BPF definitions name the map with it
 * (`} WEIR_SERVICES_MAP SEC(".maps");`), the loader reaches the map through the skeleton's field of
 * that name, and the pin name (what the CNI plugin and weirctl open) is its string. */
#ifndef WEIR_ABI_CONSTANTS_H
#define WEIR_ABI_CONSTANTS_H

#include <linux/types.h>

#define WEIR_STRINGIFY_(x) #x
#define WEIR_STRINGIFY(x) WEIR_STRINGIFY_(x)

#define WEIR_ENDPOINTS_MAP weir_endpoints
#define WEIR_METRICS_MAP weir_metrics
#define WEIR_SERVICES_MAP weir_services
#define WEIR_BACKEND_SLOTS_MAP weir_slots
#define WEIR_BACKENDS_MAP weir_backends
#define WEIR_MAGLEV_MAP weir_maglev
#define WEIR_AFFINITY_MAP weir_affinity
#define WEIR_SOCK_REVNAT_MAP weir_sock_rnat
#define WEIR_CONNTRACK_MAP weir_ct
#define WEIR_EVENTS_MAP weir_events
#define WEIR_NONMASQ_MAP weir_nonmasq
#define WEIR_UPLINKS_MAP weir_uplinks
#define WEIR_POLICY_PEERS_MAP weir_pol_peers
#define WEIR_POLICY_HOSTS_MAP weir_pol_hosts
#define WEIR_POLICY_RULES_MAP weir_pol_rules
#define WEIR_POLICY_CIDRS_MAP weir_pol_cidrs
#define WEIR_POLICY_CT_MAP weir_pol_ct
#define WEIR_POLICY_COUNTERS_MAP weir_pol_counts

#define WEIR_ENDPOINTS_MAP_NAME WEIR_STRINGIFY(WEIR_ENDPOINTS_MAP)
#define WEIR_METRICS_MAP_NAME WEIR_STRINGIFY(WEIR_METRICS_MAP)
#define WEIR_SERVICES_MAP_NAME WEIR_STRINGIFY(WEIR_SERVICES_MAP)
#define WEIR_BACKEND_SLOTS_MAP_NAME WEIR_STRINGIFY(WEIR_BACKEND_SLOTS_MAP)
#define WEIR_BACKENDS_MAP_NAME WEIR_STRINGIFY(WEIR_BACKENDS_MAP)
#define WEIR_MAGLEV_MAP_NAME WEIR_STRINGIFY(WEIR_MAGLEV_MAP)
#define WEIR_AFFINITY_MAP_NAME WEIR_STRINGIFY(WEIR_AFFINITY_MAP)
#define WEIR_SOCK_REVNAT_MAP_NAME WEIR_STRINGIFY(WEIR_SOCK_REVNAT_MAP)
#define WEIR_CONNTRACK_MAP_NAME WEIR_STRINGIFY(WEIR_CONNTRACK_MAP)
#define WEIR_EVENTS_MAP_NAME WEIR_STRINGIFY(WEIR_EVENTS_MAP)
#define WEIR_NONMASQ_MAP_NAME WEIR_STRINGIFY(WEIR_NONMASQ_MAP)
#define WEIR_UPLINKS_MAP_NAME WEIR_STRINGIFY(WEIR_UPLINKS_MAP)
#define WEIR_POLICY_PEERS_MAP_NAME WEIR_STRINGIFY(WEIR_POLICY_PEERS_MAP)
#define WEIR_POLICY_HOSTS_MAP_NAME WEIR_STRINGIFY(WEIR_POLICY_HOSTS_MAP)
#define WEIR_POLICY_RULES_MAP_NAME WEIR_STRINGIFY(WEIR_POLICY_RULES_MAP)
#define WEIR_POLICY_CIDRS_MAP_NAME WEIR_STRINGIFY(WEIR_POLICY_CIDRS_MAP)
#define WEIR_POLICY_CT_MAP_NAME WEIR_STRINGIFY(WEIR_POLICY_CT_MAP)
#define WEIR_POLICY_COUNTERS_MAP_NAME WEIR_STRINGIFY(WEIR_POLICY_COUNTERS_MAP)

/* The layout version of each pinned map's key and value (the structs of bpf/abi). A change to a
 * map's key or value struct bumps its version here and registers a conversion of an entry from the
 * previous version in lib/map_layouts.cc, so that the next agent migrates the pinned map's entries
 * instead of refusing it. Maps not listed are at version 1. The agent records the version of every
 * map it pinned in WEIR_LAYOUTS_MAP_NAME (key: the map's name, 16 bytes; value: __u32 version); a
 * map with no record was pinned before the record existed, at version 1. */
#define WEIR_LAYOUTS_MAP_NAME "weir_layouts"
#define WEIR_CONNTRACK_LAYOUT 1
#define WEIR_ENDPOINTS_LAYOUT 1
#define WEIR_SERVICES_LAYOUT 2 /* 2: backends carried in the entry (weir_inline_backend) */
#define WEIR_BACKENDS_LAYOUT 1
#define WEIR_BACKEND_SLOTS_LAYOUT 1
#define WEIR_AFFINITY_LAYOUT 1
#define WEIR_SOCK_REVNAT_LAYOUT 1
#define WEIR_NONMASQ_LAYOUT 1

/* Map sizes. The *_DEFAULT_SIZE ones are what the BPF objects declare and the agent's settings
 * default to; the agent sets the real size before load (endpointsMax, conntrackMax, ...). */
#define WEIR_ENDPOINTS_DEFAULT_SIZE 65536
#define WEIR_SERVICES_DEFAULT_SIZE 65536
#define WEIR_BACKENDS_DEFAULT_SIZE 262144 /* and the backend slots */
#define WEIR_CONNTRACK_DEFAULT_SIZE 262144
#define WEIR_NONMASQ_DEFAULT_SIZE 16384
#define WEIR_MAGLEV_TABLES_MAX 4096
#define WEIR_AFFINITY_SIZE 65536
#define WEIR_SOCK_REVNAT_SIZE 65536
#define WEIR_UPLINKS_MAX 64
#define WEIR_EVENTS_RING_BYTES (256 * 1024)
/* NetworkPolicy. The tries allocate per entry (no preallocation), so a generous cap costs nothing
 * until used; the writer says which setting to raise when one fills. The policy conntrack is an
 * LRU (preallocated), as large as the Service conntrack by default. */
#define WEIR_POLICY_PEERS_DEFAULT_SIZE (1024 * 1024)
#define WEIR_POLICY_RULES_DEFAULT_SIZE (1024 * 1024)
#define WEIR_POLICY_CIDRS_DEFAULT_SIZE (256 * 1024)
#define WEIR_POLICY_CT_DEFAULT_SIZE WEIR_CONNTRACK_DEFAULT_SIZE
/* The counters: one entry per endpoint, as many as the endpoints map holds. */

/* Default Maglev table size: prime, and with M >= 100 * backends the load stays within 1%. */
#define WEIR_MAGLEV_DEFAULT_SIZE 1021
#define WEIR_MAGLEV_MAX_SIZE 65521

/* The MAC every pod sees as its next hop; host ends of pod veths carry it too. */
#define WEIR_GATEWAY_MAC                                                                                     \
	{                                                                                                    \
		0xee, 0xee, 0xee, 0xee, 0xee, 0xee                                                           \
	}

#ifdef __cplusplus
#define WEIR_CONSTEXPR constexpr
#else
#define WEIR_CONSTEXPR
#endif

static inline WEIR_CONSTEXPR int weir_is_prime(__u32 n)
{
	if (n < 2)
		return 0;
	for (__u64 d = 2; d * d <= n; ++d) {
		if (n % d == 0)
			return 0;
	}
	return 1;
}

/* A Maglev table size must be prime (so that every skip walks all slots) and fit the map. */
static inline WEIR_CONSTEXPR int weir_maglev_size_valid(__u32 size)
{
	return size <= WEIR_MAGLEV_MAX_SIZE && weir_is_prime(size);
}

#endif
