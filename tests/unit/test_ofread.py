"""lisp_app.dataplane.ofread against os-ken's own parser, and the shell's packet-in tap."""

import random
import socket
import struct

import pytest
from os_ken.ofproto import ofproto_parser, ofproto_protocol
from os_ken.ofproto import ofproto_v1_3_parser as p13

from lisp_app.dataplane import ofread
from lisp_app.shell.packet_in import PacketInTap

DP = ofproto_protocol.ProtocolDesc(0x04)


def packet_in(match_fields: dict, data: bytes, *, xid=7, buffer_id=0xFFFFFFFF, total_len=None,
              reason=1, table_id=3, cookie=0x1500000000000001, trailer=b"") -> bytes:
    """A packet-in as OVS writes it: the match serialized by os-ken, padded to 8 bytes, 2 bytes
    of padding, the frame (``trailer``: bytes after it that total_len leaves out)."""
    match = bytearray()
    p13.OFPMatch(**match_fields).serialize(match, 0)  # padded to a multiple of 8
    body = struct.pack("!IHBBQ", buffer_id, len(data) if total_len is None else total_len,
                       reason, table_id, cookie) + bytes(match) + b"\0\0" + data + trailer
    return struct.pack("!BBHI", 4, 10, 8 + len(body), xid) + body


def oskens(buf: bytes):
    version, msg_type, msg_len, xid = ofproto_parser.header(buf)
    return ofproto_parser.msg(DP, version, msg_type, msg_len, xid, bytearray(buf))


def same_as_osken(buf: bytes) -> ofread.PacketIn:
    ours, theirs = ofread.decode_packet_in(buf), oskens(buf)
    assert (ours.xid, ours.buffer_id, ours.total_len, ours.reason, ours.table_id, ours.cookie) == \
        (theirs.xid, theirs.buffer_id, theirs.total_len, theirs.reason, theirs.table_id,
         theirs.cookie)
    assert ours.in_port == theirs.match.get("in_port", 0)
    assert ours.metadata == theirs.match.get("metadata", 0)
    assert ours.data == bytes(theirs.data)
    assert type(ours.data) is bytes
    return ours


def random_match(rng: random.Random) -> dict:
    fields = {}
    if rng.random() < 0.9:
        fields["in_port"] = rng.choice([1, 2, 0xFFFFFFFD, rng.getrandbits(32)])
    if rng.random() < 0.6:
        fields["metadata"] = rng.getrandbits(64)
    if rng.random() < 0.5:
        fields["eth_type"] = 0x0800
        fields["ipv4_src"] = f"10.{rng.randrange(256)}.{rng.randrange(256)}.1"
    if rng.random() < 0.4:
        fields["tunnel_id"] = rng.getrandbits(64)
    if rng.random() < 0.3:
        fields["tun_ipv4_src"] = "192.0.2.1"
        fields["tun_ipv4_dst"] = "198.51.100.1"
    if rng.random() < 0.3:
        fields["reg0"] = rng.getrandbits(32)
    if rng.random() < 0.2:
        fields["ipv6_dst"] = "2001:db8::1"
    return fields


def test_many_packet_ins_read_as_osken_reads_them():
    rng = random.Random(16)
    for _ in range(2000):
        data = rng.randbytes(rng.choice([0, 1, 14, 42, 60, 98, 1514, rng.randrange(2000)]))
        shape = rng.random()
        if shape < 0.2:  # truncated by the switch: total_len says more than it sent
            total = len(data) + rng.randrange(1, 3000)
            total = min(total, 0xFFFF)
            buf = packet_in(random_match(rng), data, total_len=total)
        elif shape < 0.3:  # bytes after the frame (alignment padding): total_len cuts them off
            buf = packet_in(random_match(rng), data, trailer=rng.randbytes(rng.randrange(1, 8)))
        else:
            buf = packet_in(random_match(rng), data)
        buf = bytearray(buf)
        struct.pack_into("!IIHBBQ", buf, 4, rng.getrandbits(32), rng.getrandbits(32),
                         struct.unpack_from("!H", buf, 12)[0], rng.randrange(6), rng.randrange(256),
                         rng.getrandbits(64))
        same_as_osken(bytes(buf))


def test_the_fields_the_shell_uses():
    frame = bytes(range(60))
    pin = same_as_osken(packet_in({"in_port": 5, "metadata": 1000}, frame, xid=99, buffer_id=12,
                                  reason=2, table_id=7, cookie=0x1700000000000042))
    assert pin == ofread.PacketIn(99, 12, 60, 2, 7, 0x1700000000000042, 5, 1000, frame)
    assert same_as_osken(packet_in({}, frame)).in_port == 0  # an empty match: zeros
    assert ofread.decode_packet_in(packet_in({}, frame)).metadata == 0
    assert same_as_osken(packet_in({"in_port": 1}, b"")).data == b""
    assert ofread.decode_packet_in(bytearray(packet_in({"in_port": 3}, frame))).in_port == 3


