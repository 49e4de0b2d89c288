"""The LISP data header (RFC 9300 / RFC 9305 LISP-GPE): round trips, hand-assembled bytes, a
bit-level model of which bits survive decoding, and refusals on both sides."""

from __future__ import annotations

import re
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lisp_app.protocol import (GPE_IPV4, DataHeader, DecodeError, EncodeError,
                               decode_data_header)
from tests.codec_vectors import DATA_HEADER_VECTORS

N, L, E, V, I, P = 0x80, 0x40, 0x20, 0x10, 0x08, 0x04


@pytest.mark.parametrize("name", sorted(DATA_HEADER_VECTORS))
def test_vector_round_trips_both_ways(name):
    header = DATA_HEADER_VECTORS[name]
    wire = header.encode()
    assert len(wire) == 8
    assert decode_data_header(wire) == (header, 8)
    assert decode_data_header(wire)[0].encode() == wire


@pytest.mark.parametrize("header, hex_bytes", [
    (DataHeader.gpe(1000), "0c000001 0003e800"),  # what Open vSwitch's GPE port sends
    (DataHeader.gpe(0xFFFFFF, 2), "0c000002 ffffff00"),
    (DataHeader(nonce=0xABCDEF, echo_nonce=True), "a0abcdef 00000000"),
    (DataHeader(nonce=1, lsbs=0xFFFFFFFF), "c0000001 ffffffff"),
    (DataHeader(map_version=(0xFFF, 0x001)), "10fff001 00000000"),
    (DataHeader(instance_id=0xABCDEF, lsbs=0x5A, key_id=3), "4b000000 abcdef5a"),
    (DataHeader(instance_id=77, map_version=(1, 2), key_id=1), "19001002 00004d00"),
    (DataHeader(lsbs=0x80000001), "40000000 80000001"),
    (DataHeader(), "00000000 00000000"),
])
def test_encoding_bytes(header, hex_bytes):
    assert header.encode() == bytes.fromhex(hex_bytes)


def test_decode_at_an_offset_returns_where_the_inner_packet_starts():
    header = DataHeader.gpe(42)
    data = b"outer-udp" + header.encode() + b"inner packet"
    decoded, inner = decode_data_header(data, 9)
    assert decoded == header
    assert data[inner:] == b"inner packet"
    assert decode_data_header(bytearray(data), 9) == (header, 17)
    assert decode_data_header(memoryview(data), 9) == (header, 17)


def test_echo_bit_without_nonce_is_ignored():
    assert decode_data_header(bytes((E, 0, 0, 0)) + bytes(4))[0] == DataHeader()
    decoded = decode_data_header(bytes((E | V, 0x00, 0x10, 0x02)) + bytes(4))[0]
    assert decoded == DataHeader(map_version=(1, 2))


def test_reserved_bits_are_ignored():
    # GPE: the 16 bits before Next Protocol are reserved; without I and L, word 1 is reserved.
    assert decode_data_header(bytes.fromhex("04ffff01 00000000"))[0] == \
        DataHeader(next_protocol=GPE_IPV4)
    assert decode_data_header(bytes.fromhex("00123456 789abcde"))[0] == DataHeader()
    # I without L: the low byte of word 1 is reserved.
    assert decode_data_header(bytes.fromhex("08000000 000001ff"))[0] == DataHeader(instance_id=1)


@pytest.mark.parametrize("flags, complaint", [
    (N | V, "N and V bits both set"),
    (N | V | I | L, "N and V bits both set"),
    (P | N, "P bit) with a nonce or map-version"),
    (P | V, "P bit) with a nonce or map-version"),
])
def test_decode_refuses_conflicting_flags(flags, complaint):
    data = b"\xee" * 3 + bytes((flags,)) + bytes(7) + b"payload"
    with pytest.raises(DecodeError, match=re.escape(complaint)) as caught:
        decode_data_header(data, 3)
    assert caught.value.offset == 3


@pytest.mark.parametrize("length", range(8))
def test_decode_refuses_truncation(length):
    data = DataHeader.gpe(5).encode()[:length]
    with pytest.raises(DecodeError, match=f"truncated \\({length} of 8 bytes\\)") as caught:
        decode_data_header(data)
    assert caught.value.offset == 0
    with pytest.raises(DecodeError):
        decode_data_header(b"xx" + data, 2)


@pytest.mark.parametrize("header, complaint", [
    (DataHeader(nonce=1, map_version=(1, 1)), "N and V"),
    (DataHeader(nonce=1, next_protocol=1), "P bit"),
    (DataHeader(map_version=(0, 0), next_protocol=1), "P bit"),
    (DataHeader(echo_nonce=True), "E bit"),
    (DataHeader(echo_nonce=True, map_version=(1, 1)), "E bit"),
    (DataHeader(nonce=1 << 24), "nonce"),
    (DataHeader(map_version=(4096, 0)), "source map-version"),
    (DataHeader(map_version=(0, 4096)), "destination map-version"),
    (DataHeader(instance_id=1 << 24), "instance_id"),
    (DataHeader(instance_id=1, lsbs=256), "lsbs"),
    (DataHeader(lsbs=1 << 32), "lsbs"),
    (DataHeader(key_id=4), "key_id"),
    (DataHeader(next_protocol=256), "next_protocol"),
    (DataHeader(nonce=-1), "nonce"),
])
def test_encode_refuses(header, complaint):
    with pytest.raises(EncodeError, match=complaint):
        header.encode()


# --- a bit-level model ----------------------------------------------------------------------------


