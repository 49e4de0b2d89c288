"""The request side of a Map-Server / Map-Resolver, read on a fast path.

:func:`decode_request_fast` reads the two messages such a server answers most, a plain Map-Request
and an ECM carrying one, when they have the common shape: one EID record (an IPv4 or IPv6 EID,
bare or in an Instance-ID LCAF), no Map-Reply record, IPv4/IPv6 ITR-RLOCs, a source EID that is
absent or an IP address and, for an ECM, an inner IPv4 (without options) or IPv6 header. It checks
every field that :func:`lisp_app.protocol.decode_control` checks for that shape, and gives a
:class:`FastMapRequest` or :class:`FastEcm`: the fields a server answers from (nonce, ITR-RLOCs,
the EID, the ECM's inner addresses and port), the rest only on demand, ``message()`` being equal to
what ``decode_control`` returns. Anything else, malformed input included, gives None: the caller
then decodes with ``decode_control``, which refuses it with its usual error. So the fast path never
accepts what the full decoder refuses, and never refuses anything itself.

Addresses, ITR-RLOC lists and EID records are kept decoded by their bytes in small bounded memos
(what they hold is immutable; a memo that fills up starts over), since the same ITRs ask about the
same EIDs again and again.
"""

from __future__ import annotations

import struct
import sys
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from .addresses import NO_ADDRESS, EidPrefix, InstanceIdAddress
from .ecm import EncapsulatedControlMessage
from .inet import IPV4_HEADER_INTS, IPV6_HEADER, UDP_HEADER
from .map_request import MapRequest
from .numbers import IPPROTO_UDP
from .records import EidRecord

__all__ = ["FastEcm", "FastMapRequest", "MEMO_LIMIT", "decode_request_fast"]

MEMO_LIMIT = 1024  # entries per memo; a full memo starts over

_HEADER = struct.Struct("!BBBBQ")
_LCAF = struct.Struct("!HBBBBHI")  # AFI 16387, Rsvd1, Flags, Type, Rsvd2, Length, Instance-ID
_AFI_LCAF = 16387
_LITTLE = sys.byteorder == "little"
_ORDER = sys.byteorder  # how _ones_sum_ok reads 16-bit words: in native order, as array("H")

_addresses: dict[bytes, object] = {}   # AFI + address bytes -> the address
_v4: dict[int, IPv4Address] = {}       # an ECM's inner IPv4 source, as an integer -> the address
_itr_lists: dict[bytes, tuple] = {}    # the ITR-RLOC block -> its tuple of addresses
_bodies: dict[bytes, tuple] = {}       # a Map-Request's bytes after the nonce -> _body()


def clear_memos() -> None:
    """Forget every memo (tests; nothing depends on it for correctness)."""
    _addresses.clear()
    _v4.clear()
    _itr_lists.clear()
    _bodies.clear()


# an EID record's entry (a list, remembered with its request, its last two slots filled on demand)
(_EID, _IID, _IID_MASK, _MASK_LEN, _NETWORK_VALUE, _VERSION, _CANONICAL, _RECORDS, _PREFIX,
 _NETWORK_ADDRESS) = range(10)


class FastMapRequest:
    """A common-shape Map-Request: ``nonce``, ``itr_rlocs``, ``smr``; ``instance_id`` and
    ``eid``, what ``records[0].prefix`` holds (its instance-id and network address, host bits
    cleared); ``prefix`` and ``records`` (made on first use); ``inner``, its bytes when
    re-encoding gives them back (reserved bits zero), else None. ``message()`` is the
    :class:`MapRequest` that ``decode_control`` gives, ``encode()`` its encoding."""

    __slots__ = ("nonce", "itr_rlocs", "smr", "instance_id", "version", "eid_value", "inner",
                 "_head", "_source_eid", "_entry", "_message")

    def __init__(self, nonce, itr_rlocs, head, source_eid, entry, inner):
        self.nonce, self.itr_rlocs, self._head = nonce, itr_rlocs, head
        self.smr = bool(head[0] & 1)
        self._source_eid, self._entry, self.inner = source_eid, entry, inner
        self.instance_id = 0 if entry[_IID] is None else entry[_IID] & 0xFFFFFF
        self.version, self.eid_value = entry[_VERSION], entry[_NETWORK_VALUE]
        self._message = None

    @property
    def eid(self) -> IPv4Address | IPv6Address:
        """The network address of the record's prefix (``eid_value`` as an address)."""
        entry = self._entry
        eid = entry[_NETWORK_ADDRESS]
        if eid is None:
            eid = entry[_NETWORK_ADDRESS] = _ip(entry[_VERSION], entry[_NETWORK_VALUE])
        return eid

    @property
    def prefix(self) -> EidPrefix:
        entry = self._entry
        prefix = entry[_PREFIX]
        if prefix is None:
            network = (IPv4Network if self.version == 4 else IPv6Network)((self.eid_value,
                                                                            entry[_MASK_LEN]))
            prefix = entry[_PREFIX] = EidPrefix(self.instance_id, network)
        return prefix

    @property
    def records(self) -> tuple[EidRecord, ...]:
        entry = self._entry
        records = entry[_RECORDS]
        if records is None:
            eid = _ip(entry[_VERSION], entry[_EID])
            if entry[_IID] is not None:
                eid = InstanceIdAddress(entry[_IID], eid, entry[_IID_MASK])
            records = entry[_RECORDS] = (EidRecord(eid, entry[_MASK_LEN]),)
        return records

    def message(self) -> MapRequest:
        message = self._message
        if message is None:
            b0, b1, b2 = self._head
            message = self._message = MapRequest(
                self.nonce, self.records, self.itr_rlocs, self._source_eid, bool(b0 & 8),
                bool(b0 & 2), bool(b0 & 1), bool(b1 & 0x80), bool(b1 & 0x40), bool(b2 & 0x40),
                bool(b2 & 0x20), None)
        return message

    def encode(self) -> bytes:
        return self.inner if self.inner is not None else self.message().encode()