def test_masked_metadata_gives_its_value():
    pin = ofread.decode_packet_in(packet_in({"metadata": (0x1234, 0xFFFF)}, b"x" * 20))
    assert pin.metadata == 0x1234


def test_unknown_oxm_classes_are_skipped():
    # a match with an experimenter-class OXM (class 0xFFFF, 4-byte experimenter id + 4 bytes)
    oxms = struct.pack("!HBBI", 0x8000, 0 << 1, 4, 9) + struct.pack("!HBBII", 0xFFFF, 5 << 1, 8,
                                                                    0x4F4E4600, 1)
    match = struct.pack("!HH", 1, 4 + len(oxms)) + oxms
    match += b"\0" * (-len(match) % 8)
    body = struct.pack("!IHBBQ", 0xFFFFFFFF, 3, 0, 0, 5) + match + b"\0\0abc"
    pin = ofread.decode_packet_in(struct.pack("!BBHI", 4, 10, 8 + len(body), 1) + body)
    assert (pin.in_port, pin.cookie, pin.data) == (9, 5, b"abc")


GOOD = packet_in({"in_port": 2, "metadata": 1000, "eth_type": 0x0800}, bytes(64))


@pytest.mark.parametrize("mutate, why", [
    (lambda b: b[:-1] + b"", "header says"),
    (lambda b: b[:20], "shorter than its fixed part"),
    (lambda b: b"\x05" + b[1:], "not an OpenFlow 1.3 packet-in"),
    (lambda b: b[:1] + b"\x0e" + b[2:], "not an OpenFlow 1.3 packet-in"),
    (lambda b: b[:24] + b"\x00\x00" + b[26:], "not OXM"),
    (lambda b: b[:26] + b"\x00\x02" + b[28:], "< 4"),
    (lambda b: b[:26] + b"\xff\xf0" + b[28:], "overruns the message"),
    (lambda b: b[:26] + b"\x00\x0e" + b[28:], "ends inside an OXM header"),
    (lambda b: b[:31] + b"\xf0" + b[32:], "overruns the match"),
    (lambda b: b[:31] + b"\x02" + b[32:], "in_port of 2 bytes"),
])
def test_malformed_packet_ins_raise_malformed(mutate, why):
    bad = mutate(GOOD)
    if why == "header says":  # the header's length no longer matches the bytes
        assert len(bad) == len(GOOD) - 1
    with pytest.raises(ofread.Malformed, match=why):
        ofread.decode_packet_in(bad)


