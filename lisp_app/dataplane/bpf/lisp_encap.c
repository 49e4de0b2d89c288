/* lisp_app's strict RFC 9300 encapsulation (site setting underlay.encapsulation: lisp): a tc
 * cls_bpf program (direct action) on the underlay uplink's egress hook. Open vSwitch sends its
 * LISP-GPE packets through the uplink's AF_PACKET socket, which passes this hook; each UDP 4341
 * packet whose header is exactly OVS's GPE header
 * 0c 00 00 <1|2> | <instance-id> 00 leaves with the classic header 08 00 00 00 | <instance-id> 00
 * (I bit and instance-id; P bit and next protocol zero). The UDP checksum, when present (always
 * over IPv6), is updated incrementally. Anything else passes untouched. Counters in lisp_estats.
 *
 * Compile: clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c lisp_encap.c -o lisp_encap.o
 */
#include <linux/pkt_cls.h>
#include "lisp_classic.h"

enum { C_REWRITTEN, C_OTHER, C_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lisp_estats SEC(".maps");

#define HEADROOM (14 + 40 + 8 + 8) /* Ethernet, IPv6 (the larger), UDP, LISP */

SEC("tc")
int lisp_encap(struct __sk_buff *skb)
{
	void *data, *data_end;
	struct lisp_pkt p;
	__u16 fresh[4];

	if (skb->len < 14 + 20 + 8 + 8)
		return TC_ACT_OK;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + HEADROOM > data_end) {
		bpf_skb_pull_data(skb, skb->len < HEADROOM ? skb->len : HEADROOM);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	if (!lisp_parse(data, data_end, &p) || (void *)(p.lisp + 1) > data_end)
		return TC_ACT_OK;
	if (p.lisp->flags != (F_I | F_P) || p.lisp->word0[0] || p.lisp->word0[1]
	    || (p.lisp->word0[2] != GPE_IPV4 && p.lisp->word0[2] != GPE_IPV6) || p.lisp->lsbs) {
		count(&lisp_estats, C_OTHER);
		return TC_ACT_OK;
	}
	fresh[0] = bpf_htons(0x0800);
	fresh[1] = 0;
	fresh[2] = *(__u16 *)&p.lisp->iid[0];
	fresh[3] = bpf_htons((__u16)p.lisp->iid[2] << 8);
	lisp_rewrite(&p, fresh);
	count(&lisp_estats, C_REWRITTEN);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
