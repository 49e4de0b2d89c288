"""The fast request decoder (lisp_app/protocol/fast_request.py) against the full decoder, and the
control plane's fast path against its slow path: the same messages, the same actions, the same
counters, on many varied requests and on malformed ones."""

import random
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address

import pytest

from lisp_app.alt.rib import AltRib, AltRoute
from lisp_app.control.map_resolver import MapResolverEngine
from lisp_app.control.map_server import MapServerEngine, MsSite
from lisp_app.control.mapstat import MapStat
from lisp_app.node import control_plane
from lisp_app.node.control_plane import ControlPlane, Received
from lisp_app.protocol import (DecodeError, EidPrefix, EidRecord, EncapsulatedControlMessage,
                               InstanceIdAddress, Locator, MappingRecord, MapRegister, MapRequest,
                               NO_ADDRESS, decode_control, sign)
from lisp_app.protocol import fast_request
from lisp_app.protocol.fast_request import FastEcm, decode_request_fast

SITES = (MsSite("s4", "k4", (EidPrefix.parse("153.16.36.0/24"),
                             EidPrefix.parse("[1000]153.16.36.0/24"))),
         MsSite("s6", "k6", (EidPrefix.parse("2001:db8:36::/48"),)),
         MsSite("idle", "k0", (EidPrefix.parse("153.16.48.0/20"),)))


def _address(rng, version):
    if version == 4:
        return IPv4Address(rng.getrandbits(32))
    return IPv6Address(rng.getrandbits(128))


def _eid(rng):
    version = rng.choice((4, 6))
    pick = rng.random()
    if version == 4 and pick < 0.5:  # inside the configured sites, often
        base = rng.choice((0x99102400, 0x99103000, 0x99102500))
        addr = IPv4Address(base + rng.randrange(256))
    elif version == 6 and pick < 0.5:
        addr = IPv6Address(int(IPv6Address("2001:db8:36::")) + rng.getrandbits(80))
    else:
        addr = _address(rng, version)
    limit = 32 if version == 4 else 128
    mask = rng.choice((limit, limit, rng.randrange(limit + 1)))
    iid = rng.choice((0, 0, 1000, rng.getrandbits(24), rng.getrandbits(32)))
    if iid:
        return EidRecord(InstanceIdAddress(iid, addr, rng.choice((mask, 0, 255))), mask)
    return EidRecord(addr, mask)


def _request(rng):
    rlocs = tuple(_address(rng, rng.choice((4, 6))) for _ in range(rng.choice((1, 1, 2, 3, 8))))
    source = rng.choice((NO_ADDRESS, _address(rng, 4), _address(rng, 6)))
    flags = {name: rng.random() < 0.2 for name in ("authoritative", "probe", "smr", "pitr",
                                                     "smr_invoked", "local_xtr",
                                                     "dont_map_reply")}
    return MapRequest(rng.getrandbits(64), (_eid(rng),), rlocs, source, **flags)


def _message(rng):
    request = _request(rng)
    if rng.random() < 0.4:
        return request
    version = rng.choice((4, 6))
    options = {"udp_checksum": rng.random() < 0.8, "to_etr": rng.random() < 0.3,
               "to_ms": rng.random() < 0.2, "security": rng.random() < 0.1,
               "ddt_originated": rng.random() < 0.1, "source_port": rng.getrandbits(16),
               "ttl": rng.randrange(256), "tos": rng.randrange(256)}
    if version == 4:
        options.update(ip_id=rng.getrandbits(16), dont_fragment=rng.random() < 0.5)
    else:
        options.update(flow_label=rng.getrandbits(20))
    return EncapsulatedControlMessage(_address(rng, version), _address(rng, version), request,
                                      **options)


def _requests(n, seed):
    rng = random.Random(seed)
    return [_message(rng).encode() for _ in range(n)]


