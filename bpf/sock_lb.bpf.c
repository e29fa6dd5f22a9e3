// SPDX-License-Identifier: GPL-2.0
/* Socket-level load balancing: a connect() or sendmsg() to a Service is rewritten to a backend
 * once, at the socket, so the flow needs no per-packet translation; recvmsg() and getpeername()
 * show the Service address again. Attached to a cgroup (v2), IPv4 and IPv6. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <stdbool.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/events.h"
#include "bpf/lib/lb.h"
#include "bpf/lib/maps.h"

char LICENSE[] SEC("license") = "GPL";

#define ECONNREFUSED 111
#define SYS_PROCEED 1
#define SYS_REJECT 0

/* With host_only, sockets of other network namespaces (pods) are left to per-packet translation. */
const volatile bool host_only = false;
const volatile __u64 host_netns_cookie = 0;
/* A record on the events ring for every translated connect() and datagram, not only refusals. Off
 * by default: that is one record per connection, and the ring is shared with the drop records. */
const volatile bool translation_events = false;

struct sock_addr {
	union weir_addr addr;
	__be16 port;
	__u8 family;
};

static __always_inline bool applies(struct bpf_sock_addr *ctx)
{
	return !host_only || bpf_get_netns_cookie(ctx) == host_netns_cookie;
}

static __always_inline void read_dest(struct bpf_sock_addr *ctx, struct sock_addr *out, __u8 family)
{
	out->family = family;
	out->port = (__be16)ctx->user_port;
	if (family == WEIR_FAMILY_IPV4) {
		out->addr.v4 = ctx->user_ip4;
	} else {
		out->addr.v6[0] = ctx->user_ip6[0];
		out->addr.v6[1] = ctx->user_ip6[1];
		out->addr.v6[2] = ctx->user_ip6[2];
		out->addr.v6[3] = ctx->user_ip6[3];
	}
}

static __always_inline void write_dest(struct bpf_sock_addr *ctx, const union weir_addr *addr, __be16 port,
				       __u8 family)
{
	ctx->user_port = (__u32)port;
	if (family == WEIR_FAMILY_IPV4) {
		ctx->user_ip4 = addr->v4;
	} else {
		ctx->user_ip6[0] = addr->v6[0];
		ctx->user_ip6[1] = addr->v6[1];
		ctx->user_ip6[2] = addr->v6[2];
		ctx->user_ip6[3] = addr->v6[3];
	}
}

enum sock_hook {
	HOOK_CONNECT,
	HOOK_SENDMSG,
};

/* The counter (and event verdict) of a translation, by hook. */
static __always_inline __u32 translated_metric(enum sock_hook hook, __u8 family)
{
	if (hook == HOOK_SENDMSG)
		return WEIR_METRIC_SOCK_SENDMSG_TRANSLATED;
	return family == WEIR_FAMILY_IPV4 ? WEIR_METRIC_SOCK_CONNECT4_TRANSLATED
					  : WEIR_METRIC_SOCK_CONNECT6_TRANSLATED;
}

static __always_inline __u32 refused_metric(enum sock_hook hook)
{
	return hook == HOOK_SENDMSG ? WEIR_METRIC_SOCK_SENDMSG_REFUSED : WEIR_METRIC_SOCK_CONNECT_REFUSED;
}

