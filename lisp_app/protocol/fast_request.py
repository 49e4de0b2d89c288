"""The request side of a Map-Server / Map-Resolver, decoded on a fast path.

:func:`decode_request_fast` reads the two messages such a server answers most, a plain Map-Request
and an ECM carrying one, when they have the common shape: one EID record (an IPv4 or IPv6 EID,
bare or in an Instance-ID LCAF), no Map-Reply record, IPv4/IPv6 ITR-RLOCs, a source EID that is
absent or an IP address and, for an ECM, an inner IPv4 (without options) or IPv6 header. It checks
every field that :func:`lisp_app.protocol.decode_control` checks for that shape and returns a
message equal to what ``decode_control`` returns, together with the EID prefix the record names
(``request.records[0].prefix``) and, when re-encoding the Map-Request would give its received
bytes back (reserved bits zero), those bytes. Anything else, malformed input included, gives None:
the caller then decodes with ``decode_control``, which refuses it with its usual error. So the
fast path never accepts what the full decoder refuses, and never refuses anything itself.

Addresses, ITR-RLOC lists and EID records are kept decoded by their bytes in small bounded memos
(their objects are immutable; a memo that fills up starts over), since the same ITRs ask about the
same EIDs again and again.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from .addresses import NO_ADDRESS, EidPrefix, InstanceIdAddress
from .ecm import EncapsulatedControlMessage
from .inet import IPV4_HEADER_INTS, IPV6_HEADER, UDP_HEADER, internet_checksum, pseudo_header_tail
from .map_request import MapRequest
from .numbers import IPPROTO_UDP
from .records import EidRecord

__all__ = ["decode_request_fast", "MEMO_LIMIT"]

MEMO_LIMIT = 1024  # entries per memo; a full memo starts over

_HEADER = struct.Struct("!BBBBQ")
_LCAF = struct.Struct("!HBBBBHI")  # AFI 16387, Rsvd1, Flags, Type, Rsvd2, Length, Instance-ID
_AFI_LCAF = 16387

_addresses: dict[bytes, object] = {}   # AFI + address bytes -> the address
_itr_lists: dict[bytes, tuple] = {}    # the ITR-RLOC block -> its tuple of addresses
_records: dict[bytes, tuple] = {}      # an EID record's bytes -> (record tuple, prefix, canonical)


def clear_memos() -> None:
    """Forget every memo (tests; nothing depends on it for correctness)."""
    _addresses.clear()
    _itr_lists.clear()
    _records.clear()


def _address(raw: bytes):
    """An IPv4 (AFI 1, 6 bytes) or IPv6 (AFI 2, 18 bytes) address from its AFI-encoded bytes."""
    addr = _addresses.get(raw)
    if addr is None:
        if len(_addresses) >= MEMO_LIMIT:
            _addresses.clear()
        value = int.from_bytes(raw[2:], "big")
        addr = _addresses[raw] = IPv4Address(value) if raw[1] == 1 else IPv6Address(value)
    return addr


def _ip_length(data: bytes, pos: int, end: int) -> int:
    """The length of the AFI 1 or AFI 2 address at ``pos``, or 0 (another AFI, or truncated)."""
    if end - pos >= 6 and data[pos] == 0:
        afi = data[pos + 1]
        if afi == 1:
            return 6
        if afi == 2 and end - pos >= 18:
            return 18
    return 0


def _record(data: bytes, pos: int, end: int):
    """(records tuple, prefix, canonical) for an EID record filling ``data[pos:end]``, or None."""
    raw = data[pos:end]
    known = _records.get(raw)
    if known is not None:
        return known
    if data[pos + 2] != 0 or data[pos + 3] not in (1, 2):
        return None
    # canonical: the Reserved byte is zero (it is not re-encoded)
    return _finish_record(raw, data, pos + 2, end, data[pos + 1], None, 0, data[pos] == 0)


def _finish_record(raw, data, addr_at, end, mask_len, iid, iid_mask, canonical):
    if end - addr_at != (6 if data[addr_at + 1] == 1 else 18):
        return None
    addr = _address(data[addr_at:end])
    limit = 32 if addr.version == 4 else 128
    if mask_len > limit:
        return None
    value = int(addr)
    if mask_len < limit:
        value &= ~((1 << (limit - mask_len)) - 1)
    network = (IPv4Network if limit == 32 else IPv6Network)((value, mask_len))
    if iid is None:
        record = EidRecord(addr, mask_len)
        prefix = EidPrefix(0, network)
    else:
        record = EidRecord(InstanceIdAddress(iid, addr, iid_mask), mask_len)
        prefix = EidPrefix(iid & 0xFFFFFF, network)
    known = ((record,), prefix, canonical)
    if len(_records) >= MEMO_LIMIT:
        _records.clear()
    _records[raw] = known
    return known


def _lcaf_record(data: bytes, pos: int, end: int):
    """The same as :func:`_record` for an EID in an Instance-ID LCAF."""
    raw = data[pos:end]
    known = _records.get(raw)
    if known is not None:
        return known
    if end - pos < 2 + 12 + 6:
        return None
    afi, rsvd1, flags, lcaf_type, rsvd2, length, iid = _LCAF.unpack_from(data, pos + 2)
    if afi != _AFI_LCAF or lcaf_type != 2 or pos + 2 + 8 + length != end or length < 10:
        return None
    addr_at = pos + 2 + 12
    if data[addr_at] != 0 or data[addr_at + 1] not in (1, 2):
        return None
    canonical = data[pos] == 0 and rsvd1 == 0 and flags == 0
    return _finish_record(raw, data, addr_at, end, data[pos + 1], iid, rsvd2, canonical)


def _map_request(data: bytes, off: int, end: int):
    """(request, prefix, canonical) for a common-shape Map-Request in ``data[off:end]``, or None."""
    if end - off < 12:
        return None
    b0, b1, b2, count, nonce = _HEADER.unpack_from(data, off)
    if count != 1 or b0 & 0x04:  # one record, no Map-Reply record
        return None
    pos = off + 12
    if end - pos < 2 or data[pos] != 0:
        return None
    afi = data[pos + 1]
    if afi == 0:
        source_eid = NO_ADDRESS
        pos += 2
    else:
        size = _ip_length(data, pos, end)
        if not size:
            return None
        source_eid = _address(data[pos:pos + size])
        pos += size
    start = pos
    for _ in range((b2 & 0x1F) + 1):
        size = _ip_length(data, pos, end)
        if not size:
            return None
        pos += size
    block = data[start:pos]
    itr_rlocs = _itr_lists.get(block)
    if itr_rlocs is None:
        rlocs, at = [], start
        while at < pos:
            size = 6 if data[at + 1] == 1 else 18
            rlocs.append(_address(data[at:at + size]))
            at += size
        if len(_itr_lists) >= MEMO_LIMIT:
            _itr_lists.clear()
        itr_rlocs = _itr_lists[block] = tuple(rlocs)
    if end - pos < 4:
        return None
    if data[pos + 2] == 0x40 and data[pos + 3] == 0x03:
        known = _lcaf_record(data, pos, end)
    else:
        known = _record(data, pos, end)
    if known is None:
        return None
    records, prefix, canonical = known
    request = MapRequest(nonce, records, itr_rlocs, source_eid, bool(b0 & 8), bool(b0 & 2),
                         bool(b0 & 1), bool(b1 & 0x80), bool(b1 & 0x40), bool(b2 & 0x40),
                         bool(b2 & 0x20), None)
    return request, prefix, canonical and not b1 & 0x3F and not b2 & 0x80


def _ecm(data: bytes, end: int):
    """(ecm, prefix, inner bytes or None) for an ECM carrying a common-shape Map-Request."""
    ip = 4
    if end < ip + 1:
        return None
    version = data[ip] >> 4
    if version == 4:
        if end - ip < 20:
            return None
        vihl, tos, total, ip_id, frag, ttl, proto, _csum, s, d = IPV4_HEADER_INTS.unpack_from(
            data, ip)
        if vihl & 0x0F != 5 or total != end - ip or frag & 0x3FFF:
            return None
        udp = ip + 20
        if internet_checksum(data[ip:udp]) != 0:
            return None
        addresses = data[ip + 12:udp]
        src = _address(b"\x00\x01" + addresses[:4])
        dst = _address(b"\x00\x01" + addresses[4:])
        dont_fragment, flow_label = bool(frag & 0x4000), 0
    elif version == 6:
        if end - ip < 40:
            return None
        word, plen, proto, ttl, _s, _d = IPV6_HEADER.unpack_from(data, ip)
        if plen != end - ip - 40:
            return None
        udp = ip + 40
        addresses = data[ip + 8:udp]
        src = _address(b"\x00\x02" + addresses[:16])
        dst = _address(b"\x00\x02" + addresses[16:])
        tos, flow_label, ip_id, dont_fragment = word >> 20 & 0xFF, word & 0xFFFFF, 0, False
    else:
        return None
    if proto != IPPROTO_UDP or end - udp < 8:
        return None
    sport, dport, ulen, ucsum = UDP_HEADER.unpack_from(data, udp)
    if ulen != end - udp:
        return None
    if ucsum and internet_checksum(addresses + pseudo_header_tail(version, IPPROTO_UDP, ulen)
                                   + data[udp:end]) != 0:
        return None
    inner = udp + 8
    if end - inner < 1 or data[inner] >> 4 != 1:
        return None
    found = _map_request(data, inner, end)
    if found is None:
        return None
    request, prefix, canonical = found
    flags = data[0]
    ecm = EncapsulatedControlMessage(src, dst, request, sport, dport, ttl, tos, ip_id,
                                     dont_fragment, flow_label, bool(ucsum), bool(flags & 8),
                                     bool(flags & 4), bool(flags & 2), bool(flags & 1))
    return ecm, prefix, data[inner:end] if canonical else None


def decode_request_fast(data: bytes):
    """``(message, prefix, inner)`` for a plain Map-Request or an ECM carrying one, in the
    common shape (see the module's description); None for anything else, to be decoded by
    ``decode_control``. ``message`` equals ``decode_control(data)``; ``prefix`` is the EID prefix
    its record names; ``inner`` is the Map-Request's bytes when ``request.encode()`` gives them
    back exactly, else None."""
    if type(data) is not bytes or not data:
        return None
    kind = data[0] >> 4
    if kind == 1:
        found = _map_request(data, 0, len(data))
        if found is None:
            return None
        request, prefix, canonical = found
        return request, prefix, data if canonical else None
    if kind == 8:
        return _ecm(data, len(data))
    return None
