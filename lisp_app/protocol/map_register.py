"""Map-Register, Map-Notify and Map-Notify-Ack (RFC 9301 sections 5.6-5.7), and their HMAC.

All three share one body: nonce, a 16-bit Key ID, a 16-bit Authentication Data Length, the
authentication data, the mapping records, and (with the I bit) a 128-bit xTR-ID and a 64-bit site-ID.

Authentication, as deployed implementations compute it (checked against Open Overlay Router 1.3's
Map-Server, and as Wireshark decodes it):

- the 16-bit Key ID selects the algorithm: 0 none, 1 HMAC-SHA-1, 2 HMAC-SHA-256. RFC 6833 reads
  it as one 16-bit Key ID; RFC 9301 splits it into an 8-bit Key ID and an 8-bit Algorithm ID.
  For key 0 the bytes are the same (``00 01``, ``00 02``), which is what every implementation sends;
- the HMAC is computed over the whole message with the authentication data zeroed;
- the RFC's names (HMAC-SHA-1-96, HMAC-SHA-256-128) suggest 12- and 16-byte truncated MACs, but
  OOR, lispers.net and ONOS send the full 20- and 32-byte MACs (OOR even skips a fixed 20 bytes).
  We send full MACs by default (``truncated=True`` gives the RFC-named lengths) and accept either
  on receipt, reading the data by its length field.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field, replace
from typing import ClassVar, Union

from .errors import DecodeError, EncodeError, check_range
from .records import MappingRecord, decode_mapping_records

HEADER = struct.Struct("!BBBBQHH")  # Type|flags, Reserved, Reserved|M, Record Count, Nonce, Key ID,
#                                     Authentication Data Length
XTR_ID = struct.Struct("!QQQ")  # xTR-ID (128 bits as two halves), site-ID

#: a deviation from RFC 9301 that the decoders accept, and name in the message's ``deviations``
XTR_ID_WITHOUT_I_BIT = "xTR-ID and site-ID after the records without the I bit"

KEY_ID_NONE = 0
KEY_ID_HMAC_SHA_1 = 1
KEY_ID_HMAC_SHA_256 = 2

#: key-id -> (hash, full MAC length, RFC-named truncated length)
ALGORITHMS = {
    KEY_ID_HMAC_SHA_1: (hashlib.sha1, 20, 12),
    KEY_ID_HMAC_SHA_256: (hashlib.sha256, 32, 16),
}
AUTH_OFFSET = 12  # Key ID is at byte 12 of all three messages; the data starts at byte 16


def _encode_body(msg, b0: int, b2: int) -> bytes:
    check_range("nonce", msg.nonce, 64)
    check_range("key_id", msg.key_id, 16)
    if len(msg.records) > 255:
        raise EncodeError(f"{len(msg.records)} records in one message (at most 255)")
    if len(msg.auth_data) > 0xFFFF:
        raise EncodeError("authentication data longer than 65535 bytes")
    parts = [HEADER.pack(b0, 0, b2, len(msg.records), msg.nonce, msg.key_id, len(msg.auth_data)),
             msg.auth_data, *(r.encode() for r in msg.records)]
    if msg.xtr_id is not None:
        check_range("xtr_id", msg.xtr_id, 128)
        check_range("site_id", msg.site_id, 64)
        parts.append(XTR_ID.pack(msg.xtr_id >> 64, msg.xtr_id & (1 << 64) - 1, msg.site_id))
    return b"".join(parts)


def _decode_body(data: bytes, off: int, end: int, what: str, has_xtr_id: bool,
                 lenient: bool = False):
    """(nonce, records, key_id, auth, xtr_id, site_id, deviations). ``lenient``: exactly an
    xTR-ID and a site-ID after the records without the I bit (as some Map-Servers send their
    Map-Notify, e.g. tcpdump's lisp_eid_notify.pcap test capture) are read as such, and the
    deviation is named in ``deviations``."""
    if end - off < 16:
        raise DecodeError(f"{what}: truncated header ({end - off} of 16 bytes)", off)
    _b0, _b1, _b2, count, nonce, key_id, auth_len = HEADER.unpack_from(data, off)
    pos = off + 16
    if end - pos < auth_len:
        raise DecodeError(f"{what}: authentication data length {auth_len} runs past the end "
                          f"({end - pos} bytes left)", off + 14)
    auth = bytes(data[pos:pos + auth_len])
    stop = end - XTR_ID.size if has_xtr_id else end
    if stop < pos + auth_len:
        raise DecodeError(f"{what}: I bit set but no room for xTR-ID and site-ID", pos + auth_len)
    records, pos = decode_mapping_records(data, pos + auth_len, stop, count, what)
    deviations = ()
    if pos != stop and lenient and not has_xtr_id and stop - pos == XTR_ID.size:
        has_xtr_id, stop = True, pos
        deviations = (XTR_ID_WITHOUT_I_BIT,)
    if pos != stop:
        raise DecodeError(f"{what}: {stop - pos} bytes of trailing data", pos)
    xtr_id = site_id = None
    if has_xtr_id:
        hi, lo, site_id = XTR_ID.unpack_from(data, stop)
        xtr_id = hi << 64 | lo
    return nonce, records, key_id, auth, xtr_id, site_id, deviations


def _check_xtr_id(msg) -> None:
    if (msg.xtr_id is None) != (msg.site_id is None):
        raise EncodeError("xtr_id and site_id go together (the I bit carries both)")


@dataclass(frozen=True, slots=True)
class MapRegister:
    """A Map-Register: P ``proxy_reply``, S ``security_capable``, I (``xtr_id``/``site_id`` set),
    M ``want_map_notify``. Use :func:`sign` to fill ``key_id`` and ``auth_data``."""

    TYPE: ClassVar[int] = 3

    nonce: int
    records: tuple[MappingRecord, ...] = field(default=())
    key_id: int = KEY_ID_NONE
    auth_data: bytes = b""
    proxy_reply: bool = False
    security_capable: bool = False
    want_map_notify: bool = False
    xtr_id: int | None = None
    site_id: int | None = None

    def encode(self) -> bytes:
        _check_xtr_id(self)
        b0 = (0x30 | self.proxy_reply << 3 | self.security_capable << 2
              | (self.xtr_id is not None) << 1)
        return _encode_body(self, b0, int(self.want_map_notify))


def decode_map_register(data: bytes, off: int, end: int) -> MapRegister:
    b0 = data[off] if off < end else 0
    b2 = data[off + 2] if off + 2 < end else 0
    nonce, records, key_id, auth, xtr_id, site_id, _ = _decode_body(data, off, end,
                                                                    "Map-Register",
                                                                 bool(b0 & 2))
    return MapRegister(nonce, records, key_id, auth, bool(b0 & 8), bool(b0 & 4), bool(b2 & 1),
                       xtr_id, site_id)


@dataclass(frozen=True, slots=True)
class MapNotify:
    """A Map-Notify (a Map-Server's acknowledgement of a Map-Register): I (``xtr_id`` set)."""

    TYPE: ClassVar[int] = 4

    nonce: int
    records: tuple[MappingRecord, ...] = field(default=())
    key_id: int = KEY_ID_NONE
    auth_data: bytes = b""
    xtr_id: int | None = None
    site_id: int | None = None
    #: what the sender got wrong and we accepted (decoding only; we always send it right)
    deviations: tuple[str, ...] = field(default=(), compare=False)

    def encode(self) -> bytes:
        _check_xtr_id(self)
        return _encode_body(self, self.TYPE << 4 | (self.xtr_id is not None) << 3, 0)


@dataclass(frozen=True, slots=True)
class MapNotifyAck(MapNotify):
    """A Map-Notify-Ack: the same body as Map-Notify, type 5."""

    TYPE: ClassVar[int] = 5


def _notify_decoder(cls, what: str):
    def decode(data: bytes, off: int, end: int):
        b0 = data[off] if off < end else 0
        nonce, records, key_id, auth, xtr_id, site_id, deviations = _decode_body(
            data, off, end, what, bool(b0 & 8), lenient=True)
        return cls(nonce, records, key_id, auth, xtr_id, site_id, deviations)
    return decode


decode_map_notify = _notify_decoder(MapNotify, "Map-Notify")
decode_map_notify_ack = _notify_decoder(MapNotifyAck, "Map-Notify-Ack")

AuthenticatedMessage = Union[MapRegister, MapNotify, MapNotifyAck]


def _key_bytes(key: bytes | str) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def sign(message: AuthenticatedMessage, key: bytes | str, key_id: int = KEY_ID_HMAC_SHA_1,
         truncated: bool = False) -> AuthenticatedMessage:
    """Return ``message`` with ``key_id`` and ``auth_data`` set: the HMAC over the message encoded
    with the authentication data zeroed (full-length MAC unless ``truncated``)."""
    if key_id == KEY_ID_NONE:
        return replace(message, key_id=KEY_ID_NONE, auth_data=b"")
    if key_id not in ALGORITHMS:
        raise EncodeError(f"unsupported key-id {key_id} (1 = HMAC-SHA-1, 2 = HMAC-SHA-256)")
    digest, full, short = ALGORITHMS[key_id]
    length = short if truncated else full
    blank = replace(message, key_id=key_id, auth_data=bytes(length))
    mac = hmac.new(_key_bytes(key), blank.encode(), digest).digest()[:length]
    return replace(blank, auth_data=mac)


def verify_authentication(data: bytes, key: bytes | str) -> bool:
    """Check the HMAC of a received Map-Register, Map-Notify or Map-Notify-Ack (the UDP payload as
    received, so reserved bits a sender set are hashed as it hashed them). False for key-id 0,
    an unknown key-id, a MAC of a length neither full nor RFC-truncated, or a wrong MAC."""
    if len(data) < AUTH_OFFSET + 4 or data[0] >> 4 not in (3, 4, 5):
        return False
    key_id, auth_len = struct.unpack_from("!HH", data, AUTH_OFFSET)
    algorithm = ALGORITHMS.get(key_id)
    if algorithm is None or auth_len not in algorithm[1:] or len(data) < 16 + auth_len:
        return False
    received = bytes(data[16:16 + auth_len])
    blank = bytes(data[:16]) + bytes(auth_len) + bytes(data[16 + auth_len:])
    expected = hmac.new(_key_bytes(key), blank, algorithm[0]).digest()[:auth_len]
    return hmac.compare_digest(received, expected)