def test_garbage_never_raises_anything_but_malformed():
    rng = random.Random(5)
    for _ in range(20000):
        buf = bytearray(GOOD)
        for _ in range(rng.randrange(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        if rng.random() < 0.3:
            buf = buf[:rng.randrange(len(buf) + 1)]
        try:
            pin = ofread.decode_packet_in(bytes(buf))
        except ofread.Malformed:
            continue
        assert isinstance(pin.data, bytes)


def test_message_type():
    assert ofread.message_type(GOOD) == ofread.OFPT_PACKET_IN


# -- the tap ---------------------------------------------------------------------------------

class Parsers:
    """Stands in for os_ken.ofproto.ofproto_parser: records what reaches os-ken's parser."""

    def __init__(self):
        self.parsed = []
        self.msg = self.original = self._msg

    def _msg(self, datapath, version, msg_type, msg_len, xid, buf):
        self.parsed.append((datapath, msg_type, bytes(buf)))
        return "parsed"


def test_tap_takes_attached_packet_ins_and_passes_the_rest_on():
    module, got = Parsers(), []
    tap = PacketInTap(module)
    tap.install()
    tap.attach("dp1", got.append)
    assert module.msg("dp1", 4, 10, len(GOOD), 1, bytearray(GOOD)) is None
    assert got == [GOOD] and type(got[0]) is bytes
    assert module.msg("dp2", 4, 10, len(GOOD), 1, bytearray(GOOD)) == "parsed"  # not attached
    assert module.msg("dp1", 4, 14, 8, 1, bytearray(8)) == "parsed"  # not a packet-in
    assert module.msg("dp1", 1, 10, len(GOOD), 1, bytearray(GOOD)) == "parsed"  # OpenFlow 1.0
    assert module.msg("dp1", 4, 10, len(GOOD) + 4, 1, bytearray(GOOD)) == "parsed"  # short
    assert [p[0] for p in module.parsed] == ["dp2", "dp1", "dp1", "dp1"]
    tap.detach("dp1")
    assert module.msg("dp1", 4, 10, len(GOOD), 1, bytearray(GOOD)) == "parsed"
    tap.uninstall()
    assert module.msg == module.original and not tap.installed


def test_tap_swallows_what_its_callback_raises():
    module = Parsers()
    tap = PacketInTap(module)
    tap.install()

    def boom(message):
        raise RuntimeError("boom")

    tap.attach("dp", boom)
    assert module.msg("dp", 4, 10, len(GOOD), 1, bytearray(GOOD)) is None
    assert module.parsed == []
    tap.uninstall()


def test_tap_installs_once_and_leaves_a_later_wrapper_in_place():
    module, got = Parsers(), []
    tap = PacketInTap(module)
    tap.install()
    tap.install()
    tap.attach("dp", got.append)
    ours = module.msg
    module.msg = later = lambda *a: ours(*a)  # someone wraps ours
    tap.uninstall()
    assert module.msg is later
    assert later("dp", 4, 10, len(GOOD), 1, bytearray(GOOD)) == "parsed"  # passes everything on
    assert got == []


# -- writing to the switch without the send thread ----------------------------------------------

class Queue:
    def __init__(self, items=0, getting=1):
        self.items, self.waiting = items, getting

    def qsize(self):
        return self.items

    def getting(self):
        return self.waiting


class RawSocket(socket.socket):
    """A real socket type whose send takes ``takes`` bytes (or raises ``raises``)."""

    def __init__(self, takes=None, raises=None):
        super().__init__(socket.AF_INET, socket.SOCK_DGRAM)
        self.takes, self.raises, self.written = takes, raises, []

    def send(self, data, flags=0):
        if self.raises:
            raise self.raises
        n = len(data) if self.takes is None else self.takes
        self.written.append(bytes(data[:n]))
        return n


class Green:
    def __init__(self, fd):
        self.fd = fd


class Datapath:
    def __init__(self, queue, fd):
        self.send_q, self.socket, self.queued = queue, Green(fd), []

    def send(self, data):
        self.queued.append(bytes(data))


@pytest.mark.parametrize("queue, raw, written, queued", [
    (Queue(), RawSocket(), [b"abcdef"], []),  # the send thread idle: written here
    (Queue(), RawSocket(takes=2), [b"ab"], [b"cdef"]),  # the rest follows through the queue
    (Queue(), RawSocket(raises=BlockingIOError()), [], [b"abcdef"]),
    (Queue(), RawSocket(raises=ConnectionResetError()), [], [b"abcdef"]),
    (Queue(items=1), RawSocket(), [], [b"abcdef"]),  # bytes queued before: they go first
    (Queue(getting=0), RawSocket(), [], [b"abcdef"]),  # the send thread is writing
    (None, RawSocket(), [], [b"abcdef"]),  # os-ken is closing the connection
    (Queue(), "not a plain socket", None, [b"abcdef"]),  # e.g. TLS: os-ken's path
])
def test_send_now(queue, raw, written, queued):
    from lisp_app.shell.packet_in import send_now
    dp = Datapath(queue, raw)
    try:
        send_now(dp, b"abcdef")
        assert dp.queued == queued
        if written is not None:
            assert raw.written == written
    finally:
        if isinstance(raw, socket.socket):
            raw.close()


# -- the warmer -----------------------------------------------------------------------------------

def control_packet_in() -> bytes:
    """A Map-Request from 198.51.100.1 to 192.0.2.1's control port, as a packet-in."""
    from ipaddress import ip_address

    from lisp_app.dataplane import frames
    from lisp_app.protocol import EidPrefix, EidRecord, MapRequest
    request = MapRequest(nonce=7, records=(EidRecord.for_prefix(EidPrefix.parse(
        "[1000]10.1.0.0/24")),), itr_rlocs=(ip_address("198.51.100.1"),))
    frame = frames.udp_frame("02:cc:00:00:00:fe", "02:bb:00:00:00:01",
                             ip_address("198.51.100.1"), ip_address("192.0.2.1"), 4342, 4342,
                             request.encode())
    return packet_in({"in_port": 7}, frame)


def test_warmer_reads_its_samples_again_through_the_decoders(monkeypatch):
    from lisp_app.dataplane import warm
    decoded = []
    real = warm.decode_control
    monkeypatch.setattr(warm, "decode_control", lambda p: decoded.append(p) or real(p))
    warmer = warm.Warmer()
    warmer.exercise()
    assert warmer.exercised == 0  # nothing seen yet
    host = packet_in({"in_port": 1, "metadata": 1000}, bytes.fromhex(
        "02000000000102aa0000001008004500001c0000000040110000" "0a01000a0a02000a13881770000800")
        + bytes(2))
    warmer.remember(0x10, host)
    warmer.remember(0x15, control_packet_in())
    warmer.remember(0x16, GOOD[:-3])  # a sample the decoders refuse: exercised, nothing raised
    warmer.exercise()
    assert warmer.exercised == 3
    assert len(decoded) == 1 and decoded[0][:1] == b"\x10"  # the Map-Request, type 1


def test_warmer_keeps_the_last_sample_of_a_few_kinds():
    from lisp_app.dataplane import warm
    warmer = warm.Warmer()
    for kind in range(warm.MAX_KINDS + 5):
        warmer.remember(kind, GOOD)
    warmer.remember(0, b"newer")
    warmer.remember(1, bytes(warm.MAX_SAMPLE + 1))  # too long: the older one stays
    assert len(warmer._samples) == warm.MAX_KINDS
    assert warmer._samples[0] == b"newer" and warmer._samples[1] == GOOD
