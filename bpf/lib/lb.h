/* Service lookup and backend selection, shared by socket-level and per-packet load balancing. */
#ifndef WEIR_BPF_LB_H
#define WEIR_BPF_LB_H

#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi/service.h"
#include "bpf/lib/maps.h"

/* Entries per Maglev table (prime); set by the agent to match the map's value size. */
const volatile __u32 maglev_table_size = WEIR_MAGLEV_DEFAULT_SIZE;

#define NSEC_PER_SEC 1000000000ull

/* The external entry serves everyone unless the Service's policies differ by scope, in which case
 * clients inside the cluster use the internal entry. An internal entry without an external one is
 * found too, though translation writes none (internalTrafficPolicy Local on a ClusterIP is its one
 * external entry, flagged LOCAL_ONLY). */
static __always_inline struct weir_service_value *lookup_service(struct weir_service_key *key,
								 bool from_inside)
{
	struct weir_service_value *svc;

	key->scope = WEIR_SCOPE_EXTERNAL;
	svc = bpf_map_lookup_elem(&weir_services, key);
	if (!from_inside)
		return svc;
	if (svc && !(svc->flags & WEIR_SVC_TWO_SCOPES))
		return svc;
	key->scope = WEIR_SCOPE_INTERNAL;
	struct weir_service_value *internal = bpf_map_lookup_elem(&weir_services, key);

	return internal ? internal : svc;
}

static __always_inline struct weir_backend *lookup_backend(__u32 backend_id)
{
	return bpf_map_lookup_elem(&weir_backends, &backend_id);
}

static __always_inline __u32 backend_by_slot(const struct weir_service_value *svc, __u32 slot)
{
	struct weir_slot_key key = {.service_id = svc->service_id, .slot = slot};
	__u32 *id = bpf_map_lookup_elem(&weir_slots, &key);

	return id ? *id : 0;
}

/* `flow_hash` identifies the flow (Maglev); 0 asks for a random pick. Returns a backend id or 0. */
static __always_inline __u32 select_backend(const struct weir_service_value *svc, __u32 flow_hash)
{
	if (svc->backend_count == 0)
		return 0;
	if ((svc->flags & WEIR_SVC_MAGLEV) && flow_hash) {
		__u32 key = svc->service_id;
		__u32 *table = bpf_map_lookup_elem(&weir_maglev, &key);
		__u32 index = flow_hash % maglev_table_size;

		/* Keeps clang from checking one copy of the index and indexing with another. */
		asm volatile("" : "+r"(index));
		if (table && index < maglev_table_size)
			return table[index];
	}
	return backend_by_slot(svc, bpf_get_prandom_u32() % svc->backend_count + 1);
}

/* sessionAffinity ClientIP: the last backend this client used, while the timeout has not run out. */
static __always_inline __u32 affinity_backend(const struct weir_service_value *svc,
					      struct weir_affinity_key *key, __u64 now)
{
	struct weir_affinity_value *seen = bpf_map_lookup_elem(&weir_affinity, key);

	if (!seen || now - seen->last_used_ns > (__u64)svc->affinity_timeout * NSEC_PER_SEC)
		return 0;
	if (!lookup_backend(seen->backend_id))
		return 0;
	return seen->backend_id;
}

static __always_inline void remember_affinity(struct weir_affinity_key *key, __u32 backend_id, __u64 now)
{
	struct weir_affinity_value value = {.last_used_ns = now, .backend_id = backend_id};

	bpf_map_update_elem(&weir_affinity, key, &value, BPF_ANY);
}

/* Backend selection with affinity. Returns the backend id, 0 when the Service has none.
 * `affinity_hit` (may be NULL) is set when the client's remembered backend was kept. */
static __always_inline __u32 pick_backend(const struct weir_service_value *svc,
					  struct weir_affinity_key *affinity, __u32 flow_hash,
					  bool *affinity_hit)
{
	if (!(svc->flags & WEIR_SVC_AFFINITY))
		return select_backend(svc, flow_hash);
	__u64 now = bpf_ktime_get_ns();

	affinity->service_id = svc->service_id;
	__u32 id = affinity_backend(svc, affinity, now);

	if (id && affinity_hit)
		*affinity_hit = true;
	if (!id)
		id = select_backend(svc, flow_hash);
	if (id)
		remember_affinity(affinity, id, now);
	return id;
}

/* pick_backend with the backend's address, port and family in `out` (and its flags when
 * `with_flags`). A random pick of a slot the frontend entry carries (bpf/abi/service.h) takes no
 * lookup beyond the frontend's own; with flags, one (the backend by id). Everything else goes
 * through pick_backend and the backends map. Returns the backend id, 0 when there is none. */
static __always_inline __u32 pick_backend_into(const struct weir_service_value *svc,
					       struct weir_affinity_key *affinity, __u32 flow_hash,
					       bool *affinity_hit, bool with_flags, struct weir_backend *out)
{
	__u32 id = 0;

	if (!(svc->flags & (WEIR_SVC_AFFINITY | WEIR_SVC_MAGLEV)) && svc->backend_count) {
		/* 64 bits, and opaque to clang: the register that is checked is the one that indexes
		 * (a 32-bit index gets zero-extended into a copy the verifier knows nothing about). */
		__u64 slot = svc->backend_count > 1 ? bpf_get_prandom_u32() % svc->backend_count : 0;

		asm volatile("" : "+r"(slot));
		if (slot < svc->inline_count && slot < WEIR_SERVICE_INLINE_BACKENDS) {
			const struct weir_inline_backend *carried = &svc->backends[slot];

			id = carried->id;
			if (!with_flags) {
				out->addr = carried->addr;
				out->port = carried->port;
				out->family = carried->family;
				return id;
			}
		} else {
			id = backend_by_slot(svc, slot + 1);
		}
	} else {
		id = pick_backend(svc, affinity, flow_hash, affinity_hit);
	}
	struct weir_backend *found = id ? lookup_backend(id) : NULL;

	if (!found)
		return 0;
	*out = *found;
	return id;
}

#endif
