"""Map-Request (RFC 9301 section 5.2): the question an ITR asks about an EID."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from .addresses import NO_ADDRESS, Address, decode_address, encode_address
from .errors import DecodeError, EncodeError, check_range
from .records import EidRecord, MappingRecord, decode_eid_record, decode_mapping_record

HEADER = struct.Struct("!BBBBQ")  # Type|A|M|P|S, p|s|R|R|Rsvd, Rsvd|L|D|IRC, Record Count, Nonce


@dataclass(frozen=True, slots=True)
class MapRequest:
    """A Map-Request. The IRC, the record count and the M bit are computed from the tuples
    (``itr_rlocs`` holds 1 to 32 addresses; ``map_reply_record`` set means M=1).

    Flags: A ``authoritative``, P ``probe`` (RLOC-probe), S ``smr`` (solicit-Map-Request),
    p ``pitr``, s ``smr_invoked``, and RFC 9301's L ``local_xtr`` and D ``dont_map_reply``.
    The two R bits and the Rsvd field are reserved: sent as zero, ignored on receipt.
    """

    TYPE: ClassVar[int] = 1

    nonce: int
    records: tuple[EidRecord, ...]
    itr_rlocs: tuple[Address, ...]
    source_eid: Address = NO_ADDRESS
    authoritative: bool = False
    probe: bool = False
    smr: bool = False
    pitr: bool = False
    smr_invoked: bool = False
    local_xtr: bool = False
    dont_map_reply: bool = False
    map_reply_record: MappingRecord | None = None

    def encode(self) -> bytes:
        check_range("nonce", self.nonce, 64)
        n_itr = len(self.itr_rlocs)
        if not 1 <= n_itr <= 32:
            raise EncodeError(f"a Map-Request carries 1 to 32 ITR-RLOCs, not {n_itr}")
        if not 1 <= len(self.records) <= 255:
            raise EncodeError(f"a Map-Request carries 1 to 255 EID records, not {len(self.records)}")
        mrr = self.map_reply_record
        b0 = (0x10 | self.authoritative << 3 | (mrr is not None) << 2 | self.probe << 1
              | self.smr)
        b1 = self.pitr << 7 | self.smr_invoked << 6
        b2 = self.local_xtr << 6 | self.dont_map_reply << 5 | (n_itr - 1)
        parts = [HEADER.pack(b0, b1, b2, len(self.records), self.nonce),
                 encode_address(self.source_eid)]
        parts.extend(encode_address(a) for a in self.itr_rlocs)
        parts.extend(r.encode() for r in self.records)
        if mrr is not None:
            parts.append(mrr.encode())
        return b"".join(parts)


def decode_map_request(data: bytes, off: int, end: int) -> MapRequest:
    if end - off < 12:
        raise DecodeError(f"Map-Request: truncated header ({end - off} of 12 bytes)", off)
    b0, b1, b2, count, nonce = HEADER.unpack_from(data, off)
    if count == 0:
        raise DecodeError("Map-Request: record count is 0", off + 3)
    source_eid, pos = decode_address(data, off + 12, end, "Map-Request source EID")
    n_itr = (b2 & 0x1F) + 1
    rlocs = []
    for i in range(n_itr):
        rloc, pos = decode_address(data, pos, end, f"Map-Request ITR-RLOC {i + 1} of {n_itr}")
        rlocs.append(rloc)
    records = []
    for i in range(count):
        rec, pos = decode_eid_record(data, pos, end, f"Map-Request record {i + 1} of {count}")
        records.append(rec)
    mrr = None
    if b0 & 0x04:
        mrr, pos = decode_mapping_record(data, pos, end, "Map-Request Map-Reply record")
    if pos != end:
        raise DecodeError(f"Map-Request: {end - pos} bytes of trailing data", pos)
    return MapRequest(nonce, tuple(records), tuple(rlocs), source_eid, bool(b0 & 8), bool(b0 & 2),
                      bool(b0 & 1), bool(b1 & 0x80), bool(b1 & 0x40), bool(b2 & 0x40),
                      bool(b2 & 0x20), mrr)