class FastEcm:
    """An ECM carrying a common-shape Map-Request (``request``, a :class:`FastMapRequest`):
    ``source``, ``destination`` and ``source_port`` of its inner header and its ``to_etr`` flag;
    ``message()`` is the :class:`EncapsulatedControlMessage` that ``decode_control`` gives."""

    __slots__ = ("source", "source_port", "to_etr", "request", "_destination", "_data")

    def __init__(self, source, destination, source_port, request, data):
        self.source, self.source_port = source, source_port
        self._destination = destination  # an int (IPv4) or 16 bytes (IPv6) until asked for
        self.request, self._data = request, data
        self.to_etr = bool(data[0] & 2)

    @property
    def destination(self) -> IPv4Address | IPv6Address:
        dst = self._destination
        if type(dst) is int:
            dst = self._destination = IPv4Address(dst)
        elif type(dst) is bytes:
            dst = self._destination = IPv6Address(dst)
        return dst

    def message(self) -> EncapsulatedControlMessage:
        data = self._data
        if data[4] >> 4 == 4:
            _v, tos, _len, ip_id, frag, ttl = IPV4_HEADER_INTS.unpack_from(data, 4)[:6]
            dont_fragment, flow_label, udp = bool(frag & 0x4000), 0, 24
        else:
            word, _len, _next, ttl = IPV6_HEADER.unpack_from(data, 4)[:4]
            tos, flow_label, ip_id, dont_fragment, udp = word >> 20 & 0xFF, word & 0xFFFFF, 0, \
                False, 44
        _sport, dport, _ulen, ucsum = UDP_HEADER.unpack_from(data, udp)
        flags = data[0]
        return EncapsulatedControlMessage(
            self.source, self.destination, self.request.message(), self.source_port, dport, ttl,
            tos, ip_id, dont_fragment, flow_label, bool(ucsum), bool(flags & 8), bool(flags & 4),
            bool(flags & 2), bool(flags & 1))


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
    """The entry for an EID record filling ``data[pos:end]``, or None (not the shape); it is
    remembered with the rest of its request (``_bodies``)."""
    if data[pos + 2] == 0 and data[pos + 3] in (1, 2):
        # canonical: the Reserved byte is zero (it is not re-encoded)
        return _new_record(data, pos + 2, end, data[pos + 1], None, 0, data[pos] == 0)
    if data[pos + 2] != 0x40 or data[pos + 3] != 0x03 or end - pos < 2 + 12 + 6:
        return None
    afi, rsvd1, flags, lcaf_type, rsvd2, length, iid = _LCAF.unpack_from(data, pos + 2)
    if afi != _AFI_LCAF or lcaf_type != 2 or pos + 2 + 8 + length != end:
        return None
    addr_at = pos + 2 + 12
    if data[addr_at] != 0 or data[addr_at + 1] not in (1, 2):
        return None
    canonical = data[pos] == 0 and rsvd1 == 0 and flags == 0
    return _new_record(data, addr_at, end, data[pos + 1], iid, rsvd2, canonical)


def _new_record(data, addr_at, end, mask_len, iid, iid_mask, canonical):
    if end - addr_at != (6 if data[addr_at + 1] == 1 else 18):
        return None
    limit = 32 if data[addr_at + 1] == 1 else 128
    if mask_len > limit:
        return None
    value = int.from_bytes(data[addr_at + 2:end], "big")
    network = value & ~((1 << (limit - mask_len)) - 1) if mask_len < limit else value
    return [value, iid, iid_mask, mask_len, network, 4 if limit == 32 else 6, canonical, None,
            None, None]


def _ip(version: int, value: int) -> IPv4Address | IPv6Address:
    return IPv4Address(value) if version == 4 else IPv6Address(value)


