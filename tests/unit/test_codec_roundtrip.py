"""Control-message round trips: every named vector and hypothesis-generated messages satisfy
``decode(encode(m)) == m`` and ``encode(decode(b)) == b``; a few encodings are compared with bytes
assembled field by field here, so that a mistake made symmetrically in encoder and decoder (a flag
in the wrong bit, a count not computed) cannot hide behind a round trip."""

from __future__ import annotations

import struct
from dataclasses import replace
from functools import cache
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lisp_app.protocol import (NO_ADDRESS, Action, AfiListAddress, DecodeError, EidRecord,
                               EncapsulatedControlMessage, EncodeError, InstanceIdAddress, Locator,
                               MapNotify, MapNotifyAck, MapRegister, MapReply, MapRequest,
                               MappingRecord, UnknownLcafAddress, decode_control)
from tests.codec_vectors import (CONTROL_VECTORS, LCAF_NESTING_LIMIT, MAPPING_V4, ecm_bytes, ip,
                                 mask_limit)

TYPES_BY_PREFIX = {"request": MapRequest, "reply": MapReply, "register": MapRegister,
                   "notify-ack": MapNotifyAck, "notify": MapNotify,
                   "ecm": EncapsulatedControlMessage}


def expected_type(name: str) -> type:
    for prefix, cls in TYPES_BY_PREFIX.items():
        if name.startswith(prefix + "-"):
            return cls
    raise AssertionError(f"vector {name!r} has no known type prefix")


# --- the named vectors ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONTROL_VECTORS))
def test_vector_round_trips_both_ways(name):
    message = CONTROL_VECTORS[name]
    wire = message.encode()
    decoded = decode_control(wire)
    assert type(decoded) is expected_type(name)
    assert decoded == message
    assert decoded.encode() == wire
    assert decode_control(bytearray(wire)) == message
    assert decode_control(memoryview(wire)) == message


def test_vectors_cover_every_message_type_and_feature():
    kinds = {type(m) for m in CONTROL_VECTORS.values()}
    assert kinds == {MapRequest, MapReply, MapRegister, MapNotify, MapNotifyAck,
                     EncapsulatedControlMessage}
    wires = {name: m.encode() for name, m in CONTROL_VECTORS.items()}
    joined = b"".join(wires.values())
    assert b"\x40\x03\x00\x00\x02" in joined  # Instance-ID LCAF
    assert b"\x40\x03\x00\x00\x01" in joined  # AFI-list LCAF
    assert b"\x40\x03\x00\x5a\x0a" in joined  # an LCAF kept raw
    ecms = [m for m in CONTROL_VECTORS.values() if isinstance(m, EncapsulatedControlMessage)]
    assert {m.source.version for m in ecms} == {4, 6}
    assert {m.udp_checksum for m in ecms} == {True, False}
    assert any(isinstance(m, MapRequest) and m.map_reply_record for m in CONTROL_VECTORS.values())
    assert any(isinstance(m, MapReply) and m.security_data for m in CONTROL_VECTORS.values())
    assert any(getattr(m, "xtr_id", None) is not None for m in CONTROL_VECTORS.values())


# --- encodings checked against hand-assembled bytes -----------------------------------------------


def afi_v4(text: str) -> bytes:
    return b"\x00\x01" + IPv4Address(text).packed


def afi_v6(text: str) -> bytes:
    return b"\x00\x02" + IPv6Address(text).packed


def lcaf(lcaf_type: int, body: bytes, flags: int = 0, rsvd2: int = 0) -> bytes:
    return struct.pack("!HBBBBH", 16387, 0, flags, lcaf_type, rsvd2, len(body)) + body


def test_map_request_bytes():
    wire = (bytes((0x10, 0x00, 0x00, 0x01)) + bytes.fromhex("0102030405060708")
            + afi_v4("10.1.0.5") + afi_v4("192.0.2.1") + b"\x00\x18" + afi_v4("10.1.0.0"))
    assert CONTROL_VECTORS["request-ipv4"].encode() == wire


def test_map_request_flags_counts_and_iid_bytes():
    message = CONTROL_VECTORS["request-iid-three-records-all-flags"]
    iid_eid = lcaf(2, struct.pack("!I", 1000) + afi_v4("10.1.0.5"), rsvd2=32)
    wire = (bytes((0x10 | 0x08 | 0x01, 0x80, 0x40 | 0x20 | 2, 3)) + b"\xff" * 8 + iid_eid
            + afi_v4("192.0.2.1") + afi_v6("2001:db8:ff::1") + afi_v4("198.51.100.7")
            + b"\x00\x18" + lcaf(2, struct.pack("!I", 1000) + afi_v4("10.1.0.0"), rsvd2=24)
            + b"\x00\x80" + lcaf(2, struct.pack("!I", 0xFFFFFF) + afi_v6("2001:db8:1::"),
                                 rsvd2=128)
            + b"\x00\x00" + afi_v4("0.0.0.0"))
    assert message.encode() == wire


