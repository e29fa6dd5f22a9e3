/* Incremental Internet checksum updates computed in the program (RFC 1624), for the IPv4 header
 * checksum: it covers only the header, so unlike the L4 checksum it does not depend on how the skb
 * carries its checksum (CHECKSUM_PARTIAL, COMPLETE), and bpf_l3_csum_replace is not needed. A helper
 * call costs a call and a return thunk on CPUs with return mitigations, more than the few adds here. */
#ifndef WEIR_BPF_CSUM_H
#define WEIR_BPF_CSUM_H

#include <linux/types.h>

/* 32-bit one's complement addition: the carry out goes back in (the kernel's csum_add()). */
static __always_inline __u32 csum_add32(__u32 a, __u32 b)
{
	__u32 sum = a + b;

	return sum + (sum < a);
}

/* A 32-bit one's complement sum folded to 16 bits and inverted (the kernel's csum_fold()). */
static __always_inline __sum16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__sum16)~sum;
}

/* `check` covered `from` and must now cover `to`: HC' = ~(~HC + ~m + m') (RFC 1624), computed as
 * the kernel's csum_replace4() does, bit for bit. */
static __always_inline void csum_replace4(__sum16 *check, __be32 from, __be32 to)
{
	*check = csum_fold32(csum_add32(csum_add32(~(__u32)*check, ~from), to));
}

/* The same for a 16-bit field (equal to the kernel's csum_replace2() for every checksum but 0xffff,
 * which a computed IPv4 header checksum never is). */
static __always_inline void csum_replace2(__sum16 *check, __be16 from, __be16 to)
{
	csum_replace4(check, (__u32)from, (__u32)to);
}

#endif