def _check_same(data):
    """The fast decoder agrees with the full one on ``data``; True when it took it."""
    try:
        slow = decode_control(data)
    except DecodeError:
        slow = None
    fast = decode_request_fast(data)
    if fast is None:
        return False
    assert slow is not None, f"fast path accepted what decode_control refuses: {data.hex()}"
    message = fast.message()
    assert message == slow and type(message) is type(slow)
    if isinstance(fast, FastEcm):
        view, request = fast.request, slow.message
        assert (fast.source, fast.destination, fast.source_port, fast.to_etr) == \
            (slow.source, slow.destination, slow.source_port, slow.to_etr)
    else:
        view, request = fast, slow
    assert view.message() == request
    assert (view.nonce, view.itr_rlocs, view.smr, view.records) == \
        (request.nonce, request.itr_rlocs, request.smr, request.records)
    prefix = request.records[0].prefix
    assert view.prefix == prefix
    assert (view.instance_id, view.eid) == (prefix.instance_id, prefix.network.network_address)
    assert view.encode() == request.encode()
    if view.inner is not None:
        assert data.endswith(view.inner)
    return True


def test_common_shapes_take_the_fast_path_and_decode_as_the_full_decoder_does():
    for data in _requests(3000, 1):
        assert _check_same(data), decode_control(data)


def test_reencodable_requests_give_their_bytes_back():
    for data in _requests(500, 2):
        fast = decode_request_fast(data)
        view = fast.request if isinstance(fast, FastEcm) else fast
        assert view.inner == view.message().encode() and data.endswith(view.inner)


def test_reserved_bits_keep_the_message_but_not_the_bytes():
    request = MapRequest(7, (EidRecord(IPv4Address("153.16.36.1"), 32),),
                         (IPv4Address("192.0.2.1"),))
    data = bytearray(request.encode())
    data[1] |= 0x01   # a reserved bit
    fast = decode_request_fast(bytes(data))
    assert fast.message() == request and fast.inner is None
    assert fast.encode() == request.encode()
    iid = MapRequest(7, (EidRecord(InstanceIdAddress(5, IPv4Address("153.16.36.1"), 32), 32),),
                     (IPv4Address("192.0.2.1"),)).encode()
    flagged = bytearray(iid)
    flagged[-15] = 0x80  # the Instance-ID LCAF's flags
    fast = decode_request_fast(bytes(flagged))
    assert fast.prefix == EidPrefix.parse("[5]153.16.36.1/32") and fast.inner is None
    assert fast.message() == decode_control(bytes(flagged))
    assert _check_same(bytes(flagged)) and _check_same(bytes(data))


def test_other_shapes_are_left_to_the_full_decoder():
    itr = (IPv4Address("192.0.2.1"),)
    rec = EidRecord(IPv4Address("153.16.36.1"), 32)
    mrr = MappingRecord.for_prefix(EidPrefix.parse("10.0.0.0/8"), locators=(Locator(itr[0]),))
    for request in (MapRequest(1, (rec, rec), itr),                 # two records
                    MapRequest(1, (rec,), itr, map_reply_record=mrr),  # a Map-Reply record
                    MapRequest(1, (rec,), (NO_ADDRESS,)),             # no usable ITR-RLOC
                    MapRequest(1, (rec,), itr, source_eid=InstanceIdAddress(3, itr[0])),
                    MapRequest(1, (EidRecord(NO_ADDRESS, 0),), itr)):  # not an IP EID
        data = request.encode()
        assert decode_request_fast(data) is None
        assert decode_request_fast(EncapsulatedControlMessage(
            ip_address("10.0.0.1"), ip_address("10.0.0.2"), request).encode()) is None
    register = sign(MapRegister(1, (mrr,)), "k", 1).encode()
    assert decode_request_fast(register) is None
    assert decode_request_fast(b"") is None and decode_request_fast(bytearray(b"\x10")) is None


def test_malformed_and_mutated_requests_never_pass_where_the_full_decoder_refuses():
    rng = random.Random(3)
    taken = refused = 0
    for data in _requests(400, 4):
        for _ in range(12):
            mutated = bytearray(data)
            how = rng.random()
            if how < 0.5:
                for _ in range(rng.randrange(1, 3)):
                    mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
            elif how < 0.7:
                del mutated[rng.randrange(len(mutated)):]
            elif how < 0.85:
                mutated += bytes(rng.randrange(1, 5))
            else:
                at = rng.randrange(len(mutated))
                mutated[at] = rng.randrange(256)
            if _check_same(bytes(mutated)):
                taken += 1
            else:
                refused += 1
    assert taken and refused


def test_small_memos_start_over_and_give_the_same_answers(monkeypatch):
    monkeypatch.setattr(fast_request, "MEMO_LIMIT", 3)
    fast_request.clear_memos()
    data = _requests(300, 5)
    for _ in range(2):
        for one in data:
            assert _check_same(one)
    assert len(fast_request._bodies) <= 3 and len(fast_request._addresses) <= 3
    fast_request.clear_memos()