def test_map_request_p_s_bits_and_map_reply_record_bytes():
    wire = CONTROL_VECTORS["request-probe-with-map-reply-record"].encode()
    assert wire[0] == 0x10 | 0x04 | 0x02  # M (a Map-Reply record follows) and P
    assert wire.endswith(MAPPING_V4.encode())
    ps = CONTROL_VECTORS["request-ipv6-flags-p-s"].encode()
    assert ps[:4] == bytes((0x12, 0x40, 0x00, 0x01))


def test_map_reply_two_locators_bytes():
    record = (struct.pack("!IBBHH", 1440, 2, 24, 0x1000, 7) + afi_v4("10.1.0.0")
              + bytes((1, 60, 255, 0)) + b"\x00\x05" + afi_v4("192.0.2.1")
              + bytes((2, 40, 9, 10)) + b"\x00\x02" + afi_v4("198.51.100.7"))
    wire = bytes((0x20, 0, 0, 1)) + bytes.fromhex("aabbccddeeff0011") + record
    assert CONTROL_VECTORS["reply-ipv4-two-locators"].encode() == wire


def test_map_reply_flags_actions_and_security_bytes():
    assert CONTROL_VECTORS["reply-probe-echo-nonce"].encode()[0] == 0x20 | 0x08 | 0x04
    secure = CONTROL_VECTORS["reply-security-data"]
    wire = secure.encode()
    assert wire[0] == 0x20 | 0x02
    assert wire.endswith(MAPPING_V4.encode() + bytes(range(40)))
    negative = CONTROL_VECTORS["reply-negative-every-action"].encode()
    offset = 12
    for action in Action:
        ttl, count, mask, act_word, version = struct.unpack_from("!IBBHH", negative, offset)
        assert (ttl, count, mask) == (15, 0, 9)
        assert act_word == action << 13 | (action & 1) << 12
        offset += 10 + 6
    assert offset == len(negative)


def test_mixed_locators_bytes():
    wire = CONTROL_VECTORS["reply-mixed-lcaf-locators"].encode()
    dual = lcaf(1, afi_v4("192.0.2.1") + afi_v6("2001:db8:ff::1"))
    opaque = lcaf(10, bytes.fromhex("0000000100c000020a"), flags=0x5A, rsvd2=0x11)
    iid = lcaf(2, struct.pack("!I", 7) + afi_v6("2001:db8:ff::2"))
    expected = (struct.pack("!IBBHH", 0xFFFFFFFF, 4, 16, 0, 0xFFF)
                + lcaf(2, struct.pack("!I", 1000) + afi_v4("10.2.0.0"), rsvd2=16)
                + bytes((1, 100, 255, 0)) + b"\x00\x07" + dual
                + bytes((3, 0, 255, 0)) + b"\x00\x01" + opaque
                + bytes((4, 1, 255, 0)) + b"\x00\x00" + iid
                + bytes((255, 100, 255, 0)) + b"\x00\x01" + b"\x00\x00")
    assert wire[12:] == expected


def test_map_register_with_xtr_id_bytes():
    message = CONTROL_VECTORS["register-sha256-xtr-id-all-flags"]
    wire = message.encode()
    assert wire[:4] == bytes((0x30 | 0x08 | 0x04 | 0x02, 0, 0x01, 1))
    assert struct.unpack_from("!QHH", wire, 4) == (12, 2, 32)
    assert wire[16:48] == message.auth_data
    assert wire[48:-24] == message.records[0].encode()
    assert wire[-24:] == b"\xff" * 16 + bytes.fromhex("0123456789abcdef")


def test_map_notify_and_ack_bytes():
    notify = CONTROL_VECTORS["notify-sha256-xtr-id"].encode()
    assert notify[:4] == bytes((0x40 | 0x08, 0, 0, 2))
    assert notify[-24:] == (5).to_bytes(16, "big") + (6).to_bytes(8, "big")
    ack = CONTROL_VECTORS["notify-ack-xtr-id-unsigned"].encode()
    assert ack[:4] == bytes((0x50 | 0x08, 0, 0, 1))
    assert struct.unpack_from("!HH", ack, 12) == (0, 0)


