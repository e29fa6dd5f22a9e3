/* Service load-balancing maps, Cilium-style: a frontend entry per (address, port, protocol, scope),
 * backend slots per service, a backend table by id, Maglev lookup tables, session affinity, and the
 * reverse translation for socket-level load balancing. Shared by BPF and C++. */
#ifndef WEIR_ABI_SERVICE_H
#define WEIR_ABI_SERVICE_H

#include <linux/types.h>

#include "bpf/abi/constants.h"
#include "bpf/abi/endpoint.h"

enum weir_l4_proto {
	WEIR_PROTO_TCP = 6,
	WEIR_PROTO_UDP = 17,
	WEIR_PROTO_SCTP = 132,
};

/* Which clients a frontend entry serves. A Service whose traffic policies differ between inside and
 * outside (externalTrafficPolicy / internalTrafficPolicy Local) gets one entry per scope. */
enum weir_service_scope {
	WEIR_SCOPE_EXTERNAL = 0, /* traffic from outside the cluster */
	WEIR_SCOPE_INTERNAL = 1, /* traffic from pods and nodes of the cluster */
};

struct weir_service_key {
	union weir_addr addr;
	__be16 port;
	__u8 proto; /* enum weir_l4_proto */
	__u8 family; /* enum weir_ip_family */
	__u8 scope; /* enum weir_service_scope */
	__u8 pad[3];
};

enum weir_service_flags {
	WEIR_SVC_CLUSTER_IP = 1 << 0,
	WEIR_SVC_NODE_PORT = 1 << 1,
	WEIR_SVC_EXTERNAL_IP = 1 << 2,
	WEIR_SVC_LOAD_BALANCER = 1 << 3,
	WEIR_SVC_AFFINITY = 1 << 4, /* sessionAffinity: ClientIP */
	WEIR_SVC_LOCAL_ONLY = 1 << 5, /* the traffic policy of this scope is Local */
	WEIR_SVC_TWO_SCOPES = 1 << 6, /* an internal-scope entry exists beside this external one */
	WEIR_SVC_MAGLEV = 1 << 7, /* pick backends through the Maglev table */
	WEIR_SVC_DSR = 1 << 8, /* answer external clients directly from the backend's node */
};

/* A backend as a frontend entry carries it: what a new flow needs of it (its flags are only in the
 * backends map). An id's address, port and family never change while a slot refers to it. */
struct weir_inline_backend {
	union weir_addr addr;
	__be16 port;
	__u8 family;
	__u8 pad;
	__u32 id; /* key in the backends map */
};

/* Slots 1..WEIR_SERVICE_INLINE_BACKENDS travel in the frontend entry as well as in the slots map, so
 * that the first packet of a flow finds its backend with the one lookup of the frontend: the slot
 * and the backend by id are two more lookups at a random place of maps as large as the cluster,
 * each a cache (and TLB) miss once there are many Services. */
#define WEIR_SERVICE_INLINE_BACKENDS 4

struct weir_service_value {
	__u32 service_id; /* key of the backend slots, Maglev table and affinity entries */
	__u16 backend_count; /* slots 1..backend_count are live; 0: reject */
	__u16 flags; /* enum weir_service_flags */
	__u32 affinity_timeout; /* seconds, with WEIR_SVC_AFFINITY */
	/* Slots 1..inline_count are backends[0..inline_count-1] (at most WEIR_SERVICE_INLINE_BACKENDS
	 * and backend_count); later slots are only in the slots map. 0 (an entry of layout 1): none. */
	__u8 inline_count;
	__u8 pad[3];
	struct weir_inline_backend backends[WEIR_SERVICE_INLINE_BACKENDS];
};

struct weir_slot_key {
	__u32 service_id;
	__u32 slot; /* 1-based */
};

enum weir_backend_flags {
	WEIR_BACKEND_LOCAL = 1 << 0, /* runs on this node */
	WEIR_BACKEND_TERMINATING = 1 << 1,
};

struct weir_backend {
	union weir_addr addr;
	__be16 port;
	__u8 proto;
	__u8 family;
	__u16 flags; /* enum weir_backend_flags */
	__u16 pad;
};

struct weir_affinity_key {
	union weir_addr client;
	__u32 service_id;
	__u8 family;
	__u8 pad[3];
};

struct weir_affinity_value {
	__u64 last_used_ns; /* bpf_ktime_get_ns() */
	__u32 backend_id;
	__u32 pad;
};

/* Socket LB rewrote a socket's destination; recvmsg and getpeername map the backend back. */
struct weir_sock_revnat_key {
	__u64 cookie; /* bpf_get_socket_cookie() */
	union weir_addr addr; /* backend */
	__be16 port;
	__u8 family;
	__u8 pad[5];
};

struct weir_sock_revnat_value {
	union weir_addr addr; /* service frontend */
	__be16 port;
	__u8 pad[2];
	__u32 service_id;
};

#endif