# -- the control plane: fast path against slow path ----------------------------------------------

def _node(alt: bool):
    ms = MapServerEngine(SITES)
    if alt:
        rib = AltRib()
        rib.update(AltRoute(IPv4Network("153.16.0.0/16"), "n1", "n1"))
        rib.update(AltRoute(IPv4Network("100.64.0.0/24"), "n2", "n2"))
        mr = MapResolverEngine(rib)
    else:
        mr = MapResolverEngine(map_server=ms)
    node = ControlPlane(MapStat(), ms=ms, mr=mr)
    etr = ip_address("198.51.100.7")
    for site, text, proxy in ((SITES[0], "153.16.36.0/25", True),
                              (SITES[0], "[1000]153.16.36.0/24", False),
                              (SITES[1], "2001:db8:36::/64", True)):
        rec = MappingRecord.for_prefix(EidPrefix.parse(text), locators=(Locator(etr),), ttl=10)
        raw = sign(MapRegister(9, (rec,), proxy_reply=proxy), site.key, 1).encode()
        node.on_payload(raw, Received(etr, 4342), 0.0)
    assert ms.stats.registers_accepted == 3
    return node


def _counters(node):
    return (vars(node.stats), vars(node.ms.stats), vars(node.mr.stats))


@pytest.mark.parametrize("alt", (True, False))
def test_control_plane_fast_path_answers_as_the_slow_path(monkeypatch, alt):
    fast, slow = _node(alt), _node(alt)
    rng = random.Random(6)
    payloads = _requests(1500, 7)
    for data in list(payloads[:300]):  # and broken ones, counted and dropped alike
        mutated = bytearray(data)
        mutated[rng.randrange(len(mutated))] ^= 0xFF
        payloads.append(bytes(mutated))
        payloads.append(data[:rng.randrange(len(data))])
    received = Received(ip_address("192.0.2.9"), 4342, ip_address("192.0.2.1"))
    for n, data in enumerate(payloads):
        now = n * 0.01
        expected = _outcome(lambda: _slow(monkeypatch, slow, data, received, now))
        assert _outcome(lambda: fast.on_payload(data, received, now)) == expected
    assert _counters(fast) == _counters(slow)
    ms, mr = fast.ms.stats, fast.mr.stats
    assert fast.stats.control_malformed and fast.stats.control_unexpected
    assert ms.proxy_replies and ms.requests_forwarded and ms.negative_replies
    assert mr.negative_replies and (mr.forwarded if alt else mr.to_map_server)


def _outcome(call):
    """The actions (a request whose EID prefix is shorter than a configured site's and overlaps
    it used to make free_space() raise; now both paths answer it for the site)."""
    return call()


def _slow(monkeypatch, node, data, received, now):
    with monkeypatch.context() as patch:
        patch.setattr(control_plane, "decode_request_fast", lambda data: None)
        return node.on_payload(data, received, now)


# -- the Map-Resolver's negative replies, remembered per RIB generation ---------------------------

def _ecm_for(eid, nonce=5, iid=0):
    record = EidRecord.for_prefix(EidPrefix(iid, IPv4Network(eid)))
    request = MapRequest(nonce, (record,), (ip_address("192.0.2.1"),))
    return EncapsulatedControlMessage(ip_address("10.0.0.1"), ip_address(eid), request)


def test_remembered_negative_replies_equal_fresh_ones_across_rib_changes():
    rng = random.Random(8)
    rib = AltRib()
    mr = MapResolverEngine(rib)
    routes = []
    for step in range(60):
        if routes and rng.random() < 0.3:  # withdraw one
            prefix = routes.pop(rng.randrange(len(routes)))
            rib.withdraw("n1", prefix)
        else:
            prefix = IPv4Network((rng.getrandbits(32), rng.randrange(8, 25)), strict=False)
            rib.update(AltRoute(prefix, "n1", "n1"))
            routes.append(prefix)
        for _ in range(40):
            eid = IPv4Address(rng.getrandbits(32))
            ecm = _ecm_for(eid, rng.getrandbits(64), rng.choice((0, 7)))
            fresh = MapResolverEngine(rib).on_ecm(ecm)  # nothing remembered
            assert mr.on_ecm(ecm) == fresh


