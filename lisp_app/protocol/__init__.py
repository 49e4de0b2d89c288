"""LISP wire codecs, pure Python: bytes <-> frozen dataclasses, no I/O.

``decode_control(payload)`` decodes a UDP 4342 payload into a :class:`MapRequest`,
:class:`MapReply`, :class:`MapRegister`, :class:`MapNotify`, :class:`MapNotifyAck` or
:class:`EncapsulatedControlMessage`; every message has ``encode()``; for a well-formed message
whose reserved bits are zero, ``decode_control(b).encode() == b``. Anything malformed raises
:class:`DecodeError` (a ValueError) naming what is wrong and the byte offset.
``decode_data_header`` / :class:`DataHeader` handle the UDP 4341 data header.
"""

from .addresses import (AFI_IPV4, AFI_IPV6, AFI_LCAF, AFI_NONE, NO_ADDRESS, Address, AfiListAddress,
                        EidPrefix, InstanceIdAddress, NoAddress, UnknownLcafAddress,
                        decode_address, encode_address)
from .control import ControlMessage, decode_control
from .data import (GPE_ETHERNET, GPE_IPV4, GPE_IPV6, GPE_NSH, DataHeader, decode_data_header,
                   entropy_source_port)
from .ecm import EncapsulatedControlMessage
from .errors import DecodeError, EncodeError
from .inet import internet_checksum
from .map_register import (KEY_ID_HMAC_SHA_1, KEY_ID_HMAC_SHA_256, KEY_ID_NONE, MapNotify,
                           MapNotifyAck, MapRegister, sign, verify_authentication)
from .map_reply import MapReply
from .map_request import MapRequest
from .numbers import LISP_CONTROL_PORT, LISP_DATA_PORT
from .records import Action, EidRecord, Locator, MappingRecord

__all__ = [
    "AFI_IPV4", "AFI_IPV6", "AFI_LCAF", "AFI_NONE", "Action", "Address", "AfiListAddress",
    "ControlMessage", "DataHeader", "DecodeError", "EidPrefix", "EidRecord",
    "EncapsulatedControlMessage", "EncodeError", "GPE_ETHERNET", "GPE_IPV4", "GPE_IPV6", "GPE_NSH",
    "InstanceIdAddress", "KEY_ID_HMAC_SHA_1", "KEY_ID_HMAC_SHA_256", "KEY_ID_NONE",
    "LISP_CONTROL_PORT", "LISP_DATA_PORT", "Locator", "MapNotify", "MapNotifyAck", "MapRegister",
    "MapReply", "MapRequest", "MappingRecord", "NO_ADDRESS", "NoAddress", "UnknownLcafAddress",
    "decode_address", "decode_control", "decode_data_header", "encode_address",
    "entropy_source_port", "internet_checksum", "sign", "verify_authentication",
]
