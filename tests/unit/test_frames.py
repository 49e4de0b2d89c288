"""Frame parsing and building: round trips, independent checksum checks, tshark's opinion,
truncation and malformed input."""

import json
import os
import random
import shutil
import struct
import subprocess
from ipaddress import IPv4Address, IPv6Address

import pytest

from lisp_app.dataplane.frames import (Frame, FrameError, arp_request, bytes_to_mac, icmp_too_big,
                                       mac_to_bytes, neighbor_advertisement,
                                       neighbor_solicitation, parse_frame, udp_frame)

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"
V4_A, V4_B = IPv4Address("10.1.0.1"), IPv4Address("10.2.0.7")
V6_A, V6_B = IPv6Address("2001:db8:1::1"), IPv6Address("2001:db8:2::abcd:1234")
ROUTER4, ROUTER6 = IPv4Address("192.0.2.1"), IPv6Address("2001:db8:ffff::1")


# --- independent checks ---------------------------------------------------------------------------


def ones_sum(data: bytes) -> int:
    """RFC 1071 one's-complement sum, written byte pair by byte pair (not the module's code)."""
    if len(data) & 1:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum_ok(data: bytes) -> bool:
    return ones_sum(data) == 0xFFFF


def l4_checksum_ok(frame: Frame, data: bytes) -> bool:
    """Verify the transport (UDP/ICMP/ICMPv6) checksum of a parsed frame from scratch."""
    ip = data[frame.ip_offset:frame.ip_offset + frame.ip_length]
    if frame.ip_version == 4:
        ihl = (ip[0] & 15) * 4
        segment = ip[ihl:]
        if frame.ip_proto == 1:                          # ICMPv4: no pseudo-header
            return checksum_ok(segment)
        pseudo = ip[12:20] + bytes([0, frame.ip_proto]) + len(segment).to_bytes(2, "big")
    else:
        segment = ip[40:]
        pseudo = ip[8:40] + len(segment).to_bytes(4, "big") + bytes([0, 0, 0, frame.ip_proto])
    return checksum_ok(pseudo + segment)


def check_consistent(frame: Frame, data: bytes) -> None:
    """Invariants every successfully parsed frame must satisfy."""
    assert len(frame.eth_dst) == 17 and len(frame.eth_src) == 17
    if frame.ip_version is not None:
        assert frame.ip_offset in (14, 18)
        assert frame.ip_offset + frame.ip_length <= len(data)
        assert type(frame.ip_src) is type(frame.ip_dst)
        assert frame.ip_src.version == frame.ip_version
        assert 0 <= frame.ttl <= 255
    if frame.payload_offset is not None:
        assert frame.ip_offset < frame.payload_offset <= frame.ip_offset + frame.ip_length
    if frame.sport is not None:
        assert frame.ip_proto in (6, 17)


# --- sample frames --------------------------------------------------------------------------------


def lisp_payload() -> bytes:
    """A LISP data header (N and I bits, nonce, instance-id 1000) and an inner UDP/IPv4 packet."""
    inner = udp_frame(MAC_A, MAC_B, V4_A, V4_B, 33000, 7, b"inner payload")[14:]
    return struct.pack("!II", 0x88000000 | 0x123456, (1000 << 8) | 1) + inner


def with_vlan(data: bytes, vid: int, pcp: int = 0) -> bytes:
    return data[:12] + struct.pack("!HH", 0x8100, (pcp << 13) | vid) + data[12:]


def fix_ipv4_checksum(header: bytearray) -> bytearray:
    header[10:12] = b"\0\0"
    header[10:12] = (~ones_sum(bytes(header)) & 0xFFFF).to_bytes(2, "big")
    return header


def ipv4_with_options(data: bytes) -> bytes:
    """Insert one 4-byte word of options (NOP NOP NOP EOL) into a 20-byte-header IPv4 frame."""
    header = bytearray(data[14:34] + b"\x01\x01\x01\x00")
    header[0] = 0x46
    header[2:4] = (int.from_bytes(header[2:4], "big") + 4).to_bytes(2, "big")
    return data[:14] + bytes(fix_ipv4_checksum(header)) + data[34:]


