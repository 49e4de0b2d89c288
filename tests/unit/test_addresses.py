"""LISP addresses: AFI encodings and LCAFs (Instance-ID, AFI list, unknown types kept raw) at the
byte level, the decoder's offset and end handling, the encoder's refusals, and EidPrefix."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lisp_app.protocol import (NO_ADDRESS, AfiListAddress, DecodeError, EidPrefix, EncodeError,
                               InstanceIdAddress, UnknownLcafAddress, decode_address,
                               encode_address)
from lisp_app.protocol.addresses import max_mask_len
from tests.codec_vectors import LCAF_NESTING_LIMIT

V4 = IPv4Address("192.0.2.33")
V6 = IPv6Address("2001:db8::abcd")


def lcaf(lcaf_type: int, body: bytes, flags: int = 0, rsvd2: int = 0, rsvd1: int = 0) -> bytes:
    return struct.pack("!HBBBBH", 16387, rsvd1, flags, lcaf_type, rsvd2, len(body)) + body


ADDRESS_BYTES = [
    (NO_ADDRESS, "0000"),
    (V4, "0001 c0000221"),
    (V6, "0002 20010db8 00000000 00000000 0000abcd"),
    (InstanceIdAddress(1000, V4, 24), lcaf(2, bytes.fromhex("000003e8 0001c0000221"),
                                           rsvd2=24).hex()),
    (InstanceIdAddress(0xFFFFFFFF, NO_ADDRESS), lcaf(2, bytes.fromhex("ffffffff 0000")).hex()),
    (AfiListAddress((V4, V6)), lcaf(1, bytes.fromhex("0001c0000221 0002") + V6.packed).hex()),
    (AfiListAddress(()), lcaf(1, b"").hex()),
    (UnknownLcafAddress(10, b"\x01\x02\x03", flags=0x80, rsvd2=7),
     lcaf(10, b"\x01\x02\x03", flags=0x80, rsvd2=7).hex()),
    (UnknownLcafAddress(255, b""), lcaf(255, b"").hex()),
]


@pytest.mark.parametrize("address, hex_bytes", ADDRESS_BYTES)
def test_address_bytes_both_ways(address, hex_bytes):
    wire = bytes.fromhex(hex_bytes)
    assert encode_address(address) == wire
    framed = b"\xaa\xbb" + wire + b"\xcc"
    assert decode_address(framed, 2, len(framed) - 1) == (address, 2 + len(wire))


def test_decoder_stops_at_end_not_at_buffer_length():
    wire = encode_address(V4)
    with pytest.raises(DecodeError, match="truncated IPv4 address") as caught:
        decode_address(wire + b"\x00" * 10, 0, len(wire) - 1)
    assert caught.value.offset == 2
    with pytest.raises(DecodeError, match="truncated IPv6 address"):
        decode_address(encode_address(V6) + bytes(4), 0, 17)
    with pytest.raises(DecodeError, match="EID: truncated AFI") as caught:
        decode_address(b"\x00\x01", 1, 2, what="EID")
    assert caught.value.offset == 1


def test_lcaf_reserved_fields_are_ignored_for_known_types():
    # Rsvd1 and Flags of Instance-ID and AFI-list LCAFs are reserved: accepted, not kept.
    iid = lcaf(2, bytes.fromhex("00000005 0000"), flags=0xFF, rsvd1=0xFF, rsvd2=3)
    assert decode_address(iid, 0, len(iid)) == (InstanceIdAddress(5, NO_ADDRESS, 3), len(iid))
    afi_list = lcaf(1, b"\x00\x00", flags=0x01, rsvd2=9)
    assert decode_address(afi_list, 0, len(afi_list))[0] == AfiListAddress((NO_ADDRESS,))


def test_unknown_lcaf_keeps_flags_rsvd2_and_payload():
    wire = lcaf(14, bytes(range(20)), flags=0x42, rsvd2=0x24)
    address, after = decode_address(wire, 0, len(wire))
    assert address == UnknownLcafAddress(14, bytes(range(20)), 0x42, 0x24)
    assert after == len(wire)
    assert encode_address(address) == wire


def test_nested_lcafs_round_trip():
    address = AfiListAddress((InstanceIdAddress(7, AfiListAddress((V4, V6)), 0),
                              UnknownLcafAddress(3, b"geo"), NO_ADDRESS))
    wire = encode_address(address)
    assert decode_address(wire, 0, len(wire)) == (address, len(wire))


def nested(levels: int, innermost=V4):
    address = innermost
    for level in range(levels):
        address = InstanceIdAddress(level, address) if level % 2 else AfiListAddress((address,))
    return address


def test_nesting_limit_is_the_same_for_encoder_and_decoder():
    deepest = nested(LCAF_NESTING_LIMIT)
    wire = encode_address(deepest)
    assert decode_address(wire, 0, len(wire))[0] == deepest
    with pytest.raises(EncodeError, match="nested deeper"):
        encode_address(nested(LCAF_NESTING_LIMIT + 1))
    # Far too deep for recursion to be safe: refused before Python's recursion limit is reached.
    with pytest.raises(EncodeError, match="nested deeper"):
        encode_address(nested(5000))
    with pytest.raises(EncodeError, match="nested deeper"):
        encode_address(nested(LCAF_NESTING_LIMIT + 1, innermost=UnknownLcafAddress(9, b"")))


@pytest.mark.parametrize("address, complaint", [
    (InstanceIdAddress(1 << 32, V4), "instance_id"),
    (InstanceIdAddress(-1, V4), "instance_id"),
    (InstanceIdAddress(1, V4, 256), "IID mask_len"),
    (InstanceIdAddress(1, "10.0.0.1"), "not a LISP address"),
    (UnknownLcafAddress(256, b""), "LCAF type"),
    (UnknownLcafAddress(1, b""), "decoded as AfiListAddress"),
    (UnknownLcafAddress(2, bytes(6)), "decoded as InstanceIdAddress"),
    (UnknownLcafAddress(9, b"", flags=256), "LCAF flags"),
    (UnknownLcafAddress(9, b"", rsvd2=-1), "LCAF rsvd2"),
    (UnknownLcafAddress(9, bytes(65536)), "exceeds 65535"),
    (AfiListAddress((V6,) * 3641), "exceeds 65535"),
    ("192.0.2.1", "not a LISP address"),
    (None, "not a LISP address"),
    (IPv4Network("10.0.0.0/8"), "not a LISP address"),
])
def test_encoder_refusals(address, complaint):
    with pytest.raises(EncodeError, match=complaint):
        encode_address(address)


def test_largest_lcaf_body_is_accepted():
    address = UnknownLcafAddress(9, bytes(65535))
    wire = encode_address(address)
    assert wire[6:8] == b"\xff\xff"
    assert decode_address(wire, 0, len(wire)) == (address, len(wire))


def test_max_mask_len():
    assert max_mask_len(V4) == 32
    assert max_mask_len(V6) == 128
    assert max_mask_len(InstanceIdAddress(1, InstanceIdAddress(2, V6))) == 128
    assert max_mask_len(NO_ADDRESS) is None
    assert max_mask_len(AfiListAddress((V4,))) is None
    assert max_mask_len(UnknownLcafAddress(9, b"")) is None


def test_address_text():
    assert str(NO_ADDRESS) == "no-address"
    assert str(InstanceIdAddress(5, V6)) == "[5]2001:db8::abcd"
    assert str(AfiListAddress((V4, NO_ADDRESS))) == "(192.0.2.33, no-address)"
    assert str(UnknownLcafAddress(10, b"\x01\xff")) == "lcaf-type-10:01ff"


# --- EidPrefix ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, instance_id, network", [
    ("[1000]10.1.0.0/24", 1000, IPv4Network("10.1.0.0/24")),
    ("10.1.0.0/24", 0, IPv4Network("10.1.0.0/24")),
    ("  [16777215]2001:db8::/32 ", 0xFFFFFF, IPv6Network("2001:db8::/32")),
    ("[0]0.0.0.0/0", 0, IPv4Network("0.0.0.0/0")),
])
def test_eid_prefix_parse(text, instance_id, network):
    prefix = EidPrefix.parse(text)
    assert (prefix.instance_id, prefix.network) == (instance_id, network)


@pytest.mark.parametrize("text, complaint", [
    ("[x]10.0.0.0/8", "not a number"),
    ("[1 10.0.0.0/8", "without"),
    ("10.0.0.1/8", "host bits"),
    ("[16777216]10.0.0.0/8", "24-bit"),
    ("[-1]10.0.0.0/8", "24-bit"),
    ("[1]not-an-address", "does not appear to be"),
])
def test_eid_prefix_parse_refusals(text, complaint):
    with pytest.raises(ValueError, match=complaint):
        EidPrefix.parse(text)


def test_eid_prefix_wire_forms():
    plain = EidPrefix.parse("10.1.0.0/24")
    assert plain.to_wire() == (IPv4Address("10.1.0.0"), 24)
    iid = EidPrefix.parse("[7]2001:db8::/48")
    assert iid.to_wire() == (InstanceIdAddress(7, IPv6Address("2001:db8::"), 48), 48)
    assert EidPrefix.from_wire(*iid.to_wire()) == iid
    assert EidPrefix.from_wire(*plain.to_wire()) == plain


def test_eid_prefix_from_wire_clears_host_bits_and_keeps_24_iid_bits():
    prefix = EidPrefix.from_wire(InstanceIdAddress(0x01000005, IPv4Address("10.1.2.3")), 16)
    assert prefix == EidPrefix(5, IPv4Network("10.1.0.0/16"))
    with pytest.raises(ValueError, match="not an IP address"):
        EidPrefix.from_wire(AfiListAddress((V4,)), 8)
    with pytest.raises(ValueError):
        EidPrefix.from_wire(V4, 33)


def test_eid_prefix_contains_and_text():
    outer = EidPrefix.parse("[5]10.0.0.0/8")
    assert outer.contains(EidPrefix.parse("[5]10.1.0.0/16"))
    assert outer.contains(outer)
    assert not outer.contains(EidPrefix.parse("[6]10.1.0.0/16"))
    assert not outer.contains(EidPrefix.parse("10.1.0.0/16"))
    assert not outer.contains(EidPrefix.parse("[5]11.0.0.0/16"))
    assert not EidPrefix.parse("::/0").contains(EidPrefix.parse("10.0.0.0/8"))
    assert str(outer) == "[5]10.0.0.0/8"
    assert str(EidPrefix.parse("2001:db8::/32")) == "2001:db8::/32"


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.integers(0, 2**128 - 1), st.integers(0, 128), st.integers(0, 2**128 - 1),
       st.integers(0, 128), st.integers(0, 1), st.integers(0, 1))
def test_eid_prefix_contains_is_subnet_of(v4, bits_a, len_a, bits_b, len_b, iid_a, iid_b):
    if v4:
        a = IPv4Network((bits_a >> 96, min(len_a, 32)), strict=False)
        b = IPv4Network(((bits_a if bits_b & 1 else bits_b) >> 96, min(len_b, 32)), strict=False)
    else:
        a = IPv6Network((bits_a, len_a), strict=False)
        b = IPv6Network((bits_a if bits_b & 1 else bits_b, len_b), strict=False)
    outer, inner = EidPrefix(iid_a, a), EidPrefix(iid_b, b)
    assert outer.contains(inner) == (iid_a == iid_b and b.subnet_of(a))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**24 - 1), st.booleans(), st.integers(0, 2**128 - 1), st.integers(0, 128))
def test_eid_prefix_text_and_wire_round_trip(instance_id, v4, bits, length):
    network = (IPv4Network((bits >> 96, min(length, 32)), strict=False) if v4
               else IPv6Network((bits, length), strict=False))
    prefix = EidPrefix(instance_id, network)
    assert EidPrefix.parse(str(prefix)) == prefix
    assert EidPrefix.from_wire(*prefix.to_wire()) == prefix
    address, mask_len = prefix.to_wire()
    wire = encode_address(address)
    assert decode_address(wire, 0, len(wire)) == (address, len(wire))


def test_eid_prefix_hash_is_kept_and_agrees_with_equality():
    """EidPrefix computes its hash once (it keys several dicts per mapping): equal prefixes hash
    alike however made (parsed, from the wire, replaced, copied, unpickled), unequal ones stay
    apart in a dict, and the kept hash is neither compared nor shown."""
    import copy
    import dataclasses
    import pickle
    from ipaddress import IPv4Network
    a = EidPrefix.parse("[7]10.1.0.0/16")
    made = [EidPrefix(7, IPv4Network("10.1.0.0/16")), copy.deepcopy(a),
            pickle.loads(pickle.dumps(a)), dataclasses.replace(EidPrefix.parse("[8]10.1.0.0/16"),
                                                               instance_id=7),
            EidPrefix.ipv4(7, 0x0A010000, 16), copy.deepcopy(EidPrefix.ipv4(7, 0x0A010000, 16)),
            pickle.loads(pickle.dumps(EidPrefix.ipv4(7, 0x0A010000, 16)))]
    for b in made:
        assert b == a and hash(b) == hash(a)
    table = {a: 1, EidPrefix.parse("10.1.0.0/16"): 2, EidPrefix.parse("[7]10.1.0.0/17"): 3}
    assert table[made[-1]] == 1 and len(table) == 3
    assert "_hash" not in repr(a) and hash(a) == hash((7, 0x0A010000, 16))


def test_fast_ipv4_construction_is_the_checked_one():
    """ipv4_network and EidPrefix.ipv4 (the bulk loads' unchecked constructors) give what the
    checked constructors give, for every prefix length and random addresses and instance-ids:
    equal, same hash, text, repr, attributes, containment, and they work as dict keys together."""
    import random
    from ipaddress import IPv4Address, IPv4Network
    from lisp_app.protocol.addresses import ipv4_network
    rng = random.Random(16)
    for _ in range(5000):
        plen = rng.randint(0, 32)
        value = rng.getrandbits(32) & (0xFFFFFFFF ^ (0xFFFFFFFF >> plen))
        fast, slow = ipv4_network(value, plen), IPv4Network((value, plen))
        assert type(fast) is IPv4Network and fast == slow and hash(fast) == hash(slow)
        assert (str(fast), repr(fast), fast.prefixlen, fast.netmask, fast.hostmask,
                fast.broadcast_address, fast.num_addresses, fast.with_netmask) == \
            (str(slow), repr(slow), slow.prefixlen, slow.netmask, slow.hostmask,
             slow.broadcast_address, slow.num_addresses, slow.with_netmask)
        assert type(fast.network_address) is IPv4Address and fast.network_address == \
            slow.network_address and fast.network_address.packed == slow.network_address.packed
        assert IPv4Address(value) in fast and fast.subnet_of(slow) and fast.version == 4
        iid = rng.getrandbits(24)
        quick, checked = EidPrefix.ipv4(iid, value, plen), EidPrefix(iid, slow)
        assert quick == checked and hash(quick) == hash(checked)
        assert (str(quick), repr(quick)) == (str(checked), repr(checked))
        assert {quick: 1}[checked] == 1 and checked.contains(quick) and quick.contains(checked)