@pytest.mark.parametrize("name", sorted(n for n in CONTROL_VECTORS if n.startswith("ecm-")))
def test_ecm_matches_independently_built_headers(name):
    ecm = CONTROL_VECTORS[name]
    flags = ecm.security << 3 | ecm.ddt_originated << 2 | ecm.to_etr << 1 | ecm.to_ms
    expected = ecm_bytes(ecm.message.encode(), ecm.source, ecm.destination, flags=flags,
                         sport=ecm.source_port, dport=ecm.dest_port, ttl=ecm.ttl, tos=ecm.tos,
                         ip_id=ecm.ip_id, frag=0x4000 if ecm.dont_fragment else 0,
                         flow_label=ecm.flow_label, udp_checksum=ecm.udp_checksum)
    assert ecm.encode() == expected


def test_ecm_udp_checksum_computing_to_zero_is_sent_as_ffff():
    ecm = CONTROL_VECTORS["ecm-udp-checksum-0xffff"]
    wire = ecm.encode()
    assert wire[4 + 20 + 6:4 + 20 + 8] == b"\xff\xff"
    assert decode_control(wire).udp_checksum is True


# --- encoder refusals -----------------------------------------------------------------------------

REQUEST = CONTROL_VECTORS["request-ipv4"]


@pytest.mark.parametrize("message, complaint", [
    (replace(REQUEST, itr_rlocs=()), "1 to 32 ITR-RLOCs"),
    (replace(REQUEST, itr_rlocs=(ip("192.0.2.1"),) * 33), "1 to 32 ITR-RLOCs"),
    (replace(REQUEST, records=()), "1 to 255 EID records"),
    (replace(REQUEST, nonce=1 << 64), "nonce"),
    (replace(REQUEST, records=(EidRecord(ip("10.0.0.0"), 33),)), "mask_len 33 exceeds 32"),
    (replace(REQUEST, records=(EidRecord(InstanceIdAddress(1, ip("::"), 0), 129),)),
     "mask_len 129 exceeds 128"),
    (replace(REQUEST, records=(EidRecord(NO_ADDRESS, 256),)), "mask_len"),
    (MapReply(1, (replace(MAPPING_V4, mask_len=40),)), "mask_len 40 exceeds 32"),
    (MapReply(1, (replace(MAPPING_V4, ttl=1 << 32),)), "TTL"),
    (MapReply(1, (replace(MAPPING_V4, action=8),)), "ACT"),
    (MapReply(1, (replace(MAPPING_V4, map_version=4096),)), "map_version"),
    (MapReply(1, (replace(MAPPING_V4, locators=(Locator(ip("192.0.2.1")),) * 256),)),
     "256 locators"),
    (MapReply(1, (replace(MAPPING_V4, locators=(Locator(ip("192.0.2.1"), priority=256),)),)),
     "priority"),
    (MapReply(1, (MAPPING_V4,) * 256), "256 records"),
    (MapReply(1, security_data=b"x"), "without the S bit"),
    (MapRegister(1, xtr_id=1), "go together"),
    (MapNotify(1, site_id=1), "go together"),
    (MapRegister(1, key_id=1 << 16), "key_id"),
    (MapRegister(1, auth_data=bytes(65536)), "65535"),
    (MapRegister(1, xtr_id=1 << 128, site_id=0), "xtr_id"),
    (EncapsulatedControlMessage(ip("10.0.0.1"), ip("::1"), REQUEST), "one family"),
    (EncapsulatedControlMessage(ip("10.0.0.1"), ip("10.0.0.2"),
                                EncapsulatedControlMessage(ip("10.0.0.3"), ip("10.0.0.4"),
                                                           REQUEST)),
     "another ECM"),
    (EncapsulatedControlMessage(ip("10.0.0.1"), ip("10.0.0.2"), REQUEST, ttl=256), "ttl"),
    (EncapsulatedControlMessage(ip("10.0.0.1"), ip("10.0.0.2"), REQUEST, flow_label=1),
     "IPv6 field"),
    (EncapsulatedControlMessage(ip("::1"), ip("::2"), REQUEST, ip_id=1), "IPv4 fields"),
    (EncapsulatedControlMessage(ip("::1"), ip("::2"), REQUEST, dont_fragment=True), "IPv4 fields"),
    (EncapsulatedControlMessage(ip("::1"), ip("::2"), REQUEST, flow_label=1 << 20), "flow_label"),
    (EncapsulatedControlMessage(ip("10.0.0.1"), ip("10.0.0.2"),
                                MapReply(1, security=True, security_data=bytes(65536 - 28 - 12))),
     "exceeds 65535"),
])
def test_encoder_refuses_what_cannot_be_sent(message, complaint):
    with pytest.raises(EncodeError, match=complaint):
        message.encode()