def tcp_frame(src, dst, sport, dport, payload=b"") -> bytes:
    """A TCP segment (PSH+ACK) built here, by hand, with NOP NOP Timestamps (data offset 8)."""
    seg = bytearray(struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 8 << 4, 0x18, 65535, 0, 0))
    seg += b"\x01\x01\x08\x0a" + struct.pack("!II", 1000, 0) + payload
    if src.version == 4:
        pseudo = src.packed + dst.packed + bytes([0, 6]) + len(seg).to_bytes(2, "big")
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 1, 0x4000, 64, 6, 0,
                                   src.packed, dst.packed))
        ip = bytes(fix_ipv4_checksum(ip))
        eth_type = 0x0800
    else:
        pseudo = src.packed + dst.packed + len(seg).to_bytes(4, "big") + bytes([0, 0, 0, 6])
        ip = struct.pack("!IHBB16s16s", 0x60000000, len(seg), 6, 64, src.packed, dst.packed)
        eth_type = 0x86DD
    seg[16:18] = (~ones_sum(pseudo + bytes(seg)) & 0xFFFF).to_bytes(2, "big")
    return mac_to_bytes(MAC_B) + mac_to_bytes(MAC_A) + eth_type.to_bytes(2, "big") + ip + seg


def big_udp(version: int, size: int, vlan: int | None = None) -> bytes:
    src, dst = (V4_A, V4_B) if version == 4 else (V6_A, V6_B)
    overhead = 28 if version == 4 else 48
    payload = bytes(i & 0xFF for i in range(size - overhead))
    data = udp_frame(MAC_A, MAC_B, src, dst, 40000, 4341, payload)
    return with_vlan(data, vlan) if vlan is not None else data


def too_big(version: int, size: int, mtu: int, vlan: int | None = None) -> bytes:
    original = big_udp(version, size, vlan)
    router = ROUTER4 if version == 4 else ROUTER6
    return icmp_too_big(original, parse_frame(original), mtu, "02:00:00:00:00:01", router)


def builder_outputs() -> dict[str, bytes]:
    return {
        "udp4": udp_frame(MAC_A, MAC_B, V4_A, V4_B, 4341, 4341, lisp_payload()),
        "udp4-empty": udp_frame(MAC_A, MAC_B, V4_A, V4_B, 1, 2, b""),
        "udp4-odd": udp_frame(MAC_A, MAC_B, V4_A, V4_B, 40007, 7, b"odd", ttl=200),
        "udp6": udp_frame(MAC_A, MAC_B, V6_A, V6_B, 4341, 4341, lisp_payload()),
        "udp6-odd": udp_frame(MAC_A, MAC_B, V6_A, V6_B, 40007, 7, b"odd", ttl=255),
        "arp": arp_request(MAC_A, V4_A, IPv4Address("10.1.0.254")),
        "ns": neighbor_solicitation(MAC_A, V6_A, V6_B),
        "ns-dad": neighbor_solicitation(MAC_A, IPv6Address("::"), V6_A),
        "na": neighbor_advertisement(MAC_B, MAC_A, V6_B, V6_A, V6_B),
        "na-host-unsolicited": neighbor_advertisement(MAC_B, "33:33:00:00:00:01", V6_B,
                                                      IPv6Address("ff02::1"), V6_B,
                                                      router=False, solicited=False),
        "too-big4": too_big(4, 1500, 1400),
        "too-big4-small": too_big(4, 100, 68),
        "too-big6": too_big(6, 1500, 1280),
        "too-big6-vlan": too_big(6, 200, 1300, vlan=42),
        "vlan-udp4": with_vlan(udp_frame(MAC_A, MAC_B, V4_A, V4_B, 7, 8, b"x"), 100, pcp=5),
        "ihl6-udp4": ipv4_with_options(udp_frame(MAC_A, MAC_B, V4_A, V4_B, 7, 8, b"opts")),
        "tcp4": tcp_frame(V4_A, V4_B, 40001, 7, b"hello"),
        "tcp6": tcp_frame(V6_A, V6_B, 40001, 7),
    }


SAMPLES = builder_outputs()


