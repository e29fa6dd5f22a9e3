/* The packet the shared datapath code works on: the tc programs' socket buffer, or, in a program
 * compiled with WEIR_XDP defined (from_uplink_xdp.bpf.c), XDP's buffer. The headers whose functions
 * both kinds of program call (packet.h, nat.h, dsr.h, service_nat.h, conntrack.h, lb.h, events.h,
 * fib.h's lookup, maps.h's count) take a `struct ctx_buff *` (still named `skb` there) and reach the
 * packet only through its data pointers and the accessors below; the rest of bpf/lib is tc's alone.
 * Both struct types have `data`, `data_end` and `ingress_ifindex`. */
#ifndef WEIR_BPF_CTX_H
#define WEIR_BPF_CTX_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <stdbool.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/csum.h"

#ifdef WEIR_XDP
#define ctx_buff xdp_md
#else
#define ctx_buff __sk_buff
#endif

static __always_inline __u32 ctx_len(struct ctx_buff *ctx)
{
#ifdef WEIR_XDP
	/* The fragments too: the program takes multi-buffer packets (from_uplink_xdp.bpf.c). */
	return (__u32)bpf_xdp_get_buff_len(ctx);
#else
	return ctx->len;
#endif
}

/* The device the packet is on (tc: where the program runs; XDP: where it arrived). */
static __always_inline __u32 ctx_ifindex(struct ctx_buff *ctx)
{
#ifdef WEIR_XDP
	return ctx->ingress_ifindex;
#else
	return ctx->ifindex;
#endif
}

/* The packet's bounds, loaded in asm: with many plain ctx->data_end reads in one program, clang
 * keeps &ctx->data_end in a register and loads through it, which the verifier refuses for the
 * context (see header_at in bpf/lib/nat.h). */
static __always_inline void ctx_bounds(struct ctx_buff *ctx, void **data, void **data_end)
{
	asm volatile("%0 = *(u32 *)(%1 + %2)" : "=r"(*data) : "r"(ctx), "i"(offsetof(struct ctx_buff, data)));
	asm volatile("%0 = *(u32 *)(%1 + %2)"
		     : "=r"(*data_end)
		     : "r"(ctx), "i"(offsetof(struct ctx_buff, data_end)));
}

#ifdef WEIR_XDP

/* The bytes moved by ctx_adjust_room: the Ethernet header (MAC mode), or the Ethernet and a plain
 * IPv4 header (NET mode: only the IPv4 option of DSR is added or taken there). */
#define CTX_MOVED_MAC sizeof(struct ethhdr)
#define CTX_MOVED_NET (sizeof(struct ethhdr) + sizeof(struct iphdr))
#define CTX_ROOM_MAX 40 /* the largest header weir adds or takes off: IPv6-in-IPv6's */

static __always_inline int ctx_move_head(struct xdp_md *ctx, __u32 from, __u32 to, bool net)
{
	__u8 saved[CTX_MOVED_NET];
	void *data, *data_end;

	ctx_bounds(ctx, &data, &data_end);

	if (from > CTX_ROOM_MAX || to > CTX_ROOM_MAX)
		return -1;
	if (net) {
		if (data + from + CTX_MOVED_NET > data_end || data + to + CTX_MOVED_NET > data_end)
			return -1;
		__builtin_memcpy(saved, data + from, CTX_MOVED_NET);
		__builtin_memcpy(data + to, saved, CTX_MOVED_NET);
		return 0;
	}
	if (data + from + CTX_MOVED_MAC > data_end || data + to + CTX_MOVED_MAC > data_end)
		return -1;
	__builtin_memcpy(saved, data + from, CTX_MOVED_MAC);
	__builtin_memcpy(data + to, saved, CTX_MOVED_MAC);
	return 0;
}

/* bpf_skb_adjust_room's contract for what weir uses of it: `delta` bytes of room made (or taken
 * away, negative) right after the Ethernet header (BPF_ADJ_ROOM_MAC) or after a plain IPv4 header
 * (BPF_ADJ_ROOM_NET). The encapsulation flags only tell the skb's offloads about the new header:
 * an XDP buffer has none. */
static __always_inline int ctx_adjust_room(struct xdp_md *ctx, __s32 delta, __u32 mode, __u64 flags)
{
	bool net = mode == BPF_ADJ_ROOM_NET;

	if (delta > 0) {
		if (bpf_xdp_adjust_head(ctx, -delta))
			return -1;
		return ctx_move_head(ctx, delta, 0, net);
	}
	if (ctx_move_head(ctx, 0, -delta, net))
		return -1;
	return bpf_xdp_adjust_head(ctx, -delta) ? -1 : 0;
}

/* bpf_l4_csum_replace's contract, computed in place: an XDP buffer's L4 checksum is the full one
 * a NIC received (no CHECKSUM_PARTIAL state to keep), so the pseudo-header flag changes nothing.
 * The size (low bits of `flags`) is 4 or 2 for a field from `from` to `to`, 0 for `to` being a
 * checksum difference. */
static __always_inline int ctx_l4_csum_replace(struct xdp_md *ctx, __u32 off, __u32 from, __u32 to,
					       __u64 flags)
{
	void *data, *data_end;
	bool mangled_0 = flags & BPF_F_MARK_MANGLED_0;

	ctx_bounds(ctx, &data, &data_end);
	__sum16 *check = data + off;

	if (off > 128 || (void *)(check + 1) > data_end)
		return -1;
	if (mangled_0 && *check == 0)
		return 0; /* a UDP datagram without a checksum keeps none */
	switch (flags & BPF_F_HDR_FIELD_MASK) {
	case 4:
		csum_replace4(check, from, to);
		break;
	case 2:
		csum_replace2(check, (__be16)from, (__be16)to);
		break;
	case 0:
		*check = csum_fold32(csum_add32(~(__u32)*check, to));
		break;
	default:
		return -1;
	}
	if (mangled_0 && *check == 0)
		*check = 0xffff;
	return 0;
}

#else

static __always_inline int ctx_adjust_room(struct __sk_buff *skb, __s32 delta, __u32 mode, __u64 flags)
{
	return bpf_skb_adjust_room(skb, delta, mode, flags);
}

static __always_inline int ctx_l4_csum_replace(struct __sk_buff *skb, __u32 off, __u32 from, __u32 to,
					       __u64 flags)
{
	return bpf_l4_csum_replace(skb, off, from, to, flags);
}

#endif

#endif
