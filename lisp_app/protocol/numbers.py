"""Assigned numbers, defined once: the LISP UDP ports, the ethertypes, the IP protocol numbers and
the ICMPv6 Neighbor Discovery types that the codecs, the frame parser/builders and the pipeline
compiler use."""

LISP_DATA_PORT = 4341     # RFC 9300: encapsulated data packets (and the LISP-GPE port)
LISP_CONTROL_PORT = 4342  # RFC 9301: control messages

ETH_TYPE_IPV4 = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_VLAN = 0x8100
ETH_TYPE_IPV6 = 0x86DD

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58

ND_NEIGHBOR_SOLICIT = 135  # ICMPv6 types (RFC 4861)
ND_NEIGHBOR_ADVERT = 136