# --- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [4, 6])
def test_udp_round_trip(version):
    src, dst = (V4_A, V4_B) if version == 4 else (V6_A, V6_B)
    payload = lisp_payload()
    data = udp_frame(MAC_A, MAC_B, src, dst, 61000, 4341, payload, ttl=17)
    f = parse_frame(data)
    assert (f.eth_src, f.eth_dst, f.vlan) == (MAC_A, MAC_B, None)
    assert f.eth_type == (0x0800 if version == 4 else 0x86DD)
    assert (f.ip_version, f.ip_src, f.ip_dst, f.ip_proto, f.ttl) == (version, src, dst, 17, 17)
    assert f.ip_offset == 14
    assert f.ip_length == len(data) - 14
    assert (f.sport, f.dport) == (61000, 4341)
    assert data[f.payload_offset:] == payload
    assert f.arp_op is None and f.icmpv6_type is None and f.nd_target is None
    check_consistent(f, data)


def test_udp_ipv4_header_fields():
    data = udp_frame(MAC_A, MAC_B, V4_A, V4_B, 1, 2, b"abc")
    ip = data[14:34]
    assert ip[0] == 0x45
    assert int.from_bytes(ip[2:4], "big") == 31
    assert ip[4:6] == b"\0\0"                       # identification 0
    assert ip[6] & 0x40 == 0                         # DF clear
    assert checksum_ok(ip)
    assert l4_checksum_ok(parse_frame(data), data)


def test_udp_ipv6_header_fields():
    data = udp_frame(MAC_A, MAC_B, V6_A, V6_B, 1, 2, b"abc", ttl=9)
    assert data[14] >> 4 == 6
    assert int.from_bytes(data[18:20], "big") == 11  # payload length
    assert data[20] == 17 and data[21] == 9
    assert l4_checksum_ok(parse_frame(data), data)


@pytest.mark.parametrize("version", [4, 6])
def test_udp_checksum_zero_is_sent_as_ffff(version):
    src, dst = (V4_A, V4_B) if version == 4 else (V6_A, V6_B)
    first = udp_frame(MAC_A, MAC_B, src, dst, 1000, 2000, b"data\0\0")
    f = parse_frame(first)
    computed = first[f.payload_offset - 2:f.payload_offset]
    # Putting the checksum into the last payload word makes the sum 0xFFFF: checksum 0.
    data = udp_frame(MAC_A, MAC_B, src, dst, 1000, 2000, b"data" + computed)
    g = parse_frame(data)
    assert data[g.payload_offset - 2:g.payload_offset] == b"\xff\xff"
    assert l4_checksum_ok(g, data)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_checksums_of_every_builder_output(name):
    data = SAMPLES[name]
    f = parse_frame(data)
    check_consistent(f, data)
    if f.ip_version == 4:
        ihl = (data[f.ip_offset] & 15) * 4
        assert checksum_ok(data[f.ip_offset:f.ip_offset + ihl])
    if f.ip_version is not None:
        assert l4_checksum_ok(f, data)


def test_arp_request_round_trip():
    data = arp_request(MAC_A, V4_A, IPv4Address("10.1.0.254"))
    f = parse_frame(data)
    assert (f.eth_dst, f.eth_src, f.eth_type) == ("ff:ff:ff:ff:ff:ff", MAC_A, 0x0806)
    assert (f.arp_op, f.arp_sha, f.arp_spa) == (1, MAC_A, V4_A)
    assert (f.arp_tha, f.arp_tpa) == ("00:00:00:00:00:00", IPv4Address("10.1.0.254"))
    assert f.ip_version is None and f.ip_offset is None
    assert len(data) == 42


def test_arp_reply_parse_with_padding_and_vlan():
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, mac_to_bytes(MAC_B), V4_B.packed,
                       mac_to_bytes(MAC_A), V4_A.packed)
    data = with_vlan(mac_to_bytes(MAC_A) + mac_to_bytes(MAC_B) + b"\x08\x06" + body, 7)
    data += bytes(64 - len(data))
    f = parse_frame(data)
    assert (f.vlan, f.eth_type, f.arp_op) == (7, 0x0806, 2)
    assert (f.arp_sha, f.arp_spa, f.arp_tha, f.arp_tpa) == (MAC_B, V4_B, MAC_A, V4_A)


def test_arp_other_than_ethernet_ipv4_is_ethernet_only():
    body = struct.pack("!HHBBH", 6, 0x0800, 6, 4, 1) + bytes(20)   # hardware type IEEE 802
    f = parse_frame(mac_to_bytes(MAC_A) + mac_to_bytes(MAC_B) + b"\x08\x06" + body)
    assert f == Frame(MAC_A, MAC_B, 0x0806)


