"""Encapsulated Control Message (RFC 9301 section 5.8): a control message inside an inner IPv4 or
IPv6 + UDP header, as ITRs send Map-Requests to Map-Resolvers and Map-Servers forward them to ETRs.

The inner headers are checked as a receiver must trust them: IP version, header and total length,
protocol UDP, no fragment, IPv4 header checksum, UDP length, UDP checksum (zero means none, as many
implementations send it). IPv4 options and IPv6 extension headers are refused as unsupported.
An ECM never nests inside another.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Callable, ClassVar

from .errors import DecodeError, EncodeError, check_range
from .inet import (DONT_FRAGMENT, IPV4_HEADER_INTS, IPV6_HEADER, UDP_HEADER, internet_checksum,
                   ipv4_header, ipv6_header, pseudo_header_tail, udp_datagram)
from .numbers import IPPROTO_UDP, LISP_CONTROL_PORT

__all__ = ["EncapsulatedControlMessage", "LISP_CONTROL_PORT", "decode_ecm", "internet_checksum"]


@dataclass(frozen=True, slots=True)
class EncapsulatedControlMessage:
    """An ECM: flags S ``security``, D ``ddt_originated``, E ``to_etr``, M ``to_ms``; the inner
    header's fields; and ``message``, the control message inside (usually a Map-Request)."""

    TYPE: ClassVar[int] = 8

    source: IPv4Address | IPv6Address
    destination: IPv4Address | IPv6Address
    message: object
    source_port: int = LISP_CONTROL_PORT
    dest_port: int = LISP_CONTROL_PORT
    ttl: int = 64
    tos: int = 0
    ip_id: int = 0
    dont_fragment: bool = False
    flow_label: int = 0
    udp_checksum: bool = True
    security: bool = False
    ddt_originated: bool = False
    to_etr: bool = False
    to_ms: bool = False

    def encode(self) -> bytes:
        src, dst = self.source, self.destination
        if type(src) not in (IPv4Address, IPv6Address) or type(dst) is not type(src):
            raise EncodeError(f"ECM inner source {src!r} and destination {dst!r} must be IP "
                              "addresses of one family")
        if isinstance(self.message, EncapsulatedControlMessage):
            raise EncodeError("an ECM cannot carry another ECM")
        for name, bits in (("source_port", 16), ("dest_port", 16), ("ttl", 8), ("tos", 8),
                           ("ip_id", 16), ("flow_label", 20)):
            check_range(name, getattr(self, name), bits)
        inner = self.message.encode()
        udp_len = 8 + len(inner)
        if src.version == 4:
            if self.flow_label:
                raise EncodeError("flow_label is an IPv6 field; this ECM's inner header is IPv4")
            total = 20 + udp_len
            if total > 0xFFFF:
                raise EncodeError(f"ECM inner packet of {total} bytes exceeds 65535")
            head = ipv4_header(src, dst, IPPROTO_UDP, udp_len, self.ttl, self.tos, self.ip_id,
                               DONT_FRAGMENT if self.dont_fragment else 0)
        else:
            if self.ip_id or self.dont_fragment:
                raise EncodeError("ip_id and dont_fragment are IPv4 fields; this ECM's inner "
                                  "header is IPv6")
            if udp_len > 0xFFFF:
                raise EncodeError(f"ECM inner payload of {udp_len} bytes exceeds 65535")
            head = ipv6_header(src, dst, IPPROTO_UDP, udp_len, self.ttl, self.tos, self.flow_label)
        b0 = (0x80 | self.security << 3 | self.ddt_originated << 2 | self.to_etr << 1
              | self.to_ms)
        udp = udp_datagram(src, dst, self.source_port, self.dest_port, inner, self.udp_checksum)
        return bytes((b0, 0, 0, 0)) + head + udp


def decode_ecm(data: bytes, off: int, end: int,
               decode_inner: Callable[[bytes, int, int], object]) -> EncapsulatedControlMessage:
    """Decode the ECM in ``data[off:end]``; ``decode_inner(data, start, end)`` decodes the control
    message it carries (``protocol.control`` supplies it, refusing a nested ECM)."""
    if end - off < 4:
        raise DecodeError(f"ECM: truncated header ({end - off} of 4 bytes)", off)
    flags = data[off] & 0x0F
    ip = off + 4
    if end - ip < 1:
        raise DecodeError("ECM: no inner IP header", ip)
    version = data[ip] >> 4
    if version == 4:
        if end - ip < 20:
            raise DecodeError(f"ECM: truncated inner IPv4 header ({end - ip} of 20 bytes)", ip)
        vihl, tos, total, ip_id, frag, ttl, proto, _csum, s, d = IPV4_HEADER_INTS.unpack_from(
            data, ip)
        if vihl & 0x0F != 5:
            raise DecodeError(f"ECM: inner IPv4 header length {4 * (vihl & 0x0F)} is not 20 "
                              "(options are not supported)", ip)
        if total != end - ip:
            raise DecodeError(f"ECM: inner IPv4 total length {total} but {end - ip} bytes follow",
                              ip + 2)
        if frag & 0x3FFF:
            raise DecodeError("ECM: inner IPv4 packet is a fragment", ip + 6)
        if internet_checksum(bytes(data[ip:ip + 20])) != 0:
            raise DecodeError("ECM: inner IPv4 header checksum is wrong", ip + 10)
        src, dst = IPv4Address(s), IPv4Address(d)
        dont_fragment, flow_label = bool(frag & 0x4000), 0
        udp = ip + 20
        addresses = bytes(data[ip + 12:udp])  # source and destination, as in the pseudo-header
    elif version == 6:
        if end - ip < 40:
            raise DecodeError(f"ECM: truncated inner IPv6 header ({end - ip} of 40 bytes)", ip)
        word, plen, proto, ttl, s, d = IPV6_HEADER.unpack_from(data, ip)
        if plen != end - ip - 40:
            raise DecodeError(f"ECM: inner IPv6 payload length {plen} but {end - ip - 40} bytes "
                              "follow", ip + 4)
        src, dst = IPv6Address(s), IPv6Address(d)
        tos, flow_label, ip_id, dont_fragment = word >> 20 & 0xFF, word & 0xFFFFF, 0, False
        udp = ip + 40
        addresses = bytes(data[ip + 8:udp])
    else:
        raise DecodeError(f"ECM: inner IP version {version} is neither 4 nor 6", ip)
    if proto != IPPROTO_UDP:
        raise DecodeError(f"ECM: inner protocol {proto} is not UDP", ip + (9 if version == 4 else 6))
    if end - udp < 8:
        raise DecodeError(f"ECM: truncated inner UDP header ({end - udp} of 8 bytes)", udp)
    sport, dport, ulen, ucsum = UDP_HEADER.unpack_from(data, udp)
    if ulen != end - udp:
        raise DecodeError(f"ECM: inner UDP length {ulen} but {end - udp} bytes follow", udp + 4)
    if ucsum:
        tail = pseudo_header_tail(version, IPPROTO_UDP, ulen)  # after the addresses
        if internet_checksum(addresses + tail + bytes(data[udp:end])) != 0:
            raise DecodeError("ECM: inner UDP checksum is wrong", udp + 6)
    message = decode_inner(data, udp + 8, end)
    return EncapsulatedControlMessage(src, dst, message, sport, dport, ttl, tos, ip_id,
                                      dont_fragment, flow_label, bool(ucsum), bool(flags & 8),
                                      bool(flags & 4), bool(flags & 2), bool(flags & 1))

