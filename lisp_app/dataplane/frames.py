"""Ethernet frames as bytes: a cheap parser for packet-ins and builders for the frames we send.

Pure Python (``struct`` and ``ipaddress``), independent of os-ken. ``parse_frame`` decodes
Ethernet (with at most one 802.1Q tag), IPv4, IPv6, ARP, UDP, TCP ports and ICMPv6 Neighbor
Discovery far enough for the controller's decisions, and raises ``FrameError`` on anything
truncated or inconsistent. The builders produce complete frames with correct checksums: UDP
datagrams, ARP requests, Neighbor Solicitations and Advertisements, and the ICMP/ICMPv6
"too big" errors a router returns when a packet does not fit the path MTU.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from ..protocol.inet import (IPV4_HEADER, IPV6_HEADER, UDP_HEADER, internet_checksum, ipv4_header,
                             ipv6_header, pseudo_header, udp_datagram, with_checksum)
from ..protocol.numbers import (ETH_TYPE_ARP, ETH_TYPE_IPV4, ETH_TYPE_IPV6, ETH_TYPE_VLAN,
                                IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP,
                                ND_NEIGHBOR_ADVERT, ND_NEIGHBOR_SOLICIT)

__all__ = [
    "ETH_TYPE_ARP", "ETH_TYPE_IPV4", "ETH_TYPE_IPV6", "ETH_TYPE_VLAN", "Frame", "FrameError",
    "IPAddress", "arp_request", "bytes_to_mac", "icmp_too_big", "internet_checksum",
    "mac_to_bytes", "neighbor_advertisement", "neighbor_solicitation", "parse_frame",
    "solicited_node", "udp_frame",
]

IPAddress = IPv4Address | IPv6Address

ICMP_DEST_UNREACH = 3
ICMP_FRAG_NEEDED = 4
ICMPV6_PACKET_TOO_BIG = 2
ND_OPT_SOURCE_LLADDR = 1
ND_OPT_TARGET_LLADDR = 2

BROADCAST_MAC = b"\xff" * 6
IPV6_MIN_MTU = 1280
ICMPV4_MAX_ERROR = 576           # RFC 1812 4.3.2.3: an ICMP error datagram need not exceed this

_ETH = struct.Struct("!6s6sH")
_VLAN = struct.Struct("!HH")
_PORTS = struct.Struct("!HH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_MAC = struct.Struct("6s")
_ADDR6 = struct.Struct("16s")


class FrameError(ValueError):
    """A frame is truncated or inconsistent; the message says what and at which byte offset."""


@dataclass(frozen=True, slots=True)
class Frame:
    """The fields of a parsed frame that the controller looks at; absent layers are ``None``.

    Offsets are byte offsets into the frame passed to ``parse_frame``. ``ip_length`` is the IP
    packet's length (IPv4 total length, or 40 + IPv6 payload length), so
    ``data[ip_offset:ip_offset + ip_length]`` is the IP packet without Ethernet padding.
    ``payload_offset`` is the start of the UDP payload for UDP and of the ICMPv6 header for
    ICMPv6.
    """

    eth_dst: str
    eth_src: str
    eth_type: int
    vlan: int | None = None
    ip_version: int | None = None
    ip_src: IPAddress | None = None
    ip_dst: IPAddress | None = None
    ip_proto: int | None = None
    ttl: int | None = None
    ip_offset: int | None = None
    ip_length: int | None = None
    sport: int | None = None
    dport: int | None = None
    payload_offset: int | None = None
    arp_op: int | None = None
    arp_sha: str | None = None
    arp_spa: IPv4Address | None = None
    arp_tha: str | None = None
    arp_tpa: IPv4Address | None = None
    icmpv6_type: int | None = None
    nd_target: IPv6Address | None = None
    nd_lladdr: str | None = None


# ---------------------------------------------------------------------------------------------
# Helpers


def mac_to_bytes(mac: str) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` (or with ``-`` separators, any case) -> 6 bytes; else ValueError."""
    if not isinstance(mac, str):
        raise ValueError(f"MAC address must be a string, got {mac!r}")
    parts = mac.replace("-", ":").split(":")
    if len(parts) != 6 or any(len(p) != 2 for p in parts):
        raise ValueError(f"invalid MAC address {mac!r}")
    try:
        return bytes.fromhex("".join(parts))
    except ValueError:
        raise ValueError(f"invalid MAC address {mac!r}") from None