def test_neighbor_solicitation_round_trip():
    target = IPv6Address("2001:db8:2::ab:cdef")
    data = neighbor_solicitation(MAC_A, V6_A, target)
    f = parse_frame(data)
    assert f.eth_dst == "33:33:ff:ab:cd:ef" and f.eth_src == MAC_A
    assert f.ip_dst == IPv6Address("ff02::1:ffab:cdef") and f.ip_src == V6_A
    assert (f.ip_proto, f.ttl, f.icmpv6_type) == (58, 255, 135)
    assert data[f.payload_offset] == 135 and data[f.payload_offset + 1] == 0
    assert (f.nd_target, f.nd_lladdr) == (target, MAC_A)
    assert f.sport is None and f.dport is None
    assert l4_checksum_ok(f, data)


def test_neighbor_solicitation_for_dad_has_no_source_lladdr_option():
    data = neighbor_solicitation(MAC_A, IPv6Address("::"), V6_A)
    f = parse_frame(data)
    assert (f.icmpv6_type, f.nd_target, f.nd_lladdr) == (135, V6_A, None)
    assert f.ip_length == 40 + 24
    assert l4_checksum_ok(f, data)


@pytest.mark.parametrize("router,solicited,flags", [(True, True, 0xE0), (False, True, 0x60),
                                                     (True, False, 0xA0), (False, False, 0x20)])
def test_neighbor_advertisement_round_trip(router, solicited, flags):
    data = neighbor_advertisement(MAC_B, MAC_A, V6_B, V6_A, V6_B, router=router,
                                  solicited=solicited)
    f = parse_frame(data)
    assert (f.eth_src, f.eth_dst, f.ip_src, f.ip_dst) == (MAC_B, MAC_A, V6_B, V6_A)
    assert (f.ip_proto, f.ttl, f.icmpv6_type) == (58, 255, 136)
    assert data[f.payload_offset + 4] == flags
    assert data[f.payload_offset + 5:f.payload_offset + 8] == b"\0\0\0"
    assert (f.nd_target, f.nd_lladdr) == (V6_B, MAC_B)
    assert l4_checksum_ok(f, data)


def test_icmp_too_big_ipv4_round_trip():
    original = big_udp(4, 1500)
    orig = parse_frame(original)
    data = icmp_too_big(original, orig, 1400, "02:00:00:00:00:01", ROUTER4)
    f = parse_frame(data)
    assert (f.eth_dst, f.eth_src, f.vlan) == (MAC_A, "02:00:00:00:00:01", None)
    assert (f.ip_version, f.ip_src, f.ip_dst, f.ip_proto, f.ttl) == (4, ROUTER4, V4_A, 1, 64)
    icmp = data[f.ip_offset + 20:f.ip_offset + f.ip_length]
    assert (icmp[0], icmp[1]) == (3, 4)
    assert icmp[4:6] == b"\0\0" and int.from_bytes(icmp[6:8], "big") == 1400
    quoted = icmp[8:]
    assert quoted == original[14:14 + 548]            # header + as much as fits 576 bytes
    assert f.ip_length == 576
    assert checksum_ok(icmp) and checksum_ok(data[14:34])


def test_icmp_too_big_ipv4_quotes_whole_small_packet_without_padding():
    original = udp_frame(MAC_A, MAC_B, V4_A, V4_B, 1, 2, b"x") + bytes(17)   # padded to 60
    data = icmp_too_big(original, parse_frame(original), 576, MAC_B, ROUTER4)
    f = parse_frame(data)
    assert data[f.ip_offset + 28:] == original[14:14 + 29]
    assert checksum_ok(data[f.ip_offset + 20:])


def test_icmp_too_big_ipv6_round_trip():
    original = big_udp(6, 1500, vlan=3)
    orig = parse_frame(original)
    data = icmp_too_big(original, orig, 1280, "02:00:00:00:00:01", ROUTER6)
    f = parse_frame(data)
    assert (f.eth_dst, f.eth_src, f.vlan, f.ip_offset) == (MAC_A, "02:00:00:00:00:01", None, 14)
    assert (f.ip_version, f.ip_src, f.ip_dst, f.ip_proto, f.ttl) == (6, ROUTER6, V6_A, 58, 64)
    assert f.icmpv6_type == 2
    icmp = data[f.payload_offset:]
    assert icmp[1] == 0 and int.from_bytes(icmp[4:8], "big") == 1280
    assert f.ip_length == 1280 and len(data) == 14 + 1280
    assert icmp[8:] == original[18:18 + 1232]
    assert l4_checksum_ok(f, data)


