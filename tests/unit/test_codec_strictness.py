"""Malformed control messages: every truncation of every vector, and hand-made defects (unknown
types, inconsistent counts and lengths, bad AFIs and LCAFs, trailing bytes, broken ECM inner
headers, over-deep nesting). Each must raise DecodeError, and nothing else, naming the problem and
a byte offset inside the input."""

from __future__ import annotations

import re
import struct
from dataclasses import replace

import pytest

from lisp_app.protocol import (DecodeError, EidRecord, InstanceIdAddress, MapReply, MapRequest,
                               decode_control)
from tests.codec_vectors import (CONTROL_VECTORS, LCAF_NESTING_LIMIT, ecm_bytes, ip,
                                 ones_complement_checksum)


def decode_error(data: bytes, *fragments: str, offset: int | None = None) -> DecodeError:
    """Decode ``data`` expecting a DecodeError whose message contains each fragment and whose
    offset is ``offset`` (when given) and lies within the input."""
    with pytest.raises(DecodeError) as caught:
        decode_control(data)
    error = caught.value
    for fragment in fragments:
        assert fragment in str(error), f"{fragment!r} not in {str(error)!r}"
    assert str(error).endswith(f"(at byte {error.offset})")
    assert 0 <= error.offset <= len(data)
    if offset is not None:
        assert error.offset == offset, str(error)
    return error


def patched(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new):]


# --- truncation -----------------------------------------------------------------------------------


def records_end(message) -> int | None:
    """Where a Map-Reply with the S bit stops being fixed-length: whatever follows its records is
    security data of any length, so every cut at or after this point is itself a valid message."""
    if isinstance(message, MapReply) and message.security:
        return len(replace(message, security_data=b"").encode())
    return None


@pytest.mark.parametrize("name", sorted(CONTROL_VECTORS))
def test_every_truncation_is_refused_unless_it_is_itself_valid(name):
    message = CONTROL_VECTORS[name]
    wire = message.encode()
    open_from = records_end(message)
    for cut in range(len(wire)):
        prefix = wire[:cut]
        if open_from is not None and cut >= open_from:
            # The only prefixes that are messages in their own right: shorter security data.
            expected = replace(message, security_data=message.security_data[:cut - open_from])
            assert decode_control(prefix) == expected
            continue
        with pytest.raises(DecodeError) as caught:
            decode_control(prefix)
        assert 0 <= caught.value.offset <= cut, (cut, str(caught.value))


def test_security_data_reply_is_the_only_vector_with_valid_prefixes():
    open_ended = sorted(n for n, m in CONTROL_VECTORS.items() if records_end(m) is not None)
    assert open_ended == ["reply-security-bit-no-data", "reply-security-data",
                          "reply-security-no-records"]


def test_empty_input():
    decode_error(b"", "empty", offset=0)


# --- message type ---------------------------------------------------------------------------------


@pytest.mark.parametrize("msg_type", [0, 6, 7, 9, 10, 11, 12, 13, 14, 15])
def test_unknown_or_unsupported_type(msg_type):
    data = bytes((msg_type << 4,)) + bytes(40)
    decode_error(data, f"type {msg_type}", offset=0)


def test_unsupported_types_are_named():
    decode_error(bytes((0x60,)) + bytes(20), "Map-Referral")
    decode_error(bytes((0x70,)) + bytes(20), "Info-Request")


# --- Map-Request ----------------------------------------------------------------------------------
# request-ipv4: header 0-11, source EID AFI at 12, ITR-RLOC AFI at 18, record mask-len at 25, EID
# AFI at 26, end at 32.
REQUEST = CONTROL_VECTORS["request-ipv4"].encode()


def test_request_layout_assumed_below():
    assert len(REQUEST) == 32
    assert REQUEST[12:14] == REQUEST[18:20] == REQUEST[26:28] == b"\x00\x01"
    assert REQUEST[25] == 24


def test_request_record_count_zero():
    decode_error(patched(REQUEST, 3, b"\x00"), "record count is 0", offset=3)


def test_request_irc_larger_than_rlocs_present():
    # IRC 1 means two ITR-RLOCs: the record's first bytes are then read as the second one's AFI.
    decode_error(patched(REQUEST, 2, b"\x01"), "ITR-RLOC 2 of 2", "unsupported AFI 24", offset=24)
    decode_error(patched(REQUEST[:24], 2, b"\x1f"), "ITR-RLOC 2 of 32", "truncated AFI",
                 offset=24)


