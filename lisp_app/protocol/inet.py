"""IPv4, IPv6 and UDP headers as bytes, pure (no I/O): the Internet checksum (RFC 1071), the
pseudo-headers of the UDP/ICMPv6 checksums, and the header builders that the ECM codec and the
frame builders share. The builders only pack: range checks, with the caller's own wording, are the
caller's; a field out of range for its width raises ``struct.error``."""

from __future__ import annotations

import struct
import sys
from array import array
from ipaddress import IPv4Address, IPv6Address

from .numbers import IPPROTO_UDP

IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")    # no options: ver/ihl ... checksum, src, dst
IPV4_HEADER_INTS = struct.Struct("!BBHHHBBHII")  # the same, addresses as integers (decoding)
IPV6_HEADER = struct.Struct("!IHBB16s16s")      # ver/tc/flow, payload length, next, hops, addrs
UDP_HEADER = struct.Struct("!HHHH")             # ports, length, checksum

_U16 = struct.Struct("!H")
_PSEUDO_TAIL_V4 = struct.Struct("!BBH")    # zero, protocol, length
_PSEUDO_TAIL_V6 = struct.Struct("!IxxxB")  # length, 3 zero bytes, next header
_LITTLE = sys.byteorder == "little"

DONT_FRAGMENT = 0x4000  # the IPv4 DF flag, in the flags/fragment-offset field


def internet_checksum(data: bytes) -> int:
    """The RFC 1071 ones'-complement checksum of ``data`` (odd lengths padded with a zero byte).

    Summed in native byte order (RFC 1071 1.2.B: the sum is byte-order independent), then
    swapped to network order. 0 over a received header with its checksum means it is right."""
    if type(data) is not bytes:
        data = bytes(data)
    if len(data) & 1:
        data += b"\0"
    total = sum(array("H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    total = ~total & 0xFFFF
    return ((total & 0xFF) << 8 | total >> 8) if _LITTLE else total


def pseudo_header_tail(version: int, proto: int, length: int) -> bytes:
    """What follows the two addresses in the IPv4 (``version`` 4) or IPv6 pseudo-header."""
    if version == 4:
        return _PSEUDO_TAIL_V4.pack(0, proto, length)
    return _PSEUDO_TAIL_V6.pack(length, proto)


def pseudo_header(src: IPv4Address | IPv6Address, dst: IPv4Address | IPv6Address, proto: int,
                  length: int) -> bytes:
    """The pseudo-header a UDP, TCP or ICMPv6 checksum covers (RFC 768, RFC 8200 8.1)."""
    return src.packed + dst.packed + pseudo_header_tail(src.version, proto, length)


def with_checksum(message: bytes, at: int, pseudo: bytes = b"", zero_as_ffff: bool = False
                  ) -> bytes:
    """``message`` with the checksum of ``pseudo + message`` written at byte ``at`` (where
    ``message`` holds zeros). ``zero_as_ffff``: a computed 0 is sent as 0xFFFF (UDP)."""
    csum = internet_checksum(pseudo + message)
    if zero_as_ffff and csum == 0:
        csum = 0xFFFF
    return message[:at] + _U16.pack(csum) + message[at + 2:]


def ipv4_header(src: IPv4Address, dst: IPv4Address, proto: int, payload_len: int, ttl: int,
                tos: int = 0, ident: int = 0, frag: int = 0) -> bytes:
    """A 20-byte IPv4 header (no options) with its checksum; ``frag`` is the flags/fragment
    offset field (:data:`DONT_FRAGMENT` for DF)."""
    head = IPV4_HEADER.pack(0x45, tos, 20 + payload_len, ident, frag, ttl, proto, 0, src.packed,
                            dst.packed)
    return head[:10] + _U16.pack(internet_checksum(head)) + head[12:]


def ipv6_header(src: IPv6Address, dst: IPv6Address, next_header: int, payload_len: int,
                hop_limit: int, traffic_class: int = 0, flow_label: int = 0) -> bytes:
    """A 40-byte IPv6 header (no extension headers)."""
    return IPV6_HEADER.pack(6 << 28 | traffic_class << 20 | flow_label, payload_len, next_header,
                            hop_limit, src.packed, dst.packed)


def udp_datagram(src: IPv4Address | IPv6Address, dst: IPv4Address | IPv6Address, sport: int,
                 dport: int, payload: bytes, checksum: bool = True) -> bytes:
    """UDP header + ``payload``; with ``checksum`` the checksum over the pseudo-header of
    ``src``/``dst`` is computed (a computed 0 is sent as 0xFFFF), else the field is 0."""
    length = 8 + len(payload)
    csum = 0
    if checksum:
        tail = (_PSEUDO_TAIL_V4.pack(0, IPPROTO_UDP, length) if src.version == 4
                else _PSEUDO_TAIL_V6.pack(length, IPPROTO_UDP))  # pseudo_header(), inlined
        csum = internet_checksum(src.packed + dst.packed + tail
                                 + UDP_HEADER.pack(sport, dport, length, 0) + payload) or 0xFFFF
    return UDP_HEADER.pack(sport, dport, length, csum) + payload