def test_icmp_too_big_rejects_non_ip_and_wrong_family():
    arp = arp_request(MAC_A, V4_A, V4_B)
    with pytest.raises(ValueError):
        icmp_too_big(arp, parse_frame(arp), 1400, MAC_B, ROUTER4)
    original = big_udp(4, 200)
    with pytest.raises(ValueError):
        icmp_too_big(original, parse_frame(original), 1400, MAC_B, ROUTER6)
    with pytest.raises(ValueError):
        icmp_too_big(original[:100], parse_frame(original), 1400, MAC_B, ROUTER4)


def test_builders_reject_bad_arguments():
    with pytest.raises(ValueError):
        udp_frame(MAC_A, MAC_B, V4_A, V6_B, 1, 2, b"")
    with pytest.raises(ValueError):
        udp_frame(MAC_A, MAC_B, V4_A, V4_B, 1, 70000, b"")
    with pytest.raises(ValueError):
        udp_frame(MAC_A, MAC_B, V4_A, V4_B, 1, 2, bytes(65536))
    with pytest.raises(ValueError):
        udp_frame("02:00:00:00:00", MAC_B, V4_A, V4_B, 1, 2, b"")
    with pytest.raises(ValueError):
        neighbor_solicitation(MAC_A, V4_A, V6_B)
    with pytest.raises(ValueError):
        arp_request(MAC_A, V6_A, V4_B)