def bytes_to_mac(raw: bytes) -> str:
    """6 bytes -> ``"aa:bb:cc:dd:ee:ff"``."""
    if len(raw) != 6:
        raise ValueError(f"MAC address must be 6 bytes, got {len(raw)}")
    return raw.hex(":")


# ---------------------------------------------------------------------------------------------
# Parsing


def parse_frame(data: bytes) -> Frame:
    """Decode an Ethernet frame; raise ``FrameError`` if it is truncated or inconsistent.

    ``data`` may be ``bytes``, ``bytearray`` or ``memoryview``. Frames of ethertypes other than
    IPv4, IPv6 and ARP, and ARP other than Ethernet/IPv4, come back with only the Ethernet
    fields (and ``vlan``) set. Bytes after the IP packet (Ethernet padding) are ignored.
    Transport headers are decoded only in an IPv4 packet's first fragment; in a first fragment
    the UDP length is not checked against the (partial) IP payload. Checksums are not verified.
    """
    size = len(data)
    if size < 14:
        raise FrameError(f"Ethernet header truncated: frame is {size} bytes, need 14 at offset 0")
    dst, src, eth_type = _ETH.unpack_from(data, 0)
    offset = 14
    vlan = None
    if eth_type == ETH_TYPE_VLAN:
        if size < 18:
            raise FrameError(f"802.1Q tag truncated: frame is {size} bytes, need 18 at offset 12")
        tci, eth_type = _VLAN.unpack_from(data, 14)
        vlan = tci & 0x0FFF
        offset = 18
    eth_dst = dst.hex(":")
    eth_src = src.hex(":")
    if eth_type == ETH_TYPE_IPV4:
        return _parse_ipv4(data, offset, eth_dst, eth_src, vlan)
    if eth_type == ETH_TYPE_IPV6:
        return _parse_ipv6(data, offset, eth_dst, eth_src, vlan)
    if eth_type == ETH_TYPE_ARP:
        return _parse_arp(data, offset, eth_dst, eth_src, vlan)
    return Frame(eth_dst, eth_src, eth_type, vlan)


def _parse_ipv4(data: bytes, off: int, eth_dst: str, eth_src: str, vlan: int | None) -> Frame:
    size = len(data)
    if size - off < 20:
        raise FrameError(f"IPv4 header truncated at offset {off}: {size - off} bytes, need 20")
    ver_ihl, _tos, total, _ident, frag, ttl, proto, _csum, src, dst = IPV4_HEADER.unpack_from(
        data, off)
    if ver_ihl >> 4 != 4:
        raise FrameError(f"IP version {ver_ihl >> 4} in IPv4 header at offset {off}")
    hlen = (ver_ihl & 0x0F) * 4
    if hlen < 20:
        raise FrameError(f"IPv4 IHL {hlen // 4} < 5 at offset {off}")
    if total < hlen:
        raise FrameError(f"IPv4 total length {total} < header length {hlen} at offset {off + 2}")
    if off + total > size:
        raise FrameError(f"IPv4 total length {total} at offset {off + 2} exceeds the frame "
                         f"({size - off} bytes from offset {off})")
    sport = dport = payload_offset = None
    if not frag & 0x1FFF:                                   # first (or only) fragment
        l4 = off + hlen
        end = off + total
        if proto == IPPROTO_UDP:
            sport, dport, payload_offset = _parse_udp(data, l4, end, partial=bool(frag & 0x2000))
        elif proto == IPPROTO_TCP:
            sport, dport = _parse_tcp(data, l4, end)
    return Frame(eth_dst, eth_src, ETH_TYPE_IPV4, vlan, 4, IPv4Address(src), IPv4Address(dst),
                 proto, ttl, off, total, sport, dport, payload_offset)


