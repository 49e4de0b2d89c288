"""Map-Register / Map-Notify authentication against independently computed HMACs.

The oracle is HMAC written out from its definition (RFC 2104) over hashlib, checked first against
published test vectors (RFC 2202 for HMAC-SHA-1, RFC 4231 for HMAC-SHA-256); the messages it is
applied to are assembled here byte by byte, with the authentication data zeroed."""

from __future__ import annotations

import hashlib
import struct
from ipaddress import IPv4Address

import pytest

from lisp_app.protocol import (KEY_ID_HMAC_SHA_1, KEY_ID_HMAC_SHA_256, KEY_ID_NONE, EncodeError,
                               Locator, MapNotify, MapNotifyAck, MapRegister, MappingRecord,
                               decode_control, sign, verify_authentication)
from tests.codec_vectors import AUTH_KEY, CONTROL_VECTORS

HASH_NAMES = {KEY_ID_HMAC_SHA_1: "sha1", KEY_ID_HMAC_SHA_256: "sha256"}
KEY = b"site-key-\x00\xff"


def rfc2104_hmac(hash_name: str, key: bytes, message: bytes) -> bytes:
    """HMAC by its definition: H((K ^ opad) || H((K ^ ipad) || message))."""
    block = hashlib.new(hash_name).block_size
    if len(key) > block:
        key = hashlib.new(hash_name, key).digest()
    key = key.ljust(block, b"\x00")
    inner = hashlib.new(hash_name, bytes(b ^ 0x36 for b in key) + message).digest()
    return hashlib.new(hash_name, bytes(b ^ 0x5C for b in key) + inner).digest()


LARGE_KEY_DATA = b"Test Using Larger Than Block-Size Key - Hash Key First"