def test_request_record_count_larger_than_records_present():
    decode_error(patched(REQUEST, 3, b"\x02"), "record 2 of 2", "truncated", offset=32)


def test_request_bad_afi():
    decode_error(patched(REQUEST, 12, b"\x00\x03"), "source EID", "unsupported AFI 3", offset=12)
    decode_error(patched(REQUEST, 26, b"\x40\x04"), "record 1 of 1", "unsupported AFI 16388",
                 offset=26)


def test_request_ipv4_mask_len_over_32():
    decode_error(patched(REQUEST, 25, b"\x21"), "mask-len 33 exceeds 32", offset=25)


def test_request_ipv6_mask_len_over_128():
    wire = MapRequest(1, (EidRecord(ip("2001:db8::"), 128),), (ip("192.0.2.1"),)).encode()
    assert wire[21] == 128
    decode_error(patched(wire, 21, b"\x81"), "mask-len 129 exceeds 128", offset=21)


def test_request_mask_len_limit_applies_through_instance_id():
    wire = MapRequest(1, (EidRecord(InstanceIdAddress(5, ip("10.0.0.0"), 32), 32),),
                      (ip("192.0.2.1"),)).encode()
    assert wire[21] == 32
    decode_error(patched(wire, 21, b"\x21"), "mask-len 33 exceeds 32", offset=21)


def test_request_trailing_garbage():
    decode_error(REQUEST + b"\x00", "1 bytes of trailing data", offset=32)
    decode_error(REQUEST + b"\x00\x01\x0a\x00\x00\x01", "6 bytes of trailing data", offset=32)


def test_request_m_bit_without_map_reply_record():
    decode_error(patched(REQUEST, 0, b"\x14"), "Map-Reply record", "truncated", offset=32)


# --- LCAF ----------------------------------------------------------------------------------------
# A Map-Request whose one record is an Instance-ID LCAF: record at 20 (mask-len 21), LCAF AFI at
# 22, LCAF header at 24 (type 26, length 28), instance-id at 30, inner AFI at 34, IPv4 at 36;
# 40 bytes in all.
IID_REQUEST = MapRequest(1, (EidRecord(InstanceIdAddress(1000, ip("10.1.0.0"), 24), 24),),
                         (ip("192.0.2.1"),)).encode()


def test_iid_request_layout_assumed_below():
    assert len(IID_REQUEST) == 40
    assert IID_REQUEST[22:30] == bytes.fromhex("4003 0000 0218 000a")
    assert IID_REQUEST[34:36] == b"\x00\x01"


def test_lcaf_length_past_the_end():
    decode_error(patched(IID_REQUEST, 28, b"\x00\x0b"), "LCAF length 11 runs past the end",
                 offset=28)
    decode_error(patched(IID_REQUEST, 28, b"\xff\xff"), "LCAF length 65535", offset=28)


def test_iid_lcaf_length_too_short():
    decode_error(patched(IID_REQUEST, 28, b"\x00\x05"), "Instance-ID length 5 < 6", offset=28)
    # Long enough for an AFI but not for the IPv4 address the AFI announces.
    decode_error(patched(IID_REQUEST, 28, b"\x00\x08"), "truncated IPv4 address", offset=36)


def test_iid_lcaf_with_trailing_bytes():
    wire = patched(IID_REQUEST, 28, b"\x00\x0c") + b"\xaa\xbb"
    decode_error(wire, "Instance-ID length 12 leaves 2 bytes after its address", offset=40)


def test_lcaf_header_truncated():
    decode_error(IID_REQUEST[:29], "truncated LCAF header", offset=24)


def test_afi_list_item_running_past_the_list():
    # An AFI list of declared length 4 holding an IPv4 address (6 bytes), then 2 more bytes.
    afi_list = struct.pack("!HBBBBH", 16387, 0, 0, 1, 0, 4) + b"\x00\x01\x0a\x00\x00\x01"
    wire = REQUEST[:26] + afi_list
    decode_error(wire, "truncated IPv4 address", offset=36)


def test_afi_list_with_odd_length():
    afi_list = struct.pack("!HBBBBH", 16387, 0, 0, 1, 0, 3) + b"\x00\x00\x00"
    decode_error(REQUEST[:26] + afi_list, "truncated AFI", offset=36)