def test_largest_ipv4_ecm_that_fits_is_accepted():
    inner = MapReply(1, security=True, security_data=bytes(65535 - 28 - 12))
    wire = EncapsulatedControlMessage(ip("10.0.0.1"), ip("10.0.0.2"), inner).encode()
    assert len(wire) == 4 + 65535
    assert decode_control(wire).message == inner


# --- hypothesis: generated valid messages ---------------------------------------------------------

ipv4s = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
ipv6s = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
ips = st.one_of(ipv4s, ipv6s)
u8 = st.integers(0, 255)


@cache
def addresses(lcafs_above: int = 0) -> st.SearchStrategy:
    """Every kind of address, LCAFs nested no deeper than the codec allows."""
    leaves = st.one_of(ips, st.just(NO_ADDRESS))
    if lcafs_above >= LCAF_NESTING_LIMIT:
        return leaves
    inner = addresses(lcafs_above + 1)
    return st.one_of(
        leaves,
        st.builds(InstanceIdAddress, st.integers(0, 2**32 - 1), inner, u8),
        st.builds(AfiListAddress, st.lists(inner, max_size=3).map(tuple)),
        st.builds(UnknownLcafAddress, u8.filter(lambda t: t not in (1, 2)),
                  st.binary(max_size=16), u8, u8))


@st.composite
def eids(draw) -> tuple:
    eid = draw(addresses())
    return eid, draw(st.integers(0, mask_limit(eid)))


@st.composite
def locators(draw) -> Locator:
    return Locator(draw(addresses()), draw(u8), draw(u8), draw(u8), draw(u8), draw(st.booleans()),
                   draw(st.booleans()), draw(st.booleans()))


@st.composite
def mapping_records(draw) -> MappingRecord:
    eid, mask_len = draw(eids())
    action = draw(st.one_of(st.sampled_from(Action), st.integers(6, 7)))
    return MappingRecord(eid, mask_len, tuple(draw(st.lists(locators(), max_size=3))),
                         draw(st.integers(0, 2**32 - 1)), action, draw(st.booleans()),
                         draw(st.integers(0, 4095)))


nonces = st.integers(0, 2**64 - 1)
records_lists = st.lists(mapping_records(), max_size=3).map(tuple)


@st.composite
def map_requests(draw) -> MapRequest:
    records = tuple(EidRecord(*draw(eids())) for _ in range(draw(st.integers(1, 3))))
    rlocs = tuple(draw(st.lists(addresses(), min_size=1, max_size=32)))
    mrr = draw(st.none() | mapping_records())
    flags = draw(st.lists(st.booleans(), min_size=7, max_size=7))
    return MapRequest(draw(nonces), records, rlocs, draw(addresses()), *flags,
                      map_reply_record=mrr)


@st.composite
def map_replies(draw) -> MapReply:
    security = draw(st.booleans())
    data = draw(st.binary(max_size=24)) if security else b""
    return MapReply(draw(nonces), draw(records_lists), draw(st.booleans()), draw(st.booleans()),
                    security, data)


@st.composite
def authenticated(draw):
    kind = draw(st.sampled_from((MapRegister, MapNotify, MapNotifyAck)))
    xtr = draw(st.one_of(st.just((None, None)),
                         st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 2**64 - 1))))
    common = (draw(nonces), draw(records_lists), draw(st.integers(0, 65535)),
              draw(st.binary(max_size=40)))
    if kind is MapRegister:
        return MapRegister(*common, draw(st.booleans()), draw(st.booleans()), draw(st.booleans()),
                           *xtr)
    return kind(*common, *xtr)


@st.composite
def ecms(draw) -> EncapsulatedControlMessage:
    inner = draw(st.one_of(map_requests(), map_replies(), authenticated()))
    if draw(st.booleans()):
        src, dst = draw(ipv4s), draw(ipv4s)
        family = dict(ip_id=draw(st.integers(0, 65535)), dont_fragment=draw(st.booleans()))
    else:
        src, dst = draw(ipv6s), draw(ipv6s)
        family = dict(flow_label=draw(st.integers(0, 2**20 - 1)))
    flags = draw(st.lists(st.booleans(), min_size=5, max_size=5))
    return EncapsulatedControlMessage(src, dst, inner, draw(st.integers(0, 65535)),
                                      draw(st.integers(0, 65535)), draw(u8), draw(u8),
                                      udp_checksum=flags[0], security=flags[1],
                                      ddt_originated=flags[2], to_etr=flags[3], to_ms=flags[4],
                                      **family)