PUBLISHED_VECTORS = [
    # RFC 2202 section 3 (HMAC-SHA-1), test cases 1, 2, 3, 5 and 6.
    ("sha1", b"\x0b" * 20, b"Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"),
    ("sha1", b"Jefe", b"what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    ("sha1", b"\xaa" * 20, b"\xdd" * 50, "125d7342b9ac11cd91a39af48aa17b4f63f175d3"),
    ("sha1", b"\x0c" * 20, b"Test With Truncation", "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"),
    ("sha1", b"\xaa" * 80, LARGE_KEY_DATA, "aa4ae5e15272d00e95705637ce8a3b55ed402112"),
    # RFC 4231 section 4 (HMAC-SHA-256), test cases 1, 2 and 6.
    ("sha256", b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    ("sha256", b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ("sha256", b"\xaa" * 131, LARGE_KEY_DATA,
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
]


@pytest.mark.parametrize("hash_name, key, data, digest", PUBLISHED_VECTORS)
def test_oracle_matches_published_vectors(hash_name, key, data, digest):
    assert rfc2104_hmac(hash_name, key, data).hex() == digest


def test_oracle_truncation_matches_rfc4231_case_5():
    mac = rfc2104_hmac("sha256", b"\x0c" * 20, b"Test With Truncation")
    assert mac[:16].hex() == "a3b6167473100ee06e0c796c2955552b"


# --- hand-built messages --------------------------------------------------------------------------

RECORD = MappingRecord(IPv4Address("10.1.0.0"), 24, (Locator(IPv4Address("192.0.2.1")),),
                       authoritative=True)
RECORD_BYTES = (struct.pack("!IBBHH", 1440, 1, 24, 0x1000, 0) + b"\x00\x01\x0a\x01\x00\x00"
                + bytes((1, 100, 255, 0)) + b"\x00\x01" + b"\x00\x01\xc0\x00\x02\x01")
NONCE = 0x0102030405060708
XTR_ID, SITE_ID = 0x000102030405060708090A0B0C0D0E0F, 0x1122334455667788


def wire(first_byte: int, key_id: int, auth: bytes, *, third_byte: int = 0,
         xtr: bool = False) -> bytes:
    """A Map-Register/Notify/Notify-Ack with RECORD, written field by field."""
    message = (bytes((first_byte, 0, third_byte, 1)) + NONCE.to_bytes(8, "big")
               + struct.pack("!HH", key_id, len(auth)) + auth + RECORD_BYTES)
    if xtr:
        message += XTR_ID.to_bytes(16, "big") + SITE_ID.to_bytes(8, "big")
    return message


def expected_signed(first_byte: int, key_id: int, mac_len: int, key: bytes = KEY,
                    **kwargs) -> bytes:
    """The signed bytes: the HMAC over the message whose auth data is mac_len zero bytes."""
    blank = wire(first_byte, key_id, bytes(mac_len), **kwargs)
    mac = rfc2104_hmac(HASH_NAMES[key_id], key, blank)[:mac_len]
    return wire(first_byte, key_id, mac, **kwargs)


SIGNING_CASES = [
    # (message, wire first byte, third byte, xTR-ID present)
    (MapRegister(NONCE, (RECORD,)), 0x30, 0, False),
    (MapRegister(NONCE, (RECORD,), proxy_reply=True, want_map_notify=True, xtr_id=XTR_ID,
                 site_id=SITE_ID), 0x3A, 1, True),
    (MapNotify(NONCE, (RECORD,)), 0x40, 0, False),
    (MapNotify(NONCE, (RECORD,), xtr_id=XTR_ID, site_id=SITE_ID), 0x48, 0, True),
    (MapNotifyAck(NONCE, (RECORD,)), 0x50, 0, False),
]
ALGORITHM_CASES = [(KEY_ID_HMAC_SHA_1, False, 20), (KEY_ID_HMAC_SHA_256, False, 32),
                   (KEY_ID_HMAC_SHA_1, True, 12), (KEY_ID_HMAC_SHA_256, True, 16)]


@pytest.mark.parametrize("message, first, third, xtr", SIGNING_CASES)
@pytest.mark.parametrize("key_id, truncated, mac_len", ALGORITHM_CASES)
def test_sign_matches_independent_hmac(message, first, third, xtr, key_id, truncated, mac_len):
    expected = expected_signed(first, key_id, mac_len, third_byte=third, xtr=xtr)
    signed = sign(message, KEY, key_id, truncated=truncated)
    assert signed.key_id == key_id
    assert len(signed.auth_data) == mac_len
    assert signed.encode() == expected
    assert decode_control(expected) == signed
    assert verify_authentication(expected, KEY)


def test_sign_with_a_key_longer_than_the_hash_block():
    long_key = bytes(range(200))
    for key_id, block_limit in ((KEY_ID_HMAC_SHA_1, 64), (KEY_ID_HMAC_SHA_256, 64)):
        assert len(long_key) > block_limit
        mac_len = 20 if key_id == KEY_ID_HMAC_SHA_1 else 32
        expected = expected_signed(0x30, key_id, mac_len, key=long_key)
        assert sign(MapRegister(NONCE, (RECORD,)), long_key, key_id).encode() == expected


def test_text_keys_are_utf8():
    text = "clé-partagée"
    signed = sign(MapRegister(NONCE, (RECORD,)), text, KEY_ID_HMAC_SHA_256).encode()
    assert signed == expected_signed(0x30, KEY_ID_HMAC_SHA_256, 32, key=text.encode("utf-8"))
    assert verify_authentication(signed, text)
    assert verify_authentication(signed, text.encode("utf-8"))


def test_signing_twice_gives_the_same_mac():
    once = sign(MapRegister(NONCE, (RECORD,)), KEY, KEY_ID_HMAC_SHA_1)
    assert sign(once, KEY, KEY_ID_HMAC_SHA_1) == once
    assert sign(once, KEY, KEY_ID_HMAC_SHA_256).auth_data != once.auth_data


def test_sign_with_key_id_0_clears_authentication():
    signed = sign(MapRegister(NONCE, (RECORD,)), KEY, KEY_ID_HMAC_SHA_1)
    cleared = sign(signed, KEY, KEY_ID_NONE)
    assert (cleared.key_id, cleared.auth_data) == (0, b"")
    assert cleared.encode() == wire(0x30, 0, b"")


@pytest.mark.parametrize("key_id", [3, 0x0101, 0xFFFF])
def test_sign_refuses_unknown_key_id(key_id):
    with pytest.raises(EncodeError, match="unsupported key-id"):
        sign(MapRegister(NONCE, (RECORD,)), KEY, key_id)


# --- verification ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key_id, truncated, mac_len", ALGORITHM_CASES)
def test_verify_rejects_wrong_key_and_every_single_bit_change(key_id, truncated, mac_len):
    signed = sign(MapRegister(NONCE, (RECORD,), xtr_id=XTR_ID, site_id=SITE_ID), KEY, key_id,
                  truncated=truncated).encode()
    assert verify_authentication(signed, KEY)
    assert not verify_authentication(signed, KEY + b"x")
    assert not verify_authentication(signed, KEY[:-1])
    assert not verify_authentication(signed, b"")
    for position in range(len(signed)):
        for bit in (0x01, 0x80):
            tampered = bytearray(signed)
            tampered[position] ^= bit
            assert not verify_authentication(bytes(tampered), KEY), (position, bit)


@pytest.mark.parametrize("name", ["notify-sha1", "notify-sha256-xtr-id", "notify-ack-sha1",
                                  "register-sha1", "register-sha256-xtr-id-all-flags",
                                  "register-sha1-96", "register-sha256-128-xtr-id"])
def test_verify_signed_vectors(name):
    signed = CONTROL_VECTORS[name].encode()
    assert verify_authentication(signed, AUTH_KEY)
    assert not verify_authentication(signed, KEY)


def test_verify_hashes_reserved_bits_as_received():
    # A sender that set a reserved bit hashed it: the MAC over the bytes as sent must verify.
    blank = bytearray(wire(0x30, KEY_ID_HMAC_SHA_1, bytes(20)))
    blank[1] = 0x80  # reserved
    mac = rfc2104_hmac("sha1", KEY, bytes(blank))
    received = bytes(blank[:16]) + mac + bytes(blank[36:])
    assert verify_authentication(received, KEY)
    # The decoded (and re-encoded) message drops that bit, so its MAC no longer matches.
    assert not verify_authentication(decode_control(received).encode(), KEY)


def test_verify_refuses_key_id_0():
    unsigned = MapRegister(NONCE, (RECORD,)).encode()
    assert not verify_authentication(unsigned, KEY)
    assert not verify_authentication(unsigned, b"")
    # Even with auth data present, key-id 0 means no authentication to check.
    assert not verify_authentication(wire(0x30, 0, bytes(20)), KEY)


@pytest.mark.parametrize("key_id", [3, 0x0101, 0x0201, 0xFFFF])
def test_verify_refuses_unknown_key_id(key_id):
    blank = wire(0x30, key_id, bytes(20))
    mac = rfc2104_hmac("sha1", KEY, blank)
    assert not verify_authentication(wire(0x30, key_id, mac), KEY)


@pytest.mark.parametrize("key_id, mac_len", [(1, 19), (1, 21), (1, 16), (1, 32), (2, 12),
                                             (2, 20), (2, 31), (2, 0), (1, 0)])
def test_verify_refuses_mac_lengths_neither_full_nor_rfc_truncated(key_id, mac_len):
    blank = wire(0x30, key_id, bytes(mac_len))
    mac = rfc2104_hmac(HASH_NAMES[key_id], KEY, blank)
    mac = (mac * 2)[:mac_len]
    assert not verify_authentication(wire(0x30, key_id, mac), KEY)


def test_verify_refuses_auth_length_past_the_end_and_short_input():
    signed = sign(MapRegister(NONCE, (RECORD,)), KEY, KEY_ID_HMAC_SHA_1).encode()
    assert not verify_authentication(signed[:30], KEY)  # MAC cut short
    assert not verify_authentication(signed[:15], KEY)
    assert not verify_authentication(b"", KEY)


def test_verify_refuses_other_message_types():
    signed = bytearray(sign(MapRegister(NONCE, (RECORD,)), KEY, KEY_ID_HMAC_SHA_1).encode())
    for msg_type in (1, 2, 6, 8, 15):
        signed[0] = msg_type << 4
        blank = bytes(signed[:16]) + bytes(20) + bytes(signed[36:])
        forged = bytes(signed[:16]) + rfc2104_hmac("sha1", KEY, blank) + bytes(signed[36:])
        assert not verify_authentication(forged, KEY), msg_type


def test_map_notify_mac_does_not_verify_as_map_notify_ack():
    notify = sign(MapNotify(NONCE, (RECORD,)), KEY, KEY_ID_HMAC_SHA_256).encode()
    as_ack = bytes((0x50,)) + notify[1:]
    assert verify_authentication(notify, KEY)
    assert not verify_authentication(as_ack, KEY)
    ack = sign(MapNotifyAck(NONCE, (RECORD,)), KEY, KEY_ID_HMAC_SHA_256)
    assert ack.auth_data != decode_control(notify).auth_data
