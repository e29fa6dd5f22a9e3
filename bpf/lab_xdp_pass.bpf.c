// SPDX-License-Identifier: GPL-2.0
/* Not part of weir's datapath: the lab (weirlab/cluster.py, Cluster.prepare_for_xdp) attaches it to
 * the fabric's end of each node's uplink veth. A veth wakes its peer for frames sent with XDP_TX only
 * when that peer runs an XDP program itself; a NIC's wire needs no such thing. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp.frags")
int lab_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
