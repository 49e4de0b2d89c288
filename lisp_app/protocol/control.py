"""Dispatch of LISP control messages (UDP 4342 payloads) to their decoders.

This module is the only one that knows every message type: the ECM decoder is handed the
decoder of the message inside it (:func:`_decode_inner`), so no codec module imports this one.
"""

from __future__ import annotations

from functools import partial
from typing import Union

from .ecm import EncapsulatedControlMessage, decode_ecm
from .errors import DecodeError
from .map_register import (MapNotify, MapNotifyAck, MapRegister, decode_map_notify,
                           decode_map_notify_ack, decode_map_register)
from .map_reply import MapReply, decode_map_reply
from .map_request import MapRequest, decode_map_request

ControlMessage = Union[MapRequest, MapReply, MapRegister, MapNotify, MapNotifyAck,
                       EncapsulatedControlMessage]


def _decode_inner(data: bytes, off: int, end: int) -> ControlMessage:
    """The message inside an ECM: any control message but another ECM."""
    return decode_control_at(data, off, end, allow_ecm=False)


MESSAGE_TYPES = {
    1: (MapRequest, decode_map_request),
    2: (MapReply, decode_map_reply),
    3: (MapRegister, decode_map_register),
    4: (MapNotify, decode_map_notify),
    5: (MapNotifyAck, decode_map_notify_ack),
    8: (EncapsulatedControlMessage, partial(decode_ecm, decode_inner=_decode_inner)),
}
_KNOWN_UNSUPPORTED = {6: "Map-Referral (LISP-DDT)", 7: "Info-Request/Info-Reply (NAT traversal)"}


def decode_control(data: bytes) -> ControlMessage:
    """Decode a LISP control message, the whole payload of a UDP 4342 datagram.

    Raises :class:`DecodeError` (and nothing else) for anything malformed or unsupported.
    """
    if type(data) is not bytes:
        data = bytes(data)
    return decode_control_at(data, 0, len(data), allow_ecm=True)


def decode_control_at(data: bytes, off: int, end: int, allow_ecm: bool) -> ControlMessage:
    """Decode the control message in ``data[off:end]`` (offsets in errors are into ``data``)."""
    if end <= off:
        raise DecodeError("empty control message", off)
    msg_type = data[off] >> 4
    entry = MESSAGE_TYPES.get(msg_type)
    if entry is None:
        name = _KNOWN_UNSUPPORTED.get(msg_type, "unknown")
        raise DecodeError(f"unsupported control message type {msg_type} ({name})", off)
    if msg_type == 8 and not allow_ecm:
        raise DecodeError("ECM inside an ECM", off)
    return entry[1](data, off, end)

