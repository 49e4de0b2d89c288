/* lisp_app's classic-LISP decapsulation helper: an XDP program (native mode where the driver
 * supports it, else generic: underlay.xdp_mode) on the underlay uplink, run before Open vSwitch's AF_PACKET socket sees the frame.
 *
 * A UDP 4341 packet to one of this xTR's RLOCs (map lisp_rlocs) with a classic RFC 9300 header
 * (P bit clear) gets that header rewritten in place into the LISP-GPE header OVS's VXLAN-GPE
 * port accepts:  0c 00 00 <1: IPv4 | 2: IPv6 inner> | <instance-id, or 0 without the I bit> 00.
 * Nonce, echo-nonce request, map-version and locator-status bits are dropped (docs/architecture.rst
 * says why an ETR may ignore them). The UDP checksum, when present, is updated incrementally.
 * GPE packets (P bit set) and packets to other addresses (data probes to an EID) pass untouched.
 * A classic packet that no valid LISP packet looks like (N and V together, K bits, inner packet
 * neither IPv4 nor IPv6, too short) is dropped. Counters in lisp_dstats, read by lisp_app.classic.
 *
 * Compile: clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c lisp_decap.c -o lisp_decap.o
 */
#include "lisp_classic.h"

enum { C_REWRITTEN, C_GPE, C_DROPPED, C_OTHER, C_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lisp_dstats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct rloc_key);
	__type(value, __u8);
} lisp_rlocs SEC(".maps");

SEC("xdp")
int lisp_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct lisp_pkt p;
	__u8 flags, version, next_protocol;
	__u16 fresh[4];

	if (!lisp_parse(data, data_end, &p))
		return XDP_PASS;
	if (!bpf_map_lookup_elem(&lisp_rlocs, &p.dst)) {
		count(&lisp_dstats, C_OTHER);
		return XDP_PASS;
	}
	if ((void *)(p.lisp + 1) > data_end)
		goto drop;
	flags = p.lisp->flags;
	if (flags & F_P) {
		count(&lisp_dstats, C_GPE);
		return XDP_PASS;
	}
	if ((flags & F_K) || ((flags & F_N) && (flags & F_V)))
		goto drop;
	if ((void *)((__u8 *)p.inner + 1) > data_end)
		goto drop;
	version = *(__u8 *)p.inner >> 4;
	if (version == 4) {
		if ((void *)((__u8 *)p.inner + 20) > data_end || p.udp_len < 8 + 8 + 20
		    || (*(__u8 *)p.inner & 0x0f) < 5)
			goto drop;
		next_protocol = GPE_IPV4;
	} else if (version == 6) {
		if ((void *)((__u8 *)p.inner + 40) > data_end || p.udp_len < 8 + 8 + 40)
			goto drop;
		next_protocol = GPE_IPV6;
	} else {
		goto drop;
	}
	fresh[0] = bpf_htons(0x0c00);
	fresh[1] = bpf_htons(next_protocol);
	if (flags & F_I) {
		fresh[2] = *(__u16 *)&p.lisp->iid[0];
		fresh[3] = bpf_htons((__u16)p.lisp->iid[2] << 8);
	} else {
		fresh[2] = 0;
		fresh[3] = 0;
	}
	lisp_rewrite(&p, fresh);
	count(&lisp_dstats, C_REWRITTEN);
	return XDP_PASS;
drop:
	count(&lisp_dstats, C_DROPPED);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
