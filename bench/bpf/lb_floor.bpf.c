// SPDX-License-Identifier: GPL-2.0
/* The least a new Service flow can cost on this machine, whatever the datapath around it: programs
 * that do only the map operations every design of a tracked, translated flow needs, on the datapath's
 * own maps (the benchmark hands their fds over before load), so at the same sizes and fills.
 *
 *   floor_lookup    a Service lookup at a random one of the `services` Services
 *   floor_pick      the same, then its backend as the datapath finds it: the slot, then the backend
 *                   by id (three dependent lookups)
 *   floor_insert    a conntrack lookup that misses, then one conntrack insert of a new tuple
 *   floor_new_flow  a Service lookup, a conntrack lookup that misses and two conntrack inserts (one
 *                   per direction: the reply of a translated flow arrives with another tuple, which
 *                   must find the frontend): what a translated, tracked flow cannot do without
 *
 * Run by bench/lb_packet_bench.cc with BPF_PROG_TEST_RUN; the packet is not looked at. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi/conntrack.h"
#include "bpf/abi/service.h"

char LICENSE[] SEC("license") = "GPL";

/* Declared as the datapath declares them; replaced by the datapath's maps before load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEIR_SERVICES_DEFAULT_SIZE);
	__type(key, struct weir_service_key);
	__type(value, struct weir_service_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} services_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEIR_BACKENDS_DEFAULT_SIZE);
	__type(key, struct weir_slot_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} slots_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEIR_BACKENDS_DEFAULT_SIZE);
	__type(key, __u32);
	__type(value, struct weir_backend);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} backends_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WEIR_CONNTRACK_DEFAULT_SIZE);
	__type(key, struct weir_ct_key);
	__type(value, struct weir_ct_value);
} conntrack_map SEC(".maps");

/* A new tuple per run of the program, on whichever CPU it runs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} flows SEC(".maps");

/* The benchmark's Services: j in [0, services) has frontend 10.96.0.1+j, TCP port 80 (even j) or
 * 8080 (odd j). */
const volatile __u32 services = 1;

static __always_inline struct weir_service_value *lookup_random_service(void)
{
	__u32 j = bpf_get_prandom_u32() % services;
	struct weir_service_key key = {
		.port = bpf_htons(j % 2 ? 8080 : 80), .proto = WEIR_PROTO_TCP, .family = WEIR_FAMILY_IPV4};

	key.addr.v4 = bpf_htonl(0x0a600001 + j);
	return bpf_map_lookup_elem(&services_map, &key);
}

static __always_inline int pick_random_backend(void)
{
	struct weir_service_value *svc = lookup_random_service();

	if (!svc)
		return -1;
	struct weir_slot_key slot = {.service_id = svc->service_id, .slot = 1};
	__u32 *id = bpf_map_lookup_elem(&slots_map, &slot);

	if (!id)
		return -1;
	__u32 backend_id = *id;

	return bpf_map_lookup_elem(&backends_map, &backend_id) ? 0 : -1;
}

/* `directions`: 1 inserts the tuple, 2 its reply's too. */
static __always_inline int track_new_tuple(int directions)
{
	__u32 zero = 0;
	__u64 *counter = bpf_map_lookup_elem(&flows, &zero);

	if (!counter)
		return -1;
	__u64 n = (*counter)++;
	struct weir_ct_key key = {.sport = bpf_htons(1024 + n % 50000),
				  .dport = bpf_htons(80),
				  .proto = WEIR_PROTO_TCP,
				  .family = WEIR_FAMILY_IPV4};

	key.saddr.v4 = bpf_htonl(0x0b000000 + n / 50000);
	key.daddr.v4 = bpf_htonl(0x0a600001);
	if (bpf_map_lookup_elem(&conntrack_map, &key))
		return -1;
	struct weir_ct_value value = {.nat_port = bpf_htons(8080), .kind = WEIR_CT_FORWARD, .backend_id = 1};

	value.nat_addr.v4 = bpf_htonl(0x0a600002);
	if (bpf_map_update_elem(&conntrack_map, &key, &value, BPF_ANY))
		return -1;
	if (directions == 1)
		return 0;
	struct weir_ct_key reply = {.sport = bpf_htons(8080),
				    .dport = key.sport,
				    .proto = WEIR_PROTO_TCP,
				    .family = WEIR_FAMILY_IPV4};

	reply.saddr.v4 = bpf_htonl(0x0a600002);
	reply.daddr = key.saddr;
	value.kind = WEIR_CT_REPLY;
	value.nat_addr.v4 = bpf_htonl(0x0a600001);
	value.nat_port = bpf_htons(80);
	return bpf_map_update_elem(&conntrack_map, &reply, &value, BPF_ANY) ? -1 : 0;
}

SEC("tc")
int floor_lookup(struct __sk_buff *skb)
{
	return lookup_random_service() ? TC_ACT_OK : TC_ACT_SHOT;
}

SEC("tc")
int floor_pick(struct __sk_buff *skb)
{
	return pick_random_backend() ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int floor_insert(struct __sk_buff *skb)
{
	return track_new_tuple(1) ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int floor_new_flow(struct __sk_buff *skb)
{
	if (!lookup_random_service())
		return TC_ACT_SHOT;
	return track_new_tuple(2) ? TC_ACT_SHOT : TC_ACT_OK;
}
