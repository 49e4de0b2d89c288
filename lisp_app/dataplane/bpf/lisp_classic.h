/* Shared parts of lisp_app's classic-LISP programs (lisp_decap.c, lisp_encap.c): header parsing
 * of the outer Ethernet / IPv4 / IPv6 / UDP 4341 headers and the incremental UDP checksum update
 * for an 8-byte rewrite of the LISP header (RFC 1624). */
#ifndef LISP_CLASSIC_H
#define LISP_CLASSIC_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define LISP_DATA_PORT 4341
#define F_N 0x80
#define F_L 0x40
#define F_E 0x20
#define F_V 0x10
#define F_I 0x08
#define F_P 0x04
#define F_K 0x03
#define GPE_IPV4 1
#define GPE_IPV6 2

struct lisp_hdr {
	__u8 flags;
	__u8 word0[3];
	__u8 iid[3];
	__u8 lsbs;
};

/* An address of one of this xTR's RLOCs: IPv4 in the first 4 bytes, the rest zero. */
struct rloc_key {
	__u8 family; /* 4 or 6 */
	__u8 pad[3];
	__u8 addr[16];
};

/* The outer headers of a UDP 4341 packet, found by lisp_parse. */
struct lisp_pkt {
	struct udphdr *udp;
	struct lisp_hdr *lisp;
	void *inner;
	struct rloc_key dst;
	__u16 udp_len; /* UDP length field, host order */
};

/* 1 and ``p`` filled: a UDP 4341 packet whose LISP header is in [data, data_end);
 * 0: anything else (not ours to touch). */
static __always_inline int lisp_parse(void *data, void *data_end, struct lisp_pkt *p)
{
	struct ethhdr *eth = data;
	struct udphdr *udp;
	__u8 *l3;
	if ((void *)(eth + 1) > data_end)
		return 0;
	l3 = (void *)(eth + 1);
	__builtin_memset(&p->dst, 0, sizeof(p->dst));
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)l3;
		if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5)
			return 0;
		if (ip->protocol != IPPROTO_UDP)
			return 0;
		if (ip->frag_off & bpf_htons(0x3fff)) /* a fragment: leave it to OVS */
			return 0;
		udp = (void *)ip + ip->ihl * 4;
		p->dst.family = 4;
		__builtin_memcpy(p->dst.addr, &ip->daddr, 4);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)l3;
		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_UDP)
			return 0;
		udp = (void *)(ip6 + 1);
		p->dst.family = 6;
		__builtin_memcpy(p->dst.addr, &ip6->daddr, 16);
	} else {
		return 0;
	}
	if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(LISP_DATA_PORT))
		return 0;
	p->udp = udp;
	p->udp_len = bpf_ntohs(udp->len);
	p->lisp = (void *)(udp + 1);
	p->inner = (void *)(p->lisp + 1);
	return 1;
}

static __always_inline __u16 csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* Replace the 8-byte LISP header with ``fresh`` and update the UDP checksum for the change. A zero
 * checksum (none, allowed over IPv4) stays zero. */
static __always_inline void lisp_rewrite(struct lisp_pkt *p, const __u16 fresh[4])
{
	__u16 *old = (__u16 *)p->lisp;
	__u16 check = p->udp->check;
	if (check) {
		__u32 sum = (__u16)~check;
#pragma unroll
		for (int i = 0; i < 4; i++) {
			sum += (__u16)~old[i];
			sum += fresh[i];
		}
		check = (__u16)~csum_fold(sum);
		if (!check)
			check = 0xffff;
		p->udp->check = check;
	}
#pragma unroll
	for (int i = 0; i < 4; i++)
		old[i] = fresh[i];
}

static __always_inline void count(void *map, __u32 index)
{
	__u64 *value = bpf_map_lookup_elem(map, &index);
	if (value)
		__sync_fetch_and_add(value, 1);
}

#endif