def _parse_ipv6(data: bytes, off: int, eth_dst: str, eth_src: str, vlan: int | None) -> Frame:
    size = len(data)
    if size - off < 40:
        raise FrameError(f"IPv6 header truncated at offset {off}: {size - off} bytes, need 40")
    vtf, plen, nxt, hlim, src, dst = IPV6_HEADER.unpack_from(data, off)
    if vtf >> 28 != 6:
        raise FrameError(f"IP version {vtf >> 28} in IPv6 header at offset {off}")
    l4 = off + 40
    end = l4 + plen
    if end > size:
        raise FrameError(f"IPv6 payload length {plen} at offset {off + 4} exceeds the frame "
                         f"({size - l4} bytes from offset {l4})")
    sport = dport = payload_offset = None
    icmp_type = target = lladdr = None
    if nxt == IPPROTO_UDP:
        sport, dport, payload_offset = _parse_udp(data, l4, end, partial=False)
    elif nxt == IPPROTO_TCP:
        sport, dport = _parse_tcp(data, l4, end)
    elif nxt == IPPROTO_ICMPV6:
        if end - l4 < 4:
            raise FrameError(f"ICMPv6 header truncated at offset {l4}: {end - l4} bytes, need 4")
        icmp_type = data[l4]
        payload_offset = l4
        if icmp_type == ND_NEIGHBOR_SOLICIT or icmp_type == ND_NEIGHBOR_ADVERT:
            target, lladdr = _parse_nd(data, l4, end, icmp_type)
    return Frame(eth_dst, eth_src, ETH_TYPE_IPV6, vlan, 6, IPv6Address(src), IPv6Address(dst),
                 nxt, hlim, off, 40 + plen, sport, dport, payload_offset,
                 icmpv6_type=icmp_type, nd_target=target, nd_lladdr=lladdr)


def _parse_udp(data: bytes, l4: int, end: int, partial: bool) -> tuple[int, int, int]:
    if end - l4 < 8:
        raise FrameError(f"UDP header truncated at offset {l4}: {end - l4} bytes, need 8")
    sport, dport, length, _csum = UDP_HEADER.unpack_from(data, l4)
    if length < 8:
        raise FrameError(f"UDP length {length} < 8 at offset {l4 + 4}")
    if not partial and l4 + length > end:
        raise FrameError(f"UDP length {length} at offset {l4 + 4} exceeds the IP payload "
                         f"({end - l4} bytes)")
    return sport, dport, l4 + 8


def _parse_tcp(data: bytes, l4: int, end: int) -> tuple[int, int]:
    if end - l4 < 20:
        raise FrameError(f"TCP header truncated at offset {l4}: {end - l4} bytes, need 20")
    hlen = (data[l4 + 12] >> 4) * 4
    if hlen < 20 or l4 + hlen > end:
        raise FrameError(f"TCP data offset {hlen // 4} at offset {l4 + 12} is inconsistent with "
                         f"the IP payload ({end - l4} bytes)")
    return _PORTS.unpack_from(data, l4)


def _parse_nd(data: bytes, l4: int, end: int, icmp_type: int) -> tuple[IPv6Address, str | None]:
    if end - l4 < 24:
        raise FrameError(f"Neighbor Discovery message truncated at offset {l4}: {end - l4} bytes, "
                         f"need 24")
    target = IPv6Address(_ADDR6.unpack_from(data, l4 + 8)[0])
    wanted = ND_OPT_SOURCE_LLADDR if icmp_type == ND_NEIGHBOR_SOLICIT else ND_OPT_TARGET_LLADDR
    lladdr = None
    opt = l4 + 24
    while opt < end:
        if end - opt < 2:
            raise FrameError(f"ND option header truncated at offset {opt}")
        opt_type = data[opt]
        opt_len = data[opt + 1] * 8
        if opt_len == 0:
            raise FrameError(f"ND option of length 0 at offset {opt}")
        if opt + opt_len > end:
            raise FrameError(f"ND option of {opt_len} bytes at offset {opt} exceeds the ICMPv6 "
                             f"message ({end - opt} bytes left)")
        if opt_type == wanted and lladdr is None:
            lladdr = _MAC.unpack_from(data, opt + 2)[0].hex(":")
        opt += opt_len
    return target, lladdr


def _parse_arp(data: bytes, off: int, eth_dst: str, eth_src: str, vlan: int | None) -> Frame:
    size = len(data)
    if size - off < 8:
        raise FrameError(f"ARP header truncated at offset {off}: {size - off} bytes, need 8")
    if bytes(data[off:off + 6]) != b"\x00\x01\x08\x00\x06\x04":   # not Ethernet/IPv4
        return Frame(eth_dst, eth_src, ETH_TYPE_ARP, vlan)
    if size - off < 28:
        raise FrameError(f"ARP packet truncated at offset {off}: {size - off} bytes, need 28")
    _h, _p, _hl, _pl, op, sha, spa, tha, tpa = _ARP.unpack_from(data, off)
    return Frame(eth_dst, eth_src, ETH_TYPE_ARP, vlan, arp_op=op, arp_sha=sha.hex(":"),
                 arp_spa=IPv4Address(spa), arp_tha=tha.hex(":"), arp_tpa=IPv4Address(tpa))