def test_empty_afi_list_is_valid_and_consumes_nothing_more():
    afi_list = struct.pack("!HBBBBH", 16387, 0, 0, 1, 0, 0)
    decoded = decode_control(REQUEST[:26] + afi_list)
    assert decoded.records[0].eid.addresses == ()
    decode_error(REQUEST[:26] + afi_list + b"\x00", "trailing", offset=34)


def nested_iids(levels: int, innermost: bytes = b"\x00\x01\x0a\x00\x00\x00") -> bytes:
    """``levels`` Instance-ID LCAFs, each around the next, around ``innermost``."""
    address = innermost
    for level in range(levels):
        body = struct.pack("!I", level) + address
        address = struct.pack("!HBBBBH", 16387, 0, 0, 2, 0, len(body)) + body
    return address


def test_lcaf_nesting_up_to_the_limit_is_accepted():
    decoded = decode_control(REQUEST[:24] + b"\x00\x08" + nested_iids(LCAF_NESTING_LIMIT))
    address, depth = decoded.records[0].eid, 0
    while isinstance(address, InstanceIdAddress):
        address, depth = address.address, depth + 1
    assert depth == LCAF_NESTING_LIMIT
    assert address == ip("10.0.0.0")


@pytest.mark.parametrize("levels", [LCAF_NESTING_LIMIT + 1, 50, 5000])
def test_lcaf_nesting_beyond_the_limit_is_refused(levels):
    wire = REQUEST[:24] + b"\x00\x08" + nested_iids(levels)
    # The refusal comes at the header of the first LCAF one level too deep: the EID's AFI is at 26,
    # and each Instance-ID level takes 12 bytes (AFI, 6-byte LCAF header, instance-id).
    decode_error(wire, f"LCAF nested deeper than {LCAF_NESTING_LIMIT}",
                 offset=26 + 12 * LCAF_NESTING_LIMIT + 2)


def test_afi_list_nesting_beyond_the_limit_is_refused():
    address = b"\x00\x00"
    for _ in range(LCAF_NESTING_LIMIT + 1):
        address = struct.pack("!HBBBBH", 16387, 0, 0, 1, 0, len(address)) + address
    decode_error(REQUEST[:24] + b"\x00\x00" + address, "nested deeper")


# --- Map-Reply -----------------------------------------------------------------------------------
REPLY = CONTROL_VECTORS["reply-ipv4-two-locators"].encode()


def test_reply_trailing_garbage_without_s_bit():
    decode_error(REPLY + b"\x00\x00", "Map-Reply: 2 bytes of trailing data", offset=len(REPLY))


def test_reply_same_bytes_with_s_bit_are_security_data():
    decoded = decode_control(patched(REPLY, 0, b"\x22") + b"\x00\x00")
    assert decoded.security and decoded.security_data == b"\x00\x00"


def test_reply_record_count_larger_than_records_present():
    decode_error(patched(REPLY, 3, b"\x02"), "record 2 of 2", "truncated", offset=len(REPLY))


def test_reply_locator_count_larger_than_locators_present():
    decode_error(patched(REPLY, 16, b"\x03"), "locator 3 of 3", "truncated", offset=len(REPLY))


def test_reply_ipv4_mask_len_over_32():
    decode_error(patched(REPLY, 17, b"\x21"), "mask-len 33 exceeds 32", offset=17)


def test_reply_locator_bad_afi():
    # First locator: 6 bytes of priorities and flags at 28, AFI at 34.
    assert REPLY[34:36] == b"\x00\x01"
    decode_error(patched(REPLY, 34, b"\x00\x11"), "locator 1 of 2 address", "unsupported AFI 17",
                 offset=34)


# --- Map-Register, Map-Notify, Map-Notify-Ack ----------------------------------------------------


@pytest.mark.parametrize("name", ["register-unsigned", "register-sha1", "notify-sha1",
                                  "notify-ack-sha1", "register-sha256-xtr-id-all-flags"])
def test_authenticated_message_trailing_garbage(name):
    wire = CONTROL_VECTORS[name].encode()
    error = decode_error(wire + b"\x01\x02\x03", "bytes of trailing data")
    # With an xTR-ID the extra bytes shift where the xTR-ID is expected, so records end early.
    if CONTROL_VECTORS[name].xtr_id is None:
        assert error.offset == len(wire)
        assert "3 bytes of trailing data" in str(error)