def surviving_bits(data: bytes) -> bytes | None:
    """What encode(decode(data)) should be, worked out bit by bit from RFC 9300 / 9305; None when
    the flags conflict and decoding must fail."""
    flags = data[0]
    word0 = int.from_bytes(data[1:4], "big")
    word1 = int.from_bytes(data[4:8], "big")
    if flags & N and flags & V or flags & P and flags & (N | V):
        return None
    kept_flags = flags & (N | L | V | I | P | 0x03)
    if flags & E and flags & N:
        kept_flags |= E
    if flags & (N | V):
        kept_word0 = word0
    elif flags & P:
        kept_word0 = word0 & 0xFF
    else:
        kept_word0 = 0
    if flags & I:
        kept_word1 = word1 & (0xFFFFFFFF if flags & L else 0xFFFFFF00)
    else:
        kept_word1 = word1 if flags & L else 0
    return struct.pack("!BBHI", kept_flags, kept_word0 >> 16, kept_word0 & 0xFFFF, kept_word1)


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=8, max_size=8))
def test_decode_keeps_exactly_the_meaningful_bits(data):
    expected = surviving_bits(data)
    if expected is None:
        with pytest.raises(DecodeError):
            decode_data_header(data)
        return
    header, after = decode_data_header(data)
    assert after == 8
    assert header.encode() == expected
    assert decode_data_header(expected)[0] == header


def test_model_covers_every_flag_combination():
    for flags in range(256):
        data = bytes((flags,)) + bytes.fromhex("a1b2c3d4e5f607")
        expected = surviving_bits(data)
        if expected is None:
            with pytest.raises(DecodeError):
                decode_data_header(data)
        else:
            assert decode_data_header(data)[0].encode() == expected, hex(flags)


@st.composite
def headers(draw) -> DataHeader:
    word0 = draw(st.sampled_from(("nonce", "version", "gpe", None)))
    nonce = draw(st.integers(0, 2**24 - 1)) if word0 == "nonce" else None
    version = (draw(st.tuples(st.integers(0, 4095), st.integers(0, 4095)))
               if word0 == "version" else None)
    next_protocol = draw(st.integers(0, 255)) if word0 == "gpe" else None
    iid = draw(st.none() | st.integers(0, 2**24 - 1))
    lsbs = draw(st.none() | st.integers(0, 255 if iid is not None else 2**32 - 1))
    echo = nonce is not None and draw(st.booleans())
    return DataHeader(iid, lsbs, nonce, echo, version, next_protocol, draw(st.integers(0, 3)))


@settings(max_examples=300, deadline=None)
@given(headers())
def test_generated_headers_round_trip(header):
    wire = header.encode()
    assert decode_data_header(wire) == (header, 8)
    assert surviving_bits(wire) == wire  # a generated header has no reserved bits set



def test_an_offset_outside_the_buffer_is_refused_with_a_sane_offset():
    import pytest
    from lisp_app.protocol import DecodeError, decode_data_header
    for off in (-1, -8, 17):
        with pytest.raises(DecodeError, match="outside") as info:
            decode_data_header(bytes(16), off)
        assert 0 <= info.value.offset <= 16


# -- the entropy source port -------------------------------------------------------------------

FLOWS = [
    ("10.1.0.10", "10.2.0.10", 5000, 80),
    ("10.1.0.10", "10.2.0.10", 5001, 80),
    ("10.2.0.10", "10.1.0.10", 80, 5000),
    ("2001:db8:1::10", "2001:db8:2::10", 5000, 80),
    ("10.1.0.10", "10.2.0.10", None, None),
    (None, None, None, None),
]


def _flow(src, dst, sport, dport):
    from ipaddress import ip_address
    return (None if src is None else ip_address(src), None if dst is None else ip_address(dst),
            sport, dport)


def test_entropy_source_port_is_a_stable_port_in_the_dynamic_range():
    from lisp_app.protocol.data import entropy_source_port
    ports = [entropy_source_port(*_flow(*f)) for f in FLOWS]
    assert all(0xC000 <= p <= 0xFFFF for p in ports)
    assert ports == [entropy_source_port(*_flow(*f)) for f in FLOWS]
    assert len(set(ports)) == len(ports)  # these flows happen not to collide
    # 0 and None are different fields; so are an IPv4 address and the IPv6 one mapping it
    from ipaddress import ip_address
    assert entropy_source_port(None, None, 0, 0) != entropy_source_port(None, None, None, None)
    v4 = ip_address("10.1.0.10")
    assert entropy_source_port(v4, None, None, None) != entropy_source_port(
        ip_address(f"::ffff:{v4}"), None, None, None)
    spread = {entropy_source_port(v4, ip_address("10.2.0.10"), p, 80) for p in range(4096)}
    assert len(spread) > 3000  # flows spread over the 16384 ports
    with pytest.raises(ValueError):
        entropy_source_port(v4, v4, 65536, 80)
    with pytest.raises(TypeError):
        entropy_source_port("10.1.0.10", v4, 1, 80)


def test_entropy_source_port_is_the_same_whatever_the_hash_seed():
    """Unlike hash(), the port does not depend on PYTHONHASHSEED: another process, with another
    seed, computes the same ports."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from lisp_app.protocol.data import entropy_source_port
    here = [entropy_source_port(*_flow(*f)) for f in FLOWS]
    code = ("import json, sys; from ipaddress import ip_address as a; "
            "from lisp_app.protocol.data import entropy_source_port as e; "
            "flows = json.loads(sys.argv[1]); "
            "print(json.dumps([e(*(None if x is None else a(x) for x in f[:2]), *f[2:]) "
            "for f in flows]))")
    root = str(Path(__file__).resolve().parents[2])
    for seed in ("0", "1", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=root)
        out = subprocess.run([sys.executable, "-c", code, json.dumps(FLOWS)], env=env, cwd=root,
                             capture_output=True, text=True, check=True, timeout=60)
        assert json.loads(out.stdout) == here