def test_mac_helpers():
    assert mac_to_bytes("AA:bb:0C:dd:ee:FF") == bytes.fromhex("aabb0cddeeff")
    assert mac_to_bytes("aa-bb-cc-dd-ee-ff") == bytes.fromhex("aabbccddeeff")
    assert bytes_to_mac(bytes.fromhex("aabb0cddeeff")) == "aa:bb:0c:dd:ee:ff"
    for bad in ("aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "aa:bb:cc:dd:ee:fg", "a:bb:cc:dd:ee:ff0"):
        with pytest.raises(ValueError):
            mac_to_bytes(bad)
    with pytest.raises(ValueError):
        bytes_to_mac(b"\0" * 5)


# --- VLAN, options, TCP, other ethertypes ---------------------------------------------------------


def test_vlan_tagged_udp():
    plain = udp_frame(MAC_A, MAC_B, V4_A, V4_B, 7, 8, b"xyz")
    data = with_vlan(plain, 100, pcp=5)
    f, g = parse_frame(data), parse_frame(plain)
    assert (f.vlan, f.eth_type, f.ip_offset) == (100, 0x0800, 18)
    assert f.payload_offset == g.payload_offset + 4
    assert data[f.payload_offset:] == b"xyz"
    assert (f.ip_src, f.ip_dst, f.sport, f.dport) == (V4_A, V4_B, 7, 8)
    assert g.vlan is None


def test_vlan_with_unknown_ethertype():
    data = with_vlan(mac_to_bytes(MAC_B) + mac_to_bytes(MAC_A) + b"\x88\xcc" + bytes(46), 4095)
    assert parse_frame(data) == Frame(MAC_B, MAC_A, 0x88CC, vlan=4095)


def test_ipv4_with_options():
    data = ipv4_with_options(udp_frame(MAC_A, MAC_B, V4_A, V4_B, 7, 8, b"opts"))
    f = parse_frame(data)
    assert f.ip_length == 24 + 8 + 4
    assert (f.sport, f.dport) == (7, 8)
    assert f.payload_offset == 14 + 24 + 8
    assert data[f.payload_offset:] == b"opts"
    assert checksum_ok(data[14:38]) and l4_checksum_ok(f, data)


@pytest.mark.parametrize("version", [4, 6])
def test_tcp_ports(version):
    src, dst = (V4_A, V4_B) if version == 4 else (V6_A, V6_B)
    f = parse_frame(tcp_frame(src, dst, 40001, 179, b"x"))
    assert (f.ip_proto, f.sport, f.dport, f.payload_offset) == (6, 40001, 179, None)
    assert f.ip_length == (20 if version == 4 else 40) + 32 + 1


def test_non_ip_ethertype_has_only_ethernet_fields():
    data = mac_to_bytes(MAC_B) + mac_to_bytes(MAC_A) + b"\x88\xcc" + b"\x02\x07"
    assert parse_frame(data) == Frame(MAC_B, MAC_A, 0x88CC)
    assert parse_frame(data[:14]) == Frame(MAC_B, MAC_A, 0x88CC)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_bytearray_and_memoryview_parse_like_bytes(name):
    data = SAMPLES[name]
    expected = parse_frame(data)
    assert parse_frame(bytearray(data)) == expected
    assert parse_frame(memoryview(data)) == expected


def test_padding_after_ip_packet_is_ignored():
    for name, data in SAMPLES.items():
        assert parse_frame(data + bytes(30)) == parse_frame(data), name


def test_ipv6_extension_header_is_reported_not_walked():
    base = bytearray(udp_frame(MAC_A, MAC_B, V6_A, V6_B, 1, 2, b"12345678"))
    for nh in (0, 43, 44, 60):
        base[20] = nh
        f = parse_frame(bytes(base))
        assert (f.ip_proto, f.sport, f.dport, f.payload_offset) == (nh, None, None, None)


def test_ipv4_fragments():
    data = bytearray(udp_frame(MAC_A, MAC_B, V4_A, V4_B, 1, 2, b"x" * 40))
    data[20:22] = (0x2000).to_bytes(2, "big")          # MF, offset 0: first fragment
    data[16:18] = (20 + 24).to_bytes(2, "big")          # only part of the datagram here
    first = bytes(fix_ipv4_checksum(bytearray(data[14:34]))) + bytes(data[34:58])
    f = parse_frame(bytes(data[:14]) + first)
    assert (f.sport, f.dport, f.payload_offset) == (1, 2, 42)
    later = bytearray(first)
    later[6:8] = (0x0003).to_bytes(2, "big")            # offset 24 bytes: no UDP header here
    g = parse_frame(bytes(data[:14]) + bytes(later))
    assert (g.ip_proto, g.sport, g.dport, g.payload_offset) == (17, None, None, None)


# --- malformed input ------------------------------------------------------------------------------


def set_bytes(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


UDP4 = udp_frame(MAC_A, MAC_B, V4_A, V4_B, 1, 2, b"payload!")
UDP6 = udp_frame(MAC_A, MAC_B, V6_A, V6_B, 1, 2, b"payload!")
NS = neighbor_solicitation(MAC_A, V6_A, V6_B)
NA = neighbor_advertisement(MAC_B, MAC_A, V6_B, V6_A, V6_B)


@pytest.mark.parametrize("data,where", [
    (b"", "Ethernet"),
    (UDP4[:13], "Ethernet"),
    (with_vlan(UDP4, 1)[:17], "802.1Q"),
    (set_bytes(UDP4, 14, b"\x65"), "version 6"),             # IPv6 version in an IPv4 header
    (set_bytes(UDP4, 14, b"\x44"), "IHL 4"),
    (set_bytes(UDP4, 14, b"\x40"), "IHL 0"),
    (set_bytes(UDP4, 16, (len(UDP4) - 14 + 1).to_bytes(2, "big")), "offset 16"),  # beyond frame
    (set_bytes(UDP4, 16, (19).to_bytes(2, "big")), "total length 19"),
    (set_bytes(UDP4, 38, (17).to_bytes(2, "big")), "UDP length 17"),   # beyond IP payload
    (set_bytes(UDP4, 38, (7).to_bytes(2, "big")), "UDP length 7"),
    (set_bytes(UDP4, 16, (20 + 7).to_bytes(2, "big")), "UDP header truncated"),
    (set_bytes(UDP6, 14, b"\x40"), "version 4"),
    (set_bytes(UDP6, 18, (17).to_bytes(2, "big")), "payload length 17"),
    (set_bytes(UDP6, 58, (17).to_bytes(2, "big")), "UDP length 17"),
    (set_bytes(NS, 14 + 40 + 24 + 1, b"\x00"), "length 0"),          # ND option length 0
    (set_bytes(NA, 14 + 40 + 24 + 1, b"\x02"), "exceeds the ICMPv6"),
    (set_bytes(NS, 18, (3).to_bytes(2, "big"))[:14 + 43], "ICMPv6 header truncated"),
    (set_bytes(NS, 18, (20).to_bytes(2, "big"))[:14 + 60], "Neighbor Discovery"),
    (set_bytes(SAMPLES["tcp4"], 46, b"\x40"), "TCP data offset 4"),
    (set_bytes(SAMPLES["tcp4"], 46, b"\xf0"), "TCP data offset 15"),
    (set_bytes(SAMPLES["tcp4"], 16, (20 + 19).to_bytes(2, "big")), "TCP header truncated"),
    (arp_request(MAC_A, V4_A, V4_B)[:41], "ARP packet truncated"),
])
def test_malformed_frames_raise_frame_error(data, where):
    with pytest.raises(FrameError, match=where):
        parse_frame(data)


def test_frame_error_is_a_value_error():
    assert issubclass(FrameError, ValueError)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_truncation_raises_frame_error(name):
    data = SAMPLES[name]
    parse_frame(data)
    for n in range(len(data)):
        with pytest.raises(FrameError):
            parse_frame(data[:n])


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_mutations_raise_frame_error_or_parse_consistently(name):
    rng = random.Random(name)
    base = SAMPLES[name]
    parsed = errors = 0
    for _ in range(1500):
        data = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(min(len(data), 80))] = rng.randrange(256)
        data = bytes(data[:rng.randint(0, len(data))] if rng.random() < 0.3 else data)
        try:
            frame = parse_frame(data)
        except FrameError:
            errors += 1
            continue
        parsed += 1
        check_consistent(frame, data)
    assert parsed and errors


def test_random_bytes_never_raise_anything_but_frame_error():
    rng = random.Random(7)
    for _ in range(3000):
        head = rng.choice([b"", b"\x08\x00\x45", b"\x86\xdd\x60", b"\x08\x06\x00\x01\x08\x00\x06"
                           b"\x04", b"\x81\x00\x00\x01\x08\x00\x46"])
        data = bytes(rng.randrange(256) for _ in range(12)) + head + \
            bytes(rng.randrange(256) for _ in range(rng.randrange(80)))
        try:
            check_consistent(parse_frame(data), data)
        except FrameError:
            pass


# --- tshark ---------------------------------------------------------------------------------------


def write_pcap(path, frames):
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, frame in enumerate(frames):
            out.write(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)))
            out.write(frame)