@pytest.mark.parametrize("name", ["register-sha1", "notify-sha256-xtr-id"])
def test_authentication_length_past_the_end(name):
    wire = CONTROL_VECTORS[name].encode()
    decode_error(patched(wire, 14, b"\xff\xff"), "authentication data length 65535 runs past",
                 offset=14)
    decode_error(patched(wire, 14, struct.pack("!H", len(wire) - 15)), "runs past", offset=14)


def test_i_bit_without_room_for_xtr_id():
    register = CONTROL_VECTORS["register-no-records"].encode()
    assert len(register) == 16
    decode_error(patched(register, 0, b"\x32") + bytes(23), "I bit set but no room", offset=16)
    notify = bytes((0x48, 0, 0, 0)) + bytes(12) + bytes(10)
    decode_error(notify, "Map-Notify: I bit set but no room", offset=16)


def test_i_bit_set_on_a_message_without_xtr_id():
    wire = CONTROL_VECTORS["register-unsigned"].encode()
    decode_error(patched(wire, 0, bytes((wire[0] | 0x02,))), "Map-Register")


def test_i_bit_clear_on_a_message_with_xtr_id():
    """A Map-Register must set the I bit for its xTR-ID. A Map-Notify without it is accepted,
    the deviation named (issue 12: deployed Map-Servers send it so, e.g. tcpdump's
    lisp_eid_notify.pcap), but only for exactly an xTR-ID and a site-ID."""
    register = CONTROL_VECTORS["register-sha256-xtr-id-all-flags"].encode()
    decode_error(patched(register, 0, bytes((register[0] & ~0x02,))), "24 bytes of trailing data")
    from lisp_app.protocol.map_register import XTR_ID_WITHOUT_I_BIT
    vector = CONTROL_VECTORS["notify-sha256-xtr-id"]
    wire = patched(vector.encode(), 0, b"\x40")
    lenient = decode_control(wire)
    assert (lenient.xtr_id, lenient.site_id, lenient.records) == (5, 6, vector.records)
    assert lenient.deviations == (XTR_ID_WITHOUT_I_BIT,) and lenient == vector
    decode_error(wire + b"\x00", "25 bytes of trailing data")
    decode_error(wire[:-1], "trailing data")


# --- ECM ------------------------------------------------------------------------------------------
INNER = REQUEST
ECM4 = ecm_bytes(INNER, ip("10.0.0.1"), ip("10.0.0.2"))
ECM4_NO_CSUM = ecm_bytes(INNER, ip("10.0.0.1"), ip("10.0.0.2"), udp_checksum=False)
ECM6 = ecm_bytes(INNER, ip("2001:db8::1"), ip("2001:db8::2"))


def test_hand_built_ecms_are_valid():
    for wire in (ECM4, ECM4_NO_CSUM, ECM6):
        assert decode_control(wire).message == CONTROL_VECTORS["request-ipv4"]


@pytest.mark.parametrize("version", [0, 5, 7, 15])
def test_ecm_wrong_ip_version(version):
    decode_error(patched(ECM4, 4, bytes((version << 4 | 5,))), f"IP version {version}", offset=4)


def test_ecm_ipv4_options():
    decode_error(patched(ECM4, 4, b"\x46"), "header length 24", "options", offset=4)


def test_ecm_bad_ipv4_checksum():
    decode_error(patched(ECM4, 14, bytes((ECM4[14] ^ 0x01,))), "IPv4 header checksum", offset=14)
    decode_error(patched(ECM4, 12, bytes((ECM4[12] + 1,))), "IPv4 header checksum", offset=14)


def test_ecm_wrong_ipv4_total_length():
    decode_error(ECM4 + b"\x00", "total length 60 but 61 bytes follow", offset=6)
    short = ecm_bytes(INNER, ip("10.0.0.1"), ip("10.0.0.2"))[:-1]
    decode_error(short, "total length 60 but 59", offset=6)


@pytest.mark.parametrize("frag", [0x2000, 0x0001, 0x1FFF, 0x6000])
def test_ecm_ipv4_fragment(frag):
    decode_error(ecm_bytes(INNER, ip("10.0.0.1"), ip("10.0.0.2"), frag=frag), "fragment",
                 offset=10)


def test_ecm_ipv4_dont_fragment_and_reserved_bit_are_not_fragments():
    for frag in (0x4000, 0x8000):
        assert decode_control(ecm_bytes(INNER, ip("10.0.0.1"), ip("10.0.0.2"), frag=frag)).message


