"""The shared Internet header code (lisp_app.protocol.inet): the checksum against a plain
big-endian reference, and the builders' bytes field by field."""

import random
import struct
from ipaddress import IPv4Address, IPv6Address

import pytest

from lisp_app.dataplane import frames
from lisp_app.protocol import ecm, inet, internet_checksum
from lisp_app.protocol.numbers import IPPROTO_UDP


def reference_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def test_one_checksum_everywhere():
    assert frames.internet_checksum is inet.internet_checksum
    assert ecm.internet_checksum is inet.internet_checksum
    assert internet_checksum is inet.internet_checksum


@pytest.mark.parametrize("size", [0, 1, 2, 3, 19, 20, 21, 64, 1499])
def test_checksum_matches_the_reference_for_any_buffer(size):
    rng = random.Random(size)
    data = bytes(rng.randrange(256) for _ in range(size))
    want = reference_checksum(data)
    assert internet_checksum(data) == want
    assert internet_checksum(bytearray(data)) == want
    assert internet_checksum(memoryview(data)) == want
    if size:
        assert internet_checksum(b"\xff" * size) == reference_checksum(b"\xff" * size)


def test_ipv4_header_fields_and_checksum():
    src, dst = IPv4Address("192.0.2.1"), IPv4Address("198.51.100.7")
    head = inet.ipv4_header(src, dst, IPPROTO_UDP, 100, 33, tos=0xB8, ident=7,
                            frag=inet.DONT_FRAGMENT)
    assert len(head) == 20 and internet_checksum(head) == 0
    assert inet.IPV4_HEADER.unpack(head[:10] + b"\0\0" + head[12:]) == (
        0x45, 0xB8, 120, 7, 0x4000, 33, 17, 0, src.packed, dst.packed)


def test_ipv6_header_fields():
    src, dst = IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")
    head = inet.ipv6_header(src, dst, IPPROTO_UDP, 100, 9, traffic_class=0xB8, flow_label=0x12345)
    assert inet.IPV6_HEADER.unpack(head) == (6 << 28 | 0xB8 << 20 | 0x12345, 100, 17, 9,
                                             src.packed, dst.packed)


@pytest.mark.parametrize("src, dst", [(IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")),
                                      (IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2"))])
def test_udp_datagram_checksum_covers_the_pseudo_header(src, dst):
    payload = b"hello, world"
    datagram = inet.udp_datagram(src, dst, 4342, 4341, payload)
    assert datagram[8:] == payload
    assert struct.unpack("!HHH", datagram[:6]) == (4342, 4341, 20)
    pseudo = inet.pseudo_header(src, dst, IPPROTO_UDP, len(datagram))
    assert len(pseudo) == (12 if src.version == 4 else 40)
    assert internet_checksum(pseudo + datagram) == 0
    assert inet.udp_datagram(src, dst, 4342, 4341, payload, checksum=False)[6:8] == b"\0\0"