def keep_duplicates(pairs):
    """JSON object hook: tshark repeats keys (an encapsulated packet's "ip", "udp"); keep them
    all, the first under its own name and the later ones as "name#2", "name#3"..."""
    obj = {}
    for key, value in pairs:
        name, n = key, 2
        while name in obj:
            name, n = f"{key}#{n}", n + 1
        obj[name] = value
    return obj


def find_keys(node, found, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith(("_ws.expert", "_ws.malformed")):
                found.append((path + "/" + key, value))
            find_keys(value, found, path + "/" + key)
    elif isinstance(node, list):
        for item in node:
            find_keys(item, found, path)


def all_values(node, key):
    """Every value of ``key`` (or its repeats) in document order, depth first."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key or k.startswith(key + "#"):
                yield v
            yield from all_values(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from all_values(item, key)


@pytest.fixture(scope="module")
def tshark_packets(tmp_path_factory):
    tshark = shutil.which("tshark")
    if tshark is None:
        if os.environ.get("CI"):
            pytest.fail("tshark is required in CI (CI is set) but was not found on PATH")
        pytest.skip(reason="tshark not installed; the independent dissector check needs it")
    names = sorted(SAMPLES)
    path = tmp_path_factory.mktemp("pcap") / "frames.pcap"
    write_pcap(path, [SAMPLES[n] for n in names])
    result = subprocess.run(
        [tshark, "-n", "-r", str(path), "-T", "json",
         "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
         "-o", "tcp.check_checksum:TRUE"],
        capture_output=True, text=True, timeout=120, check=True)
    packets = json.loads(result.stdout, object_pairs_hook=keep_duplicates)
    assert len(packets) == len(names)
    return {name: packet["_source"]["layers"] for name, packet in zip(names, packets)}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_tshark_finds_no_expert_or_malformed_items(tshark_packets, name):
    found = []
    find_keys(tshark_packets[name], found)
    assert not found, found


CHECKSUMS = {"ip": "ip.checksum.status", "udp": "udp.checksum.status",
             "tcp": "tcp.checksum.status", "icmp": "icmp.checksum.status",
             "icmpv6": "icmpv6.checksum.status"}


@pytest.mark.parametrize("name", sorted(set(SAMPLES) - {"arp"}))
def test_tshark_checksums_good(tshark_packets, name):
    layers = tshark_packets[name]
    # The outermost header of each kind (a top-level layer, not a repeat) must be verified
    # "Good" (1). Headers quoted in ICMP errors or encapsulated by LISP must not be "Bad" (0);
    # a quote's transport checksum covers bytes that are not there, so it is "Unverified" (2).
    verified = {proto: layers[proto][key] for proto, key in CHECKSUMS.items() if proto in layers}
    assert verified and set(verified.values()) == {"1"}, verified
    inner = [v for key in CHECKSUMS.values() for v in all_values(layers, key)]
    assert "0" not in inner, inner


def test_tshark_fields(tshark_packets):
    udp4 = tshark_packets["udp4"]
    assert udp4["ip"]["ip.src"] == str(V4_A) and udp4["ip"]["ip.dst"] == str(V4_B)
    assert udp4["udp"]["udp.srcport"] == "4341" and udp4["udp"]["udp.length"] == str(
        8 + len(lisp_payload()))
    assert udp4["lisp-data"]["lisp-data.iid"] == "1000"
    assert udp4["ip#2"]["ip.checksum.status"] == "1"          # the encapsulated packet
    assert udp4["udp#2"]["udp.checksum.status"] == "1"
    assert tshark_packets["udp6"]["ip"]["ip.checksum.status"] == "1"

    ns = tshark_packets["ns"]["icmpv6"]
    assert ns["icmpv6.type"] == "135"
    assert ns["icmpv6.nd.ns.target_address"] == str(V6_B)
    assert list(all_values(ns, "icmpv6.opt.linkaddr")) == [MAC_A]
    assert tshark_packets["ns"]["ipv6"]["ipv6.hlim"] == "255"
    assert tshark_packets["ns"]["ipv6"]["ipv6.dst"] == "ff02::1:ffcd:1234"
    assert tshark_packets["ns"]["eth"]["eth.dst"] == "33:33:ff:cd:12:34"
    assert "icmpv6.opt" not in tshark_packets["ns-dad"]["icmpv6"]

    na = tshark_packets["na"]["icmpv6"]
    assert na["icmpv6.type"] == "136" and na["icmpv6.nd.na.target_address"] == str(V6_B)
    assert list(all_values(na, "icmpv6.nd.na.flag.r")) == ["1"]
    assert list(all_values(na, "icmpv6.nd.na.flag.s")) == ["1"]
    assert list(all_values(na, "icmpv6.nd.na.flag.o")) == ["1"]
    assert list(all_values(na, "icmpv6.opt.linkaddr")) == [MAC_B]
    host = tshark_packets["na-host-unsolicited"]["icmpv6"]
    assert list(all_values(host, "icmpv6.nd.na.flag.r")) == ["0"]
    assert list(all_values(host, "icmpv6.nd.na.flag.s")) == ["0"]

    arp = tshark_packets["arp"]["arp"]
    assert (arp["arp.opcode"], arp["arp.src.proto_ipv4"], arp["arp.dst.proto_ipv4"]) == \
        ("1", str(V4_A), "10.1.0.254")

    tb4 = tshark_packets["too-big4"]["icmp"]
    assert (tb4["icmp.type"], tb4["icmp.code"], tb4["icmp.mtu"]) == ("3", "4", "1400")
    assert tb4["ip"]["ip.src"] == str(V4_A) and tb4["udp"]["udp.dstport"] == "4341"
    tb6 = tshark_packets["too-big6"]["icmpv6"]
    assert (tb6["icmpv6.type"], tb6["icmpv6.code"], tb6["icmpv6.mtu"]) == ("2", "0", "1280")
    assert tb6["ipv6"]["ipv6.src"] == str(V6_A) and tb6["udp"]["udp.dstport"] == "4341"

    vlan = tshark_packets["vlan-udp4"]["vlan"]
    assert (vlan["vlan.id"], vlan["vlan.priority"]) == ("100", "5")
    assert tshark_packets["ihl6-udp4"]["ip"]["ip.hdr_len"] == "24"
