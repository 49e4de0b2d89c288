"""The LISP data-plane header (8 bytes after UDP 4341): classic RFC 9300 and RFC 9305 LISP-GPE.

    |N|L|E|V|I|P|K|K|  Nonce / Map-Version / (GPE: reserved, Next Protocol)  |
    |  Instance ID (24) | LSBs (8)   -- or, without I, 32 Locator-Status-Bits  |

Open vSwitch's VXLAN-GPE port on UDP 4341 sends ``0c 00 00 01 | IID 00`` (I and P set, next
protocol IPv4) and accepts only that shape; classic ETRs read the P bit as reserved.

:func:`entropy_source_port` gives the outer UDP source port for an inner flow, the same in every
process.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from .errors import DecodeError, EncodeError, check_range
from .numbers import LISP_DATA_PORT

__all__ = ["DataHeader", "ENTROPY_PORT_BASE", "GPE_ETHERNET", "GPE_IPV4", "GPE_IPV6", "GPE_NSH",
           "HEADER_LEN", "LISP_DATA_PORT", "decode_data_header", "entropy_source_port"]
HEADER_LEN = 8

GPE_IPV4 = 1
GPE_IPV6 = 2
GPE_ETHERNET = 3
GPE_NSH = 4

_N, _L, _E, _V, _I, _P = 0x80, 0x40, 0x20, 0x10, 0x08, 0x04
_WORDS = struct.Struct("!II")


@dataclass(frozen=True, slots=True)
class DataHeader:
    """A LISP data header. A field that is None is absent (its flag bit is clear):
    ``nonce`` (N, 24 bits), ``map_version`` (V, (source, destination) 12 bits each),
    ``instance_id`` (I, 24 bits), ``lsbs`` (L: 8 bits beside an instance-id, else 32),
    ``next_protocol`` (P, LISP-GPE). ``echo_nonce`` is the E bit (only with a nonce; a received E
    without N is ignored, as RFC 9300 says), ``key_id`` the K bits (RFC 8061)."""

    instance_id: int | None = None
    lsbs: int | None = None
    nonce: int | None = None
    echo_nonce: bool = False
    map_version: tuple[int, int] | None = None
    next_protocol: int | None = None
    key_id: int = 0

    @classmethod
    def gpe(cls, instance_id: int, next_protocol: int = GPE_IPV4) -> "DataHeader":
        """The header Open vSwitch's GPE port sends and accepts."""
        return cls(instance_id=instance_id, next_protocol=next_protocol)

    def encode(self) -> bytes:
        if self.nonce is not None and self.map_version is not None:
            raise EncodeError("the N and V bits exclude each other")
        if self.next_protocol is not None and (self.nonce is not None
                                               or self.map_version is not None):
            raise EncodeError("LISP-GPE (P bit) carries neither nonce nor map-version")
        if self.echo_nonce and self.nonce is None:
            raise EncodeError("the E bit (echo-nonce request) needs a nonce (N bit)")
        check_range("key_id", self.key_id, 2)
        flags = self.key_id
        word0 = 0
        if self.nonce is not None:
            check_range("nonce", self.nonce, 24)
            flags |= _N
            word0 = self.nonce
        elif self.map_version is not None:
            src, dst = self.map_version
            check_range("source map-version", src, 12)
            check_range("destination map-version", dst, 12)
            flags |= _V
            word0 = src << 12 | dst
        elif self.next_protocol is not None:
            check_range("next_protocol", self.next_protocol, 8)
            flags |= _P
            word0 = self.next_protocol
        if self.echo_nonce:
            flags |= _E
        word1 = 0
        if self.instance_id is not None:
            check_range("instance_id", self.instance_id, 24)
            flags |= _I
            word1 = self.instance_id << 8
            if self.lsbs is not None:
                check_range("lsbs (beside an instance-id)", self.lsbs, 8)
                word1 |= self.lsbs
        elif self.lsbs is not None:
            check_range("lsbs", self.lsbs, 32)
            word1 = self.lsbs
        if self.lsbs is not None:
            flags |= _L
        return _WORDS.pack(flags << 24 | word0, word1)


def decode_data_header(data: bytes, off: int = 0) -> tuple[DataHeader, int]:
    """Decode the header at ``data[off:]``; return it and the offset of the inner packet.
    Reserved fields are ignored, as RFC 9300 asks of an ETR."""
    if not 0 <= off <= len(data):
        raise DecodeError(f"LISP data header: offset {off} is outside the {len(data)}-byte buffer",
                          max(0, min(off, len(data))))
    if len(data) - off < HEADER_LEN:
        raise DecodeError(f"LISP data header: truncated ({len(data) - off} of 8 bytes)", off)
    w0, w1 = _WORDS.unpack_from(data, off)
    flags = w0 >> 24
    word0 = w0 & 0xFFFFFF
    if flags & _N and flags & _V:
        raise DecodeError("LISP data header: N and V bits both set", off)
    if flags & _P and flags & (_N | _V):
        raise DecodeError("LISP-GPE header (P bit) with a nonce or map-version", off)
    nonce = word0 if flags & _N else None
    version = (word0 >> 12, word0 & 0xFFF) if flags & _V else None
    next_protocol = word0 & 0xFF if flags & _P else None
    lsbs = None
    if flags & _I:
        iid = w1 >> 8
        if flags & _L:
            lsbs = w1 & 0xFF
    else:
        iid = None
        if flags & _L:
            lsbs = w1
    echo = bool(flags & _E) and nonce is not None  # RFC 9300: E without N is ignored
    return DataHeader(iid, lsbs, nonce, echo, version, next_protocol, flags & 0x03), \
        off + HEADER_LEN


ENTROPY_PORT_BASE = 0xC000  # entropy source ports lie in 0xC000..0xFFFF (the dynamic range)
_PORT_FIELD = struct.Struct("!BH")


def entropy_source_port(src: IPv4Address | IPv6Address | None,
                        dst: IPv4Address | IPv6Address | None, sport: int | None,
                        dport: int | None) -> int:
    """The outer UDP source port for an encapsulated (or data-probe) packet of the inner flow
    ``src``:``sport`` -> ``dst``:``dport`` (RFC 9300 5.3: a hash of the inner headers, so that
    the underlay spreads flows and keeps each one on one path). Absent fields are None.

    Deterministic: a CRC-32 of the packed fields, so every process (whatever PYTHONHASHSEED)
    and every run gives a flow the same port, in 0xC000..0xFFFF."""
    data = b"".join((_address_field(src), _address_field(dst), _port_field(sport),
                     _port_field(dport)))
    crc = zlib.crc32(data)
    return ENTROPY_PORT_BASE | (crc ^ crc >> 16) & 0x3FFF


def _address_field(address) -> bytes:
    if address is None:
        return b"\0"
    if type(address) not in (IPv4Address, IPv6Address):
        raise TypeError(f"entropy_source_port: {address!r} is not an IP address or None")
    return bytes((address.version,)) + address.packed


def _port_field(port) -> bytes:
    if port is None:
        return b"\0"
    if type(port) is not int or not 0 <= port <= 0xFFFF:
        raise ValueError(f"entropy_source_port: port {port!r} is not a number in 0..65535")
    return _PORT_FIELD.pack(1, port)
