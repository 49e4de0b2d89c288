"""OpenFlow 1.3 packet-ins read straight from their bytes.

A cold-cache miss crosses a controller three times (the miss, the Map-Request at the ETR, the
Map-Reply), each time as a packet-in. os-ken parses every message into an object tree (the match
into a list of typed fields) and hands it to the application through an event queue served by
another green thread; the shell reads packet-ins with :func:`decode_packet_in` instead and gives
them to the xTR core in the receiving thread (``lisp_app.app``). Only what the core uses is
read: the header's xid, buffer_id, total_len, reason, table_id, cookie, the match's in_port and
metadata, and the frame. The values are those os-ken's parser gives for the same bytes
(``tests/unit/test_ofread.py`` checks them against it on many messages).

A message this module cannot read raises :class:`Malformed` (a ``ValueError``) and is not
partially read: the caller counts it and drops it.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

OFP_VERSION = 0x04
OFPT_PACKET_IN = 10
OFPMT_OXM = 1
OFPXMC_OPENFLOW_BASIC = 0x8000
OXM_IN_PORT = 0  # field numbers of the OpenFlow basic class
OXM_METADATA = 2

_HEADER = struct.Struct("!BBHI")
# buffer_id, total_len, reason, table_id, cookie; the match's type and length
_FIXED = struct.Struct("!IHBBQHH")
_HEADER_SIZE = 8
_MATCH_AT = 24  # the match's type field, after the header and the fixed part
_MIN_LENGTH = _MATCH_AT + 8 + 2  # an empty match padded to 8 bytes, then 2 bytes of padding
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")


class Malformed(ValueError):
    """Bytes that are not a packet-in this module can read."""


class PacketIn(NamedTuple):
    xid: int
    buffer_id: int
    total_len: int
    reason: int
    table_id: int
    cookie: int
    in_port: int  # 0 when the match has none (os-ken's ``match.get("in_port", 0)``)
    metadata: int  # 0 when the match has none; the value without its mask if masked
    data: bytes


def message_type(buf) -> int:
    """The OpenFlow message type in the header of ``buf`` (at least 8 bytes)."""
    return buf[1]


def decode_packet_in(buf) -> PacketIn:
    """One OpenFlow 1.3 packet-in, exactly ``len(buf)`` bytes long (a ``bytes`` or
    ``bytearray`` holding the whole message, header included)."""
    size = len(buf)
    if size < _MIN_LENGTH:
        raise Malformed(f"packet-in of {size} bytes: shorter than its fixed part")
    version, msg_type, length, xid = _HEADER.unpack_from(buf, 0)
    if version != OFP_VERSION or msg_type != OFPT_PACKET_IN:
        raise Malformed(f"not an OpenFlow 1.3 packet-in: version {version}, type {msg_type}")
    if length != size:
        raise Malformed(f"packet-in header says {length} bytes, {size} given")
    buffer_id, total_len, reason, table_id, cookie, match_type, match_len = \
        _FIXED.unpack_from(buf, _HEADER_SIZE)
    if match_type != OFPMT_OXM:
        raise Malformed(f"packet-in match of type {match_type}, not OXM")
    if match_len < 4:
        raise Malformed(f"packet-in match length {match_len} < 4")
    match_end = _MATCH_AT + match_len
    data_at = _MATCH_AT + ((match_len + 7) & ~7) + 2
    if data_at > size:
        raise Malformed(f"packet-in match of {match_len} bytes overruns the message")
    in_port = metadata = 0
    at = _MATCH_AT + 4
    while at < match_end:
        if at + 4 > match_end:
            raise Malformed("packet-in match ends inside an OXM header")
        oxm_class = (buf[at] << 8) | buf[at + 1]
        field_mask = buf[at + 2]
        oxm_len = buf[at + 3]
        value_at = at + 4
        at = value_at + oxm_len
        if at > match_end:
            raise Malformed("packet-in match field overruns the match")
        if oxm_class != OFPXMC_OPENFLOW_BASIC:
            continue
        field, masked = field_mask >> 1, field_mask & 1
        if field == OXM_IN_PORT:
            if oxm_len != (8 if masked else 4):
                raise Malformed(f"packet-in in_port of {oxm_len} bytes")
            in_port = _U32.unpack_from(buf, value_at)[0]
        elif field == OXM_METADATA:
            if oxm_len != (16 if masked else 8):
                raise Malformed(f"packet-in metadata of {oxm_len} bytes")
            metadata = _U64.unpack_from(buf, value_at)[0]
    data = bytes(buf[data_at:data_at + total_len] if total_len < size - data_at else buf[data_at:])
    return PacketIn(xid, buffer_id, total_len, reason, table_id, cookie, in_port, metadata, data)