control_messages = st.one_of(map_requests(), map_replies(), authenticated(), ecms())
ROUND_TRIP_SETTINGS = settings(max_examples=300, deadline=None,
                               suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])


@ROUND_TRIP_SETTINGS
@given(control_messages)
def test_generated_messages_round_trip(message):
    wire = message.encode()
    decoded = decode_control(wire)
    assert decoded == message
    assert decoded.encode() == wire


@ROUND_TRIP_SETTINGS
@given(map_replies().filter(lambda m: m.security))
def test_generated_security_data_is_everything_after_the_records(message):
    records_end = len(replace(message, security_data=b"").encode())
    wire = message.encode()
    assert wire[records_end:] == message.security_data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_decode_or_raise_decode_error(data):
    try:
        decoded = decode_control(data)
    except DecodeError as error:
        assert 0 <= error.offset <= len(data)
    else:
        assert decode_control(decoded.encode()) == decoded


# --- every flag on its own, at the bit the RFCs give it ------------------------------------------

FLAG_BASES = {
    "request": MapRequest(1, (EidRecord(ip("10.0.0.0"), 8),), (ip("192.0.2.1"),)),
    "reply": MapReply(1, (MAPPING_V4,)),
    "register": MapRegister(1, (MAPPING_V4,)),
    "notify": MapNotify(1, (MAPPING_V4,)),
    "ack": MapNotifyAck(1, (MAPPING_V4,)),
    "ecm": EncapsulatedControlMessage(ip("10.0.0.1"), ip("10.0.0.2"), REQUEST),
}

SINGLE_FLAGS = [
    # (base, field and value, byte index, bit) -- RFC 9301 sections 5.2, 5.4, 5.6, 5.7, 5.8
    ("request", {"authoritative": True}, 0, 0x08),
    ("request", {"map_reply_record": MAPPING_V4}, 0, 0x04),
    ("request", {"probe": True}, 0, 0x02),
    ("request", {"smr": True}, 0, 0x01),
    ("request", {"pitr": True}, 1, 0x80),
    ("request", {"smr_invoked": True}, 1, 0x40),
    ("request", {"local_xtr": True}, 2, 0x40),
    ("request", {"dont_map_reply": True}, 2, 0x20),
    ("reply", {"probe": True}, 0, 0x08),
    ("reply", {"echo_nonce_capable": True}, 0, 0x04),
    ("reply", {"security": True}, 0, 0x02),
    ("register", {"proxy_reply": True}, 0, 0x08),
    ("register", {"security_capable": True}, 0, 0x04),
    ("register", {"xtr_id": 1, "site_id": 2}, 0, 0x02),
    ("register", {"want_map_notify": True}, 2, 0x01),
    ("notify", {"xtr_id": 1, "site_id": 2}, 0, 0x08),
    ("ack", {"xtr_id": 1, "site_id": 2}, 0, 0x08),
    ("ecm", {"security": True}, 0, 0x08),
    ("ecm", {"ddt_originated": True}, 0, 0x04),
    ("ecm", {"to_etr": True}, 0, 0x02),
    ("ecm", {"to_ms": True}, 0, 0x01),
]


@pytest.mark.parametrize("base, change, index, bit", SINGLE_FLAGS)
def test_each_flag_alone_sets_its_own_bit(base, change, index, bit):
    plain = FLAG_BASES[base]
    flagged = replace(plain, **change)
    before, after = plain.encode()[:4], flagged.encode()[:4]
    expected = bytearray(before)
    expected[index] |= bit
    assert before[index] & bit == 0
    assert after == bytes(expected)
    assert decode_control(flagged.encode()) == flagged


@pytest.mark.parametrize("change, bit", [({"local": True}, 0x04), ({"probed": True}, 0x02),
                                         ({"reachable": True}, 0x01)])
def test_each_locator_flag_alone_sets_its_own_bit(change, bit):
    plain = Locator(ip("192.0.2.1"), local=False, probed=False, reachable=False)
    assert plain.encode()[4:6] == b"\x00\x00"
    assert replace(plain, **change).encode()[4:6] == bytes((0, bit))


def test_mapping_record_authoritative_bit():
    plain = replace(MAPPING_V4, authoritative=False).encode()
    assert plain[6:8] == b"\x00\x00"
    assert MAPPING_V4.encode()[6:8] == b"\x10\x00"