/* connect() and sendmsg(): Service address to backend address. */
static __always_inline int translate_to_backend(struct bpf_sock_addr *ctx, __u8 family, enum sock_hook hook)
{
	if (!applies(ctx))
		return SYS_PROCEED;
	struct sock_addr dest = {};

	read_dest(ctx, &dest, family);
	struct weir_service_key key = {
		.addr = dest.addr, .port = dest.port, .proto = (__u8)ctx->protocol, .family = family};
	struct weir_service_value *svc = lookup_service(&key, true);

	if (!svc) {
		/* Datagrams to what is not a Service are most of the host's: left uncounted. */
		if (hook == HOOK_CONNECT)
			count_call(WEIR_METRIC_SOCK_CONNECT_PASSTHROUGH);
		return SYS_PROCEED;
	}

	/* The client's address is not bound yet: its network namespace stands for it. */
	struct weir_affinity_key affinity = {.family = family};
	__u64 netns = bpf_get_netns_cookie(ctx);
	bool affinity_hit = false;

	__builtin_memcpy(affinity.client.bytes, &netns, sizeof(netns));
	struct weir_backend backend = {};
	__u32 backend_id = pick_backend_into(svc, &affinity, 0, &affinity_hit, false, &backend);

	if (!backend_id || backend.family != family) {
		/* No usable endpoint: refuse at once, as kube-proxy's reject rule does. */
		count_call(refused_metric(hook));
		emit_socket_verdict(ctx, &dest.addr, dest.port, family, refused_metric(hook), svc->service_id,
				    NULL, 0);
		bpf_set_retval(-ECONNREFUSED);
		return SYS_REJECT;
	}

	struct weir_sock_revnat_key rkey = {.cookie = bpf_get_socket_cookie(ctx),
					    .addr = backend.addr,
					    .port = backend.port,
					    .family = family};
	struct weir_sock_revnat_value rvalue = {
		.addr = dest.addr, .port = dest.port, .service_id = svc->service_id};

	bpf_map_update_elem(&weir_sock_rnat, &rkey, &rvalue, BPF_ANY);
	write_dest(ctx, &backend.addr, backend.port, family);
	count_call(translated_metric(hook, family));
	if (affinity_hit)
		count_call(WEIR_METRIC_SOCK_AFFINITY_HIT);
	if (translation_events)
		emit_socket_verdict(ctx, &dest.addr, dest.port, family, translated_metric(hook, family),
				    svc->service_id, &backend, backend_id);
	return SYS_PROCEED;
}

/* recvmsg() and getpeername(): backend address back to the Service address. */
static __always_inline int translate_to_service(struct bpf_sock_addr *ctx, __u8 family, bool count_it)
{
	struct sock_addr peer = {};

	read_dest(ctx, &peer, family);
	struct weir_sock_revnat_key rkey = {
		.cookie = bpf_get_socket_cookie(ctx), .addr = peer.addr, .port = peer.port, .family = family};
	struct weir_sock_revnat_value *service = bpf_map_lookup_elem(&weir_sock_rnat, &rkey);

	if (!service)
		return SYS_PROCEED;
	write_dest(ctx, &service->addr, service->port, family);
	/* getpeername() is the application asking, not traffic: not counted. */
	if (count_it)
		count_call(WEIR_METRIC_SOCK_RECVMSG_TRANSLATED);
	return SYS_PROCEED;
}

SEC("cgroup/connect4")
int sock_connect4(struct bpf_sock_addr *ctx)
{
	return translate_to_backend(ctx, WEIR_FAMILY_IPV4, HOOK_CONNECT);
}

SEC("cgroup/connect6")
int sock_connect6(struct bpf_sock_addr *ctx)
{
	return translate_to_backend(ctx, WEIR_FAMILY_IPV6, HOOK_CONNECT);
}

SEC("cgroup/sendmsg4")
int sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	return translate_to_backend(ctx, WEIR_FAMILY_IPV4, HOOK_SENDMSG);
}

SEC("cgroup/sendmsg6")
int sock_sendmsg6(struct bpf_sock_addr *ctx)
{
	return translate_to_backend(ctx, WEIR_FAMILY_IPV6, HOOK_SENDMSG);
}

SEC("cgroup/recvmsg4")
int sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	return translate_to_service(ctx, WEIR_FAMILY_IPV4, true);
}

SEC("cgroup/recvmsg6")
int sock_recvmsg6(struct bpf_sock_addr *ctx)
{
	return translate_to_service(ctx, WEIR_FAMILY_IPV6, true);
}

SEC("cgroup/getpeername4")
int sock_getpeername4(struct bpf_sock_addr *ctx)
{
	return translate_to_service(ctx, WEIR_FAMILY_IPV4, false);
}

SEC("cgroup/getpeername6")
int sock_getpeername6(struct bpf_sock_addr *ctx)
{
	return translate_to_service(ctx, WEIR_FAMILY_IPV6, false);
}