def test_negative_replies_follow_a_route_that_comes_and_goes():
    rib = AltRib()
    rib.update(AltRoute(IPv4Network("153.16.0.0/16"), "n1", "n1"))
    mr = MapResolverEngine(rib)
    (first,) = mr.on_ecm(_ecm_for("100.64.1.1"))
    assert decode_control(first.payload).records[0].prefix == EidPrefix.parse("0.0.0.0/1")
    rib.update(AltRoute(IPv4Network("100.64.0.0/10"), "n2", "n2"))
    (forward,) = mr.on_ecm(_ecm_for("100.64.1.1"))
    assert forward.neighbor == "n2"
    (narrower,) = mr.on_ecm(_ecm_for("100.1.1.1"))
    assert decode_control(narrower.payload).records[0].prefix == EidPrefix.parse("100.0.0.0/10")
    rib.withdraw("n2", IPv4Network("100.64.0.0/10"))
    assert mr.on_ecm(_ecm_for("100.64.1.1")) == [first]
    assert mr.stats.forwarded == 1 and mr.stats.negative_replies == 3


# -- the Map-Server's proxy replies, remembered per registration ---------------------------------

def test_proxy_replies_follow_re_registration_and_expiry():
    ms = MapServerEngine(SITES)
    prefix = EidPrefix.parse("153.16.36.0/24")
    itr = ip_address("192.0.2.1")
    request = MapRequest(11, (EidRecord(IPv4Address("153.16.36.9"), 32),), (itr,))
    wanted = request.records[0].prefix

    def register(rloc, now):
        rec = MappingRecord.for_prefix(prefix, locators=(Locator(ip_address(rloc)),), ttl=10)
        raw = sign(MapRegister(9, (rec,), proxy_reply=True), "k4", 1).encode()
        ms.on_map_register(raw, decode_control(raw), ip_address(rloc), 4342, now)

    def answer(now):
        (send,) = ms.on_map_request(request, 4342, None, now)
        reply = decode_control(send.payload)
        assert reply.nonce == 11 and send.destination == itr
        return reply.records[0]

    register("198.51.100.1", 0.0)
    first = answer(1.0)
    assert first.locators[0].address == ip_address("198.51.100.1") and first.ttl == 10
    assert answer(2.0) == first
    register("198.51.100.2", 3.0)  # re-registered elsewhere: the new locator at once
    assert answer(4.0).locators[0].address == ip_address("198.51.100.2")
    expired = answer(3.0 + 180.0)  # expired, before the timer removed it: a negative reply
    assert expired.locators == () and expired.ttl == 1
    ms.on_timer(3.0 + 180.0)
    assert ms.registration_for(wanted, 200.0) == (None, None)
    register("198.51.100.3", 300.0)
    assert answer(301.0).locators[0].address == ip_address("198.51.100.3")
    assert ms.registration_for(wanted, 301.0)[0] == prefix



def test_the_checksum_test_agrees_with_internet_checksum():
    """_ones_sum_ok (a remainder of one integer) says what summing the words with end-around
    carries says, over random data of even lengths, data carrying its own checksum, all-zero
    data and the extra word of a pseudo-header; and without the extra, what
    internet_checksum(data) == 0 says."""
    import struct
    import sys

    from lisp_app.protocol.fast_request import _ones_sum_ok
    from lisp_app.protocol.inet import internet_checksum
    rng = random.Random(1616)
    for _ in range(20000):
        data = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 2, 8, 20, 40, 64, 98])))
        if data and rng.random() < 0.5:  # carrying its checksum in its last word
            data = data[:-2] + struct.pack("!H", internet_checksum(data[:-2] + b"\0\0"))
        if rng.random() < 0.02:
            data = bytes(len(data))
        extra = rng.choice([0, 0, rng.getrandbits(16), rng.getrandbits(17)])
        # the reference: the words (native order, as the caller's extra is) summed the slow way
        total = extra + sum(int.from_bytes(data[i:i + 2], sys.byteorder)
                            for i in range(0, len(data), 2))
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        assert _ones_sum_ok(data, extra) == (total == 0xFFFF), (data.hex(), extra)
        if not extra and any(data):
            assert _ones_sum_ok(data) == (internet_checksum(data) == 0), data.hex()