# ---------------------------------------------------------------------------------------------
# Building


def _ethernet(dst: bytes, src: str, eth_type: int) -> bytes:
    return _ETH.pack(dst, mac_to_bytes(src), eth_type)


def _ip_frame(eth_src: str, eth_dst: bytes, ip_src: IPAddress, ip_dst: IPAddress, proto: int,
              message: bytes, ttl: int) -> bytes:
    """Ethernet + an IPv4 header (no options, identification 0, DF clear) or an IPv6 header
    around ``message``."""
    if ip_src.version == 4:
        total = 20 + len(message)
        if total > 0xFFFF:
            raise ValueError(f"IPv4 packet of {total} bytes exceeds 65535")
        if not 0 <= ttl <= 255:
            raise ValueError(f"TTL {ttl} out of range 0..255")
        return (_ethernet(eth_dst, eth_src, ETH_TYPE_IPV4)
                + ipv4_header(ip_src, ip_dst, proto, len(message), ttl) + message)
    if len(message) > 0xFFFF:
        raise ValueError(f"IPv6 payload of {len(message)} bytes exceeds 65535")
    if not 0 <= ttl <= 255:
        raise ValueError(f"hop limit {ttl} out of range 0..255")
    return (_ethernet(eth_dst, eth_src, ETH_TYPE_IPV6)
            + ipv6_header(ip_src, ip_dst, proto, len(message), ttl) + message)


def _check_pair(ip_src: object, ip_dst: object) -> None:
    if not isinstance(ip_src, (IPv4Address, IPv6Address)) or type(ip_src) is not type(ip_dst):
        raise ValueError(f"source {ip_src!r} and destination {ip_dst!r} must be IP addresses of "
                         f"the same family")


def _check_v6(**addresses: object) -> None:
    for name, value in addresses.items():
        if not isinstance(value, IPv6Address):
            raise ValueError(f"{name} must be an IPv6Address, got {value!r}")


def udp_frame(eth_src: str, eth_dst: str, ip_src: IPAddress, ip_dst: IPAddress, sport: int,
              dport: int, payload: bytes, ttl: int = 64) -> bytes:
    """Ethernet + IPv4 or IPv6 (by address family) + UDP, all checksums computed.

    IPv4: no options, identification 0, DF clear. The UDP checksum is always computed (a
    computed 0 is sent as 0xFFFF). ``ttl`` is the IPv6 hop limit for IPv6.
    """
    _check_pair(ip_src, ip_dst)
    if not (0 <= sport <= 0xFFFF and 0 <= dport <= 0xFFFF):
        raise ValueError(f"UDP ports {sport}, {dport} out of range 0..65535")
    length = 8 + len(payload)
    if length > 0xFFFF:
        raise ValueError(f"UDP datagram of {length} bytes exceeds 65535")
    datagram = udp_datagram(ip_src, ip_dst, sport, dport, bytes(payload))
    return _ip_frame(eth_src, mac_to_bytes(eth_dst), ip_src, ip_dst, IPPROTO_UDP, datagram, ttl)


def arp_request(eth_src: str, ip_src: IPv4Address, target: IPv4Address) -> bytes:
    """A broadcast ARP request "who has ``target``? tell ``ip_src``" (no Ethernet padding)."""
    if not isinstance(ip_src, IPv4Address) or not isinstance(target, IPv4Address):
        raise ValueError(f"ARP needs IPv4 addresses, got {ip_src!r} and {target!r}")
    sha = mac_to_bytes(eth_src)
    return (_ETH.pack(BROADCAST_MAC, sha, ETH_TYPE_ARP)
            + _ARP.pack(1, ETH_TYPE_IPV4, 6, 4, 1, sha, ip_src.packed, bytes(6), target.packed))


def solicited_node(address: IPv6Address) -> IPv6Address:
    """The solicited-node multicast address ff02::1:ffXX:XXXX of ``address``."""
    return IPv6Address(b"\xff\x02" + bytes(9) + b"\x01\xff" + address.packed[13:])


def _icmpv6_frame(eth_src: str, eth_dst: bytes, ip_src: IPv6Address, ip_dst: IPv6Address,
                  message: bytes, hop_limit: int) -> bytes:
    message = with_checksum(message, 2,
                            pseudo_header(ip_src, ip_dst, IPPROTO_ICMPV6, len(message)))
    return _ip_frame(eth_src, eth_dst, ip_src, ip_dst, IPPROTO_ICMPV6, message, hop_limit)


