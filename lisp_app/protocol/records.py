"""The records that Map-Request, Map-Reply, Map-Register and Map-Notify carry (RFC 9301 5.2-5.7).

- :class:`EidRecord`: a Map-Request's "Rec" (EID mask-len and EID-prefix);
- :class:`MappingRecord`: a Map-Reply record (TTL, ACT, A bit, map-version, EID prefix, locators);
- :class:`Locator`: one RLOC of a mapping record (priority, weight, L/p/R bits).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from .addresses import Address, EidPrefix, decode_address, encode_address, max_mask_len
from .errors import DecodeError, EncodeError, check_range


class Action(IntEnum):
    """A Map-Reply record's ACT field: what to do with packets when there are no locators."""

    NO_ACTION = 0
    NATIVELY_FORWARD = 1
    SEND_MAP_REQUEST = 2
    DROP_NO_REASON = 3
    DROP_POLICY_DENIED = 4
    DROP_AUTH_FAILURE = 5


_EID_REC = struct.Struct("!BB")  # Reserved, EID mask-len
_MAP_REC = struct.Struct("!IBBHH")  # TTL, Locator Count, EID mask-len, ACT|A|Reserved, Rsvd|Version
_LOC = struct.Struct("!BBBBH")  # Priority, Weight, M Priority, M Weight, Unused Flags|L|p|R


def _check_mask(what: str, addr: Address, mask_len: int, offset: int) -> None:
    limit = max_mask_len(addr)
    if limit is not None and mask_len > limit:
        raise DecodeError(f"{what}: EID mask-len {mask_len} exceeds {limit}", offset)


def _check_mask_encodable(addr: Address, mask_len: int) -> None:
    check_range("EID mask_len", mask_len, 8)
    limit = max_mask_len(addr)
    if limit is not None and mask_len > limit:
        raise EncodeError(f"EID mask_len {mask_len} exceeds {limit} for {addr}")


@dataclass(frozen=True, slots=True)
class EidRecord:
    """One EID-prefix a Map-Request asks about."""

    eid: Address
    mask_len: int

    @classmethod
    def for_prefix(cls, prefix: EidPrefix) -> "EidRecord":
        return cls(*prefix.to_wire())

    @property
    def prefix(self) -> EidPrefix:
        return EidPrefix.from_wire(self.eid, self.mask_len)

    def encode(self) -> bytes:
        _check_mask_encodable(self.eid, self.mask_len)
        return _EID_REC.pack(0, self.mask_len) + encode_address(self.eid)


def decode_eid_record(data: bytes, off: int, end: int, what: str) -> tuple[EidRecord, int]:
    if end - off < 2:
        raise DecodeError(f"{what}: truncated", off)
    mask_len = data[off + 1]
    eid, pos = decode_address(data, off + 2, end, f"{what} EID-prefix")
    _check_mask(what, eid, mask_len, off + 1)
    return EidRecord(eid, mask_len), pos


@dataclass(frozen=True, slots=True)
class Locator:
    """One RLOC of a mapping: unicast priority (255 = do not use) and weight, multicast priority
    and weight, and the L (local), p (probed) and R (reachable) bits."""

    address: Address
    priority: int = 1
    weight: int = 100
    m_priority: int = 255
    m_weight: int = 0
    local: bool = False
    probed: bool = False
    reachable: bool = True

    def encode(self) -> bytes:
        for name in ("priority", "weight", "m_priority", "m_weight"):
            check_range(name, getattr(self, name), 8)
        flags = (self.local << 2) | (self.probed << 1) | self.reachable
        return _LOC.pack(self.priority, self.weight, self.m_priority, self.m_weight,
                         flags) + encode_address(self.address)


def _decode_locator(data: bytes, off: int, end: int, what: str) -> tuple[Locator, int]:
    if end - off < 6:
        raise DecodeError(f"{what}: truncated", off)
    pri, weight, mpri, mweight, flags = _LOC.unpack_from(data, off)
    addr, pos = decode_address(data, off + 6, end, f"{what} address")
    return Locator(addr, pri, weight, mpri, mweight, bool(flags & 4), bool(flags & 2),
                   bool(flags & 1)), pos


@dataclass(frozen=True, slots=True)
class MappingRecord:
    """A mapping: an EID prefix, its locators and how long it may be cached (TTL in minutes).

    A record with no locators is negative: ``action`` says what to do with the packets.
    """

    eid: Address
    mask_len: int
    locators: tuple[Locator, ...] = field(default=())
    ttl: int = 1440
    action: int = Action.NO_ACTION
    authoritative: bool = False
    map_version: int = 0

    @classmethod
    def for_prefix(cls, prefix: EidPrefix, **kwargs) -> "MappingRecord":
        eid, mask_len = prefix.to_wire()
        return cls(eid, mask_len, **kwargs)

    @property
    def prefix(self) -> EidPrefix:
        return EidPrefix.from_wire(self.eid, self.mask_len)

    def encode(self) -> bytes:
        check_range("TTL", self.ttl, 32)
        _check_mask_encodable(self.eid, self.mask_len)
        check_range("ACT", int(self.action), 3)
        check_range("map_version", self.map_version, 12)
        if len(self.locators) > 255:
            raise EncodeError(f"{len(self.locators)} locators in one record (at most 255)")
        head = _MAP_REC.pack(self.ttl, len(self.locators), self.mask_len,
                             (int(self.action) << 13) | (self.authoritative << 12),
                             self.map_version)
        return b"".join([head, encode_address(self.eid), *(loc.encode() for loc in self.locators)])


def decode_mapping_record(data: bytes, off: int, end: int, what: str) -> tuple[MappingRecord, int]:
    if end - off < 10:
        raise DecodeError(f"{what}: truncated", off)
    ttl, count, mask_len, act_word, version_word = _MAP_REC.unpack_from(data, off)
    eid, pos = decode_address(data, off + 10, end, f"{what} EID-prefix")
    _check_mask(what, eid, mask_len, off + 5)
    locators = []
    for i in range(count):
        loc, pos = _decode_locator(data, pos, end, f"{what} locator {i + 1} of {count}")
        locators.append(loc)
    act = act_word >> 13
    return MappingRecord(eid, mask_len, tuple(locators), ttl,
                         Action(act) if act <= 5 else act, bool(act_word & 0x1000),
                         version_word & 0x0FFF), pos


def decode_mapping_records(data: bytes, off: int, end: int, count: int,
                           what: str) -> tuple[tuple[MappingRecord, ...], int]:
    records = []
    for i in range(count):
        rec, off = decode_mapping_record(data, off, end, f"{what} record {i + 1} of {count}")
        records.append(rec)
    return tuple(records), off