def test_ecm_not_udp():
    decode_error(ecm_bytes(INNER, ip("10.0.0.1"), ip("10.0.0.2"), proto=6), "protocol 6 is not UDP",
                 offset=13)
    decode_error(ecm_bytes(INNER, ip("::1"), ip("::2"), proto=58), "protocol 58 is not UDP",
                 offset=10)


def test_ecm_wrong_ipv6_payload_length():
    decode_error(ECM6 + b"\x00", "IPv6 payload length 40 but 41", offset=8)


@pytest.mark.parametrize("udp_length_delta", [-1, 1, -8, 100])
def test_ecm_wrong_udp_length(udp_length_delta):
    udp_length = struct.unpack_from("!H", ECM4_NO_CSUM, 28)[0]
    wire = patched(ECM4_NO_CSUM, 28, struct.pack("!H", udp_length + udp_length_delta))
    decode_error(wire, "UDP length", offset=28)


def test_ecm_truncated_udp_header():
    ip_only = ecm_bytes(b"", ip("10.0.0.1"), ip("10.0.0.2"))[:24]
    total_fixed = patched(ip_only, 6, b"\x00\x14")
    # Re-do the IPv4 checksum over the edited header so that only the UDP header is missing.
    header = bytearray(total_fixed[4:24])
    header[10:12] = b"\x00\x00"
    header[10:12] = struct.pack("!H", ones_complement_checksum(bytes(header)))
    decode_error(total_fixed[:4] + bytes(header), "truncated inner UDP header", offset=24)


def test_ecm_wrong_udp_checksum():
    decode_error(patched(ECM4, 30, bytes((ECM4[30] ^ 0x80,))), "UDP checksum", offset=30)
    # The payload changed under an intact checksum.
    decode_error(patched(ECM4, 32 + 11, bytes((ECM4[32 + 11] ^ 0x01,))), "UDP checksum",
                 offset=30)
    decode_error(patched(ECM6, 52 + 11, bytes((ECM6[52 + 11] ^ 0x01,))), "UDP checksum",
                 offset=50)


def test_ecm_udp_checksum_zero_means_none_even_when_payload_changes():
    wire = patched(ECM4_NO_CSUM, 32 + 11, b"\x09")
    assert decode_control(wire).message.nonce & 0xFF == 0x09


def test_ecm_inside_ecm():
    decode_error(ecm_bytes(ECM4, ip("10.0.0.1"), ip("10.0.0.2")), "ECM inside an ECM", offset=32)


def test_ecm_inner_error_offsets_count_from_the_outer_buffer():
    inner = patched(INNER, 3, b"\x00")  # record count 0
    decode_error(ecm_bytes(inner, ip("10.0.0.1"), ip("10.0.0.2")), "record count is 0",
                 offset=32 + 3)
    decode_error(ecm_bytes(inner, ip("::1"), ip("::2")), "record count is 0", offset=52 + 3)


def test_ecm_inner_message_type_unknown():
    decode_error(ecm_bytes(b"\xf0" + bytes(11), ip("10.0.0.1"), ip("10.0.0.2")), "type 15",
                 offset=32)


def test_ecm_without_inner_packet():
    decode_error(b"\x80\x00\x00\x00", "no inner IP header", offset=4)


# --- decoding stays linear --------------------------------------------------------------------


def test_largest_counts_decode_in_one_pass():
    # 255 records of 255 locators each, every address AFI 0: the most items a count can claim.
    locator = bytes((1, 1, 1, 1, 0, 1)) + b"\x00\x00"
    record = struct.pack("!IBBHH", 1, 255, 0, 0, 0) + b"\x00\x00" + locator * 255
    wire = bytes((0x20, 0, 0, 255)) + bytes(8) + record * 255
    decoded = decode_control(wire)
    assert len(decoded.records) == 255
    assert all(len(r.locators) == 255 for r in decoded.records)
    assert decoded.encode() == wire


def test_long_afi_list_of_empty_addresses():
    body = b"\x00\x00" * 30000
    afi_list = struct.pack("!HBBBBH", 16387, 0, 0, 1, 0, len(body)) + body
    decoded = decode_control(REQUEST[:24] + b"\x00\x00" + afi_list)
    assert len(decoded.records[0].eid.addresses) == 30000


def test_error_message_format():
    error = decode_error(patched(REQUEST, 3, b"\x00"))
    assert re.fullmatch(r"Map-Request: record count is 0 \(at byte 3\)", str(error))
    assert error.what == "Map-Request: record count is 0"
    assert isinstance(error, ValueError)