def _map_request(data: bytes, off: int, end: int) -> FastMapRequest | None:
    if end - off < 12:
        return None
    b0, b1, b2, count, nonce = _HEADER.unpack_from(data, off)
    if count != 1 or b0 & 0x04:  # one record, no Map-Reply record
        return None
    n_itr = (b2 & 0x1F) + 1
    body = data[off + 12:end]  # all after the nonce: the same ITR asking about the same EID
    known = _bodies.get(body)
    if known is None or known[0] != n_itr:
        known = _body(data, off + 12, end, n_itr)
        if known is None:
            return None
        if len(_bodies) >= MEMO_LIMIT:
            _bodies.clear()
        _bodies[body] = known
    _n, source_eid, itr_rlocs, entry = known
    canonical = entry[_CANONICAL] and not b1 & 0x3F and not b2 & 0x80
    return FastMapRequest(nonce, itr_rlocs, (b0, b1, b2), source_eid, entry,
                          data[off:end] if canonical else None)


def _body(data: bytes, pos: int, end: int, n_itr: int):
    """(n_itr, source EID, ITR-RLOCs, record entry) for what follows a Map-Request's nonce, or
    None (not the common shape)."""
    if end - pos < 2 or data[pos] != 0:
        return None
    if data[pos + 1] == 0:
        source_eid = NO_ADDRESS
        pos += 2
    else:
        size = _ip_length(data, pos, end)
        if not size:
            return None
        source_eid = _address(data[pos:pos + size])
        pos += size
    start = pos
    for _ in range(n_itr):
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
    entry = _record(data, pos, end)
    if entry is None:
        return None
    return n_itr, source_eid, itr_rlocs, entry


def _ones_sum_ok(data: bytes, extra: int = 0) -> bool:
    """Whether the ones'-complement sum of ``data`` (even length, 16-bit words in native order)
    plus ``extra`` is 0xFFFF: what ``internet_checksum(...) == 0`` says over data that carries
    its checksum."""
    # Read as one integer of native-order 16-bit digits, the data is the sum of word_i * 2**16i,
    # and 2**16 is 1 modulo 0xFFFF: the ones'-complement sum (end-around carries) of words not
    # all zero is 0xFFFF exactly when that integer is a multiple of 0xFFFF. (One C conversion
    # and a remainder, a third of the time of summing an array.)
    total = int.from_bytes(data, _ORDER) + extra
    return total % 0xFFFF == 0 and total != 0


def _native(word: int) -> int:
    """A 16-bit word (network order) as ``array("H")`` reads it on this machine."""
    return (word & 0xFF) << 8 | word >> 8 if _LITTLE else word


_UDP_NATIVE = _native(IPPROTO_UDP)


def _ecm(data: bytes, end: int) -> FastEcm | None:
    ip = 4
    if end < ip + 1:
        return None
    version = data[ip] >> 4
    if version == 4:
        if end - ip < 20:
            return None
        vihl, _tos, total, _id, frag, _ttl, proto, _csum, s, d = IPV4_HEADER_INTS.unpack_from(
            data, ip)
        if vihl & 0x0F != 5 or total != end - ip or frag & 0x3FFF:
            return None
        udp = ip + 20
        if not _ones_sum_ok(data[ip:udp]):
            return None
        src = _v4.get(s)
        if src is None:
            if len(_v4) >= MEMO_LIMIT:
                _v4.clear()
            src = _v4[s] = IPv4Address(s)
        addresses = ip + 12
    elif version == 6:
        if end - ip < 40:
            return None
        _word, plen, proto, _ttl, s, d = IPV6_HEADER.unpack_from(data, ip)
        if plen != end - ip - 40:
            return None
        udp = ip + 40
        src = _address(b"\x00\x02" + s)
        addresses = ip + 8
    else:
        return None
    if proto != IPPROTO_UDP or end - udp < 8:
        return None
    sport, _dport, ulen, ucsum = UDP_HEADER.unpack_from(data, udp)
    if ulen != end - udp:
        return None
    # the UDP checksum over the pseudo-header (addresses, then protocol and length) and datagram
    if ucsum and not _ones_sum_ok(data[addresses:end] if ulen & 1 == 0 else
                                  data[addresses:end] + b"\0",
                                  _UDP_NATIVE + ((ulen & 0xFF) << 8 | ulen >> 8 if _LITTLE
                                                 else ulen)):
        return None
    inner = udp + 8
    if end - inner < 1 or data[inner] >> 4 != 1:
        return None
    request = _map_request(data, inner, end)
    if request is None:
        return None
    return FastEcm(src, d, sport, request, data)


def decode_request_fast(data: bytes) -> FastMapRequest | FastEcm | None:
    """A plain Map-Request or an ECM carrying one, in the common shape (see the module's
    description); None for anything else, to be decoded by ``decode_control``."""
    if type(data) is not bytes or not data:
        return None
    kind = data[0] >> 4
    if kind == 1:
        return _map_request(data, 0, len(data))
    if kind == 8:
        return _ecm(data, len(data))
    return None