def neighbor_solicitation(eth_src: str, ip_src: IPv6Address, target: IPv6Address) -> bytes:
    """A Neighbor Solicitation for ``target`` to its solicited-node group, hop limit 255.

    Carries a source link-layer address option (``eth_src``) unless ``ip_src`` is the
    unspecified address (duplicate address detection), where RFC 4861 7.1.1 forbids it.
    """
    _check_v6(ip_src=ip_src, target=target)
    group = solicited_node(target)
    message = struct.pack("!BBHI16s", ND_NEIGHBOR_SOLICIT, 0, 0, 0, target.packed)
    if not ip_src.is_unspecified:
        message += struct.pack("!BB6s", ND_OPT_SOURCE_LLADDR, 1, mac_to_bytes(eth_src))
    return _icmpv6_frame(eth_src, b"\x33\x33" + group.packed[12:], ip_src, group, message, 255)


def neighbor_advertisement(eth_src: str, eth_dst: str, ip_src: IPv6Address, ip_dst: IPv6Address,
                           target: IPv6Address, router: bool = True,
                           solicited: bool = True) -> bytes:
    """A Neighbor Advertisement for ``target`` (Override set), hop limit 255, with a target
    link-layer address option carrying ``eth_src``."""
    _check_v6(ip_src=ip_src, ip_dst=ip_dst, target=target)
    flags = (0x80 if router else 0) | (0x40 if solicited else 0) | 0x20
    message = struct.pack("!BBHB3x16sBB6s", ND_NEIGHBOR_ADVERT, 0, 0, flags, target.packed,
                          ND_OPT_TARGET_LLADDR, 1, mac_to_bytes(eth_src))
    return _icmpv6_frame(eth_src, mac_to_bytes(eth_dst), ip_src, ip_dst, message, 255)


def icmp_too_big(original: bytes, frame: Frame, mtu: int, eth_src: str, ip_src: IPAddress) -> bytes:
    """The ICMP error telling the sender of ``original`` (parsed as ``frame``) that it exceeds
    ``mtu``: "fragmentation needed" (type 3 code 4, RFC 1191) for IPv4, quoting up to 548 bytes
    of the original packet (RFC 1812 4.3.2.3); "packet too big" (ICMPv6 type 2) for IPv6,
    quoting as much as fits a 1280-byte packet (RFC 4443). Sent untagged from ``eth_src`` to
    the frame's Ethernet source, from ``ip_src`` to the packet's source, TTL 64.

    Whether an error may be sent at all (e.g. not in reply to an ICMP error, a multicast
    source or a non-first fragment) is the caller's decision.
    """
    if frame.ip_version is None or frame.ip_offset is None or frame.ip_length is None:
        raise ValueError("icmp_too_big needs an IP frame")
    packet = original[frame.ip_offset:frame.ip_offset + frame.ip_length]
    if len(packet) != frame.ip_length:
        raise ValueError("original frame is shorter than the IP packet its Frame describes")
    dst_mac = mac_to_bytes(frame.eth_src)
    if frame.ip_version == 4:
        if not isinstance(ip_src, IPv4Address):
            raise ValueError(f"ip_src {ip_src!r} must be IPv4 for an IPv4 frame")
        if not 0 <= mtu <= 0xFFFF:
            raise ValueError(f"next-hop MTU {mtu} out of range 0..65535")
        quote = packet[:ICMPV4_MAX_ERROR - 20 - 8]
        message = struct.pack("!BBHHH", ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 0, 0, mtu) + quote
        message = with_checksum(message, 2)
        return _ip_frame(eth_src, dst_mac, ip_src, frame.ip_src, IPPROTO_ICMP, message, 64)
    if not isinstance(ip_src, IPv6Address):
        raise ValueError(f"ip_src {ip_src!r} must be IPv6 for an IPv6 frame")
    if not 0 <= mtu <= 0xFFFFFFFF:
        raise ValueError(f"MTU {mtu} out of range 0..2**32-1")
    quote = packet[:IPV6_MIN_MTU - 40 - 8]
    message = struct.pack("!BBHI", ICMPV6_PACKET_TOO_BIG, 0, 0, mtu) + quote
    return _icmpv6_frame(eth_src, dst_mac, ip_src, frame.ip_src, message, 64)
