"""Map-Reply (RFC 9301 section 5.4): the mappings an ETR (or a Map-Server proxying) returns."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from .errors import DecodeError, EncodeError, check_range
from .records import MappingRecord, decode_mapping_records

HEADER = struct.Struct("!BBBBQ")  # Type|P|E|S|Rsvd, Reserved x2, Record Count, Nonce


@dataclass(frozen=True, slots=True)
class MapReply:
    """A Map-Reply: P ``probe`` (an RLOC-probe reply), E ``echo_nonce_capable``, S ``security``.
    With S set, whatever follows the records is LISP-SEC data (RFC 9303), kept as
    ``security_data``; without it, bytes after the records are an error."""

    TYPE: ClassVar[int] = 2

    nonce: int
    records: tuple[MappingRecord, ...] = field(default=())
    probe: bool = False
    echo_nonce_capable: bool = False
    security: bool = False
    security_data: bytes = b""

    def encode(self) -> bytes:
        check_range("nonce", self.nonce, 64)
        if len(self.records) > 255:
            raise EncodeError(f"{len(self.records)} records in one Map-Reply (at most 255)")
        if self.security_data and not self.security:
            raise EncodeError("security_data without the S bit")
        b0 = 0x20 | self.probe << 3 | self.echo_nonce_capable << 2 | self.security << 1
        return b"".join([HEADER.pack(b0, 0, 0, len(self.records), self.nonce),
                         *(r.encode() for r in self.records), self.security_data])


def with_nonce(encoded: bytes, nonce: int) -> bytes:
    """An encoded Map-Reply with its nonce replaced: what ``replace(reply, nonce=nonce).encode()``
    gives, without encoding the records again (for answers that differ only in the nonce)."""
    check_range("nonce", nonce, 64)
    return encoded[:4] + nonce.to_bytes(8, "big") + encoded[12:]


def decode_map_reply(data: bytes, off: int, end: int) -> MapReply:
    if end - off < 12:
        raise DecodeError(f"Map-Reply: truncated header ({end - off} of 12 bytes)", off)
    b0, _r1, _r2, count, nonce = HEADER.unpack_from(data, off)
    records, pos = decode_mapping_records(data, off + 12, end, count, "Map-Reply")
    security = bool(b0 & 2)
    if pos != end and not security:
        raise DecodeError(f"Map-Reply: {end - pos} bytes of trailing data", pos)
    return MapReply(nonce, records, bool(b0 & 8), bool(b0 & 4), security, bytes(data[pos:end]))
