/* SCTP's checksum after a port rewrite. It is a CRC32c (Castagnoli, reflected polynomial 0x82f63b78)
 * over the whole SCTP packet with the checksum field counted as zero, stored least significant byte
 * first (RFC 9260 appendix A, the kernel's sctp_compute_cksum).
 *
 * A CRC is linear over GF(2): for two packets of the same length, crc(A) ^ crc(B) is the CRC (zero
 * start value, no final inversion) of A ^ B. A port rewrite changes two bytes at the start of the
 * packet, so the new CRC is the old one xored with the CRC of "delta, then len - 4 zero bytes": the
 * delta's 32-bit CRC register multiplied by x^(8 (len - 4)) mod P (as zlib's crc32_combine does). The
 * cost is O(log len), a few hundred instructions whatever the size (no packet is too large, GSO ones
 * included), no byte of the payload is read, and a packet that arrived corrupted stays detectably
 * corrupted (a full recomputation would bless it).
 *
 * The field is left alone when it is zero: that is a packet whose CRC the kernel has not computed yet
 * (CHECKSUM_PARTIAL with csum_not_inet: a local SCTP socket sending through a device with
 * NETIF_F_SCTP_CRC, which veth has, so every pod's packet, and every GSO super-packet). sctp_output
 * leaves the field zero for those, and whoever finally computes it (skb_crc32c_csum_help on a device
 * without the offload, sctp_gso_segment, or the NIC) sums the field as it finds it: it must stay zero.
 * An __sk_buff does not show ip_summed, so zero is the sign. The price: a packet from the wire whose
 * real CRC is 0 (one in 2^32) is left with a stale one and dropped by the receiver, as a corrupted
 * packet would be. */
#ifndef WEIR_BPF_SCTP_CSUM_H
#define WEIR_BPF_SCTP_CSUM_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <stdbool.h>
#include <stddef.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/abi/endpoint.h"

#define SCTP_HEADER_LEN 12
#define SCTP_CSUM_OFF 8
#define CRC32C_POLY 0x82f63b78u

/* x^(2^k) mod P in the reflected representation, k = 3 .. 18: one entry per bit of a byte count
 * below 64 KiB (x^8 is one byte). */
#define CRC32C_X2N_BITS 16
static const __u32 crc32c_x2n[CRC32C_X2N_BITS] = {
	0x00800000, 0x00008000, 0x82f63b78, 0x6ea2d55c, 0x18b8ea18, 0x510ac59a, 0xb82be955, 0xb8fdb1e7,
	0x88e56f72, 0x74c360a4, 0xe4172b16, 0x0d65762a, 0x35d73a62, 0x28461564, 0xbf455269, 0xe2ea32dc,
};

static __always_inline __u32 le32(__u32 word)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return word;
#else
	return __builtin_bswap32(word);
#endif
}

/* a * b mod P, both reflected (bit 31 is x^0). */
static __always_inline __u32 crc32c_mulmod(__u32 a, __u32 b)
{
	__u32 product = 0;

	for (int i = 0; i < 32; i++) {
		product ^= b & -((a >> (31 - i)) & 1);
		b = (b >> 1) ^ (CRC32C_POLY & -(b & 1));
	}
	return product;
}

/* The CRC register after `word` (4 bytes read little-endian) from a zero start, then `zeros` zero
 * bytes: word * x^32 * x^(8 zeros) mod P. */
static __always_inline __u32 crc32c_shifted(__u32 word, __u32 zeros)
{
	__u32 reg = word;

	for (int i = 0; i < 32; i++)
		reg = (reg >> 1) ^ (CRC32C_POLY & -(reg & 1));
	for (int k = 0; k < CRC32C_X2N_BITS; k++) {
		if (zeros & (1u << k))
			reg = crc32c_mulmod(crc32c_x2n[k], reg);
	}
	return reg;
}

/* Length of the SCTP packet at l4_off from the IP header (the frame may carry Ethernet padding).
 * 0: not readable or not a whole SCTP header. */
static __always_inline __u32 sctp_length(struct __sk_buff *skb, __u32 l3_off, __u32 l4_off, __u8 family)
{
	__be16 field;
	__u32 len;

	if (family == WEIR_FAMILY_IPV4) {
		if (bpf_skb_load_bytes(skb, l3_off + offsetof(struct iphdr, tot_len), &field, sizeof(field)))
			return 0;
		len = bpf_ntohs(field) - (l4_off - l3_off);
	} else {
		if (bpf_skb_load_bytes(skb, l3_off + offsetof(struct ipv6hdr, payload_len), &field,
				       sizeof(field)))
			return 0;
		len = bpf_ntohs(field);
	}
	if (len < SCTP_HEADER_LEN || len > 0xffff || l4_off + len > skb->len)
		return 0;
	return len;
}

/* Rewrites the source (or destination) port of the SCTP packet at l4_off from `old` to `new` and
 * updates its CRC32c. A call of its own (not inlined): every rewrite site shares one copy; a BPF call
 * takes five arguments at most, hence the packing (sctp_rewrite_port() below unpacks nothing else).
 * 0, or -1 for a packet whose length does not add up. */
static __noinline int sctp_rewrite_port_call(struct __sk_buff *skb, __u32 offsets, __u32 ports, __u32 how)
{
	__u32 l3_off = offsets >> 16, l4_off = offsets & 0xffff;
	__be16 old = ports & 0xffff, new = ports >> 16;
	__u8 family = how & 0xff;
	bool source = how >> 8;
	__u32 at = l4_off + (source ? 0 : sizeof(__be16));
	__u32 stored;

	if (bpf_skb_load_bytes(skb, l4_off + SCTP_CSUM_OFF, &stored, sizeof(stored)))
		return -1;
	/* BPF_F_RECOMPUTE_CSUM keeps a CHECKSUM_COMPLETE skb->csum true to the bytes. */
	if (bpf_skb_store_bytes(skb, at, &new, sizeof(new), BPF_F_RECOMPUTE_CSUM))
		return -1;
	if (!stored)
		return 0; /* to be computed by the kernel or the NIC: see above */
	__u32 len = sctp_length(skb, l3_off, l4_off, family);

	if (!len)
		return -1;
	/* The first four bytes of A ^ B, in packet order, read little-endian. */
	__u16 changed = old ^ new;
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	changed = __builtin_bswap16(changed);
#endif
	__u32 delta = changed;

	if (!source)
		delta <<= 16;
	stored = le32(le32(stored) ^ crc32c_shifted(delta, len - 4));
	return bpf_skb_store_bytes(skb, l4_off + SCTP_CSUM_OFF, &stored, sizeof(stored), BPF_F_RECOMPUTE_CSUM)
		       ? -1
		       : 0;
}

static __always_inline int sctp_rewrite_port(struct __sk_buff *skb, __u16 l3_off, __u16 l4_off, __u8 family,
					     bool source, __be16 old, __be16 new)
{
	return sctp_rewrite_port_call(skb, (__u32)l3_off << 16 | l4_off, (__u32) new << 16 | old,
				      (__u32)source << 8 | family);
}

#endif
