"""The ITR engine: miss -> Map-Request, nonce checks, buffering, retransmission, expiry, refresh."""

import random
from ipaddress import ip_address

from lisp_app.control.actions import (BufferedPacket, InstallMapping, Reinject, RemoveMapping,
                                      SendControl, SendDataProbe)
from lisp_app.control.itr import ItrEngine, ItrSettings
from lisp_app.control.mapstat import MapStat
from lisp_app.mapping.cache import MapCache
from lisp_app.protocol import (Action, EidPrefix, EncapsulatedControlMessage, InstanceIdAddress,
                               Locator, MappingRecord, MapReply, MapRequest, decode_control)

RLOC = ip_address("192.0.2.1")
ETR = ip_address("198.51.100.1")
MR = ip_address("203.0.113.10")
SRC, DST = ip_address("10.1.0.10"), ip_address("10.2.0.10")


def engine(**kw):
    settings = dict(itr_rlocs=(RLOC,), map_request_targets=(ETR,))
    settings.update(kw)
    return ItrEngine(ItrSettings(**settings), MapCache(), MapStat(), random.Random(7))


def pkt(n=0):
    return BufferedPacket(b"frame%d" % n, 1, 1000)


def sent(actions):
    return [a for a in actions if isinstance(a, SendControl)]


def reply_for(request, prefix="[1000]10.2.0.0/24", ttl=10, locators=None, nonce=None):
    locs = locators if locators is not None else (Locator(ETR, 1, 100),)
    rec = MappingRecord.for_prefix(EidPrefix.parse(prefix), locators=locs, ttl=ttl,
                                   authoritative=True)
    return MapReply(nonce=request.nonce if nonce is None else nonce, records=(rec,))


def test_miss_sends_a_map_request_with_our_rloc_source_eid_and_instance_id():
    itr = engine()
    actions = itr.on_miss(1000, SRC, DST, pkt(), now=0.0)
    (send,) = sent(actions)
    assert send.destination == ETR and send.dest_port == 4342
    request = decode_control(send.payload)
    assert isinstance(request, MapRequest)
    assert request.itr_rlocs == (RLOC,)
    assert request.source_eid == SRC
    assert request.records[0].eid == InstanceIdAddress(1000, DST, 32)
    assert request.records[0].prefix == EidPrefix.parse("[1000]10.2.0.10/32")
    assert request.nonce != 0
    assert itr.stats.requests_sent == 1 and itr.stats.misses == 1


def test_nonces_are_fresh_per_request():
    itr = engine()
    a = decode_control(sent(itr.on_miss(1000, SRC, DST, None, 0.0))[0].payload)
    b = decode_control(sent(itr.on_miss(1000, SRC, ip_address("10.3.0.1"), None, 0.0))[0].payload)
    assert a.nonce != b.nonce


def test_map_resolvers_get_an_ecm():
    itr = engine(map_request_targets=(), map_resolvers=(MR,))
    (send,) = sent(itr.on_miss(1000, SRC, DST, None, 0.0))
    ecm = decode_control(send.payload)
    assert send.destination == MR
    assert isinstance(ecm, EncapsulatedControlMessage)
    assert (ecm.source, ecm.destination) == (SRC, DST)
    assert isinstance(ecm.message, MapRequest)


def test_reply_installs_the_mapping_and_reinjects_held_packets():
    itr = engine()
    request = decode_control(sent(itr.on_miss(1000, SRC, DST, pkt(1), 0.0))[0].payload)
    assert itr.on_miss(1000, SRC, DST, pkt(2), 0.2) == []  # held, no second request
    actions = itr.on_map_reply(reply_for(request), now=0.5)
    install = [a for a in actions if isinstance(a, InstallMapping)]
    reinject = [a for a in actions if isinstance(a, Reinject)]
    assert install[0].entry.prefix == EidPrefix.parse("[1000]10.2.0.0/24")
    assert install[0].entry.expires_at == 0.5 + 600
    assert [p.data for p in reinject[0].packets] == [b"frame1", b"frame2"]
    assert itr.cache.lookup(1000, DST).locators[0].address == ETR
    assert itr.stats.requests_answered == 1 and itr.stats.reinjected == 2
    assert not itr.pending


def test_wrong_nonce_and_uncovering_reply_are_rejected_and_change_nothing():
    itr = engine()
    request = decode_control(sent(itr.on_miss(1000, SRC, DST, pkt(), 0.0))[0].payload)
    assert itr.on_map_reply(reply_for(request, nonce=request.nonce ^ 1), 0.1) == []
    assert itr.on_map_reply(reply_for(request, prefix="[1000]10.3.0.0/24"), 0.1) == []
    assert itr.on_map_reply(reply_for(request, prefix="[2000]10.2.0.0/24"), 0.1) == []
    assert itr.stats.replies_rejected == 3
    assert len(itr.cache) == 0 and itr.pending
    # the right reply still works afterwards
    assert itr.on_map_reply(reply_for(request), 0.2)
    # and a duplicate of it is rejected (the nonce is spent)
    assert itr.on_map_reply(reply_for(request), 0.3) == []
    assert itr.stats.replies_rejected == 4


def test_unanswered_eid_is_held_down_before_it_is_asked_for_again():
    # a first hold-down as long as the longest: the flat 30 s wait
    itr = engine(request_retries=0, request_timeout=1.0, request_holddown=30.0,
                 request_holddown_first=30.0)
    assert sent(itr.on_miss(1000, SRC, DST, pkt(), 0.0))
    itr.on_timer(1.0)  # gave up
    assert itr.on_miss(1000, SRC, DST, pkt(), 20.0) == []
    assert itr.stats.buffer_dropped == 2  # the held packet, then the one refused
    itr.on_timer(31.0)
    assert sent(itr.on_miss(1000, SRC, DST, pkt(), 31.0))


def test_retransmission_with_backoff_then_timeout():
    itr = engine(request_timeout=1.0, request_retries=2)
    first = decode_control(sent(itr.on_miss(1000, SRC, DST, pkt(), 0.0))[0].payload)
    assert itr.next_deadline() == 1.0
    assert itr.on_timer(0.9) == []
    again = decode_control(sent(itr.on_timer(1.0))[0].payload)
    assert again.nonce == first.nonce  # a retransmission keeps its nonce
    assert itr.next_deadline() == 3.0  # backoff: 2 s
    assert sent(itr.on_timer(3.0))
    assert itr.next_deadline() == 7.0  # 4 s
    assert itr.on_timer(7.0) == []     # retries exhausted
    assert itr.stats.requests_timed_out == 1 and itr.stats.buffer_dropped == 1
    assert itr.stats.requests_retransmitted == 2
    assert not itr.pending


def test_at_most_one_request_per_second_per_eid_and_rate_limited_misses_are_held():
    itr = engine(request_retries=0, request_timeout=0.2, request_holddown=0.0)
    assert sent(itr.on_miss(1000, SRC, DST, None, 0.0))
    itr.on_timer(0.2)  # gave up
    assert itr.on_miss(1000, SRC, DST, pkt(7), 0.5) == []  # too soon: held, asked later
    assert itr.next_deadline() == 1.0
    assert itr.on_timer(0.9) == []
    (send,) = sent(itr.on_timer(1.0))
    assert itr.stats.requests_sent == 2 and itr.stats.requests_retransmitted == 0
    actions = itr.on_map_reply(reply_for(decode_control(send.payload)), 1.1)
    assert [p.data for a in actions if isinstance(a, Reinject) for p in a.packets] == [b"frame7"]


def test_buffer_bounds_per_destination_and_in_total():
    itr = engine(buffer_per_destination=2, buffer_total=3)
    for i in range(4):
        itr.on_miss(1000, SRC, DST, pkt(i), 0.0)
    itr.on_miss(1000, SRC, ip_address("10.3.0.1"), pkt(9), 0.0)
    itr.on_miss(1000, SRC, ip_address("10.3.0.1"), pkt(10), 0.0)
    assert itr.stats.buffered == 3
    assert itr.stats.buffer_overflow == 3


def test_negative_reply_installs_a_negative_entry_and_drops_held_packets():
    itr = engine()
    request = decode_control(sent(itr.on_miss(1000, SRC, DST, pkt(), 0.0))[0].payload)
    rec = MappingRecord.for_prefix(EidPrefix.parse("[1000]10.0.0.0/8"), ttl=15,
                                   action=Action.DROP_NO_REASON)
    actions = itr.on_map_reply(MapReply(request.nonce, (rec,)), 1.0)
    assert [type(a) for a in actions] == [InstallMapping]
    assert actions[0].entry.negative and actions[0].entry.action == Action.DROP_NO_REASON
    assert itr.stats.negative_replies == 1 and itr.stats.buffer_dropped == 1


def test_expiry_removes_the_entry_and_its_flows():
    itr = engine()
    request = decode_control(sent(itr.on_miss(1000, SRC, DST, None, 0.0))[0].payload)
    itr.on_map_reply(reply_for(request, ttl=1), 0.0)
    assert itr.next_deadline() == 60.0
    removed = [a for a in itr.on_timer(60.0) if isinstance(a, RemoveMapping)]
    assert removed[0].entry.prefix == EidPrefix.parse("[1000]10.2.0.0/24")
    assert itr.cache.lookup(1000, DST) is None


def test_entry_with_traffic_is_refreshed_before_expiry_and_idle_one_is_not():
    itr = engine(refresh_before=10.0)
    req = decode_control(sent(itr.on_miss(1000, SRC, DST, None, 0.0))[0].payload)
    itr.on_map_reply(reply_for(req, ttl=1), 0.0)
    other = ip_address("10.3.0.1")
    req2 = decode_control(sent(itr.on_miss(1000, SRC, other, None, 0.0))[0].payload)
    itr.on_map_reply(reply_for(req2, prefix="[1000]10.3.0.0/24", ttl=1), 0.0)
    itr.note_traffic(EidPrefix.parse("[1000]10.2.0.0/24"), 30.0)
    assert itr.next_deadline() == 50.0
    refresh = sent(itr.on_timer(50.0))
    assert len(refresh) == 1
    refreshed = decode_control(refresh[0].payload)
    assert refreshed.records[0].prefix == EidPrefix.parse("[1000]10.2.0.0/24")
    actions = itr.on_map_reply(reply_for(refreshed, ttl=1), 51.0)
    assert itr.cache.get(EidPrefix.parse("[1000]10.2.0.0/24")).expires_at == 111.0
    assert not any(isinstance(a, Reinject) for a in actions)
    gone = [a.entry.prefix for a in itr.on_timer(60.0) if isinstance(a, RemoveMapping)]
    assert gone == [EidPrefix.parse("[1000]10.3.0.0/24")]


def test_static_mappings_do_not_expire_and_can_be_removed():
    itr = engine()
    prefix = EidPrefix.parse("[1000]10.9.0.0/16")
    (install,) = itr.add_static(prefix, (Locator(ETR),), 0.0)
    assert install.entry.expires_at is None
    assert itr.on_timer(1e9) == []
    assert itr.cache.lookup(1000, ip_address("10.9.1.1")) is not None
    assert [type(a) for a in itr.remove(prefix)] == [RemoveMapping]
    assert itr.remove(prefix) == []


def test_miss_for_an_installed_entry_reinjects_instead_of_asking():
    itr = engine()
    itr.add_static(EidPrefix.parse("[1000]10.2.0.0/24"), (Locator(ETR),), 0.0)
    actions = itr.on_miss(1000, SRC, DST, pkt(), 0.0)
    assert [type(a) for a in actions] == [Reinject]


def test_traffic_long_before_the_refresh_point_does_not_keep_an_entry_alive():
    itr = engine(refresh_before=10.0, activity_window=15.0)
    req = decode_control(sent(itr.on_miss(1000, SRC, DST, None, 0.0))[0].payload)
    itr.on_map_reply(reply_for(req, ttl=1), 0.0)
    itr.note_traffic(EidPrefix.parse("[1000]10.2.0.0/24"), 20.0)  # refresh point 50, window 35
    assert not sent(itr.on_timer(50.0))
    assert [type(a) for a in itr.on_timer(60.0)] == [RemoveMapping]


def test_data_probe_mode_sends_the_first_packet_as_a_probe_and_a_request_only_if_unanswered():
    itr = engine(data_probes=True)
    (probe,) = itr.on_miss(1000, SRC, DST, pkt(1), 0.0)
    assert isinstance(probe, SendDataProbe) and probe.packet == pkt(1)
    assert 0 < probe.nonce < 1 << 24
    assert itr.on_miss(1000, SRC, DST, pkt(2), 0.1) == []  # held, not probed again
    request = decode_control(sent(itr.on_timer(1.0))[0].payload)  # unanswered: ask normally
    assert request.nonce == probe.nonce
    assert itr.stats.requests_sent == 1 and itr.stats.requests_retransmitted == 0
    actions = itr.on_map_reply(reply_for(request), 1.5)
    assert [p.data for a in actions if isinstance(a, Reinject) for p in a.packets] == [b"frame2"]
    assert itr.stats.data_probes_sent == 1


def test_data_probe_reply_carries_the_24_bit_nonce():
    itr = engine(data_probes=True)
    (probe,) = itr.on_miss(1000, SRC, DST, pkt(1), 0.0)
    rec = MappingRecord.for_prefix(EidPrefix.parse("[1000]10.2.0.0/24"),
                                   locators=(Locator(ETR),))
    actions = itr.on_map_reply(MapReply(probe.nonce, (rec,)), 0.2)
    assert [type(a) for a in actions] == [InstallMapping]  # the probe's packet was delivered
    assert itr.stats.requests_sent == 0


def test_ipv6_misses_are_not_probed():
    itr = engine(data_probes=True)
    actions = itr.on_miss(1000, ip_address("2001:db8:1::10"), ip_address("2001:db8:2::10"),
                          pkt(), 0.0)
    assert sent(actions) and not any(isinstance(a, SendDataProbe) for a in actions)


def test_request_times_older_than_the_rate_limit_are_forgotten():
    """The per-EID request times only serve the rate limit: the ITR keeps the recent ones, not one
    per EID it ever asked for, and the limit still holds for the recent ones."""
    itr = engine(request_min_interval=1.0)
    for i in range(5000):
        eid = ip_address(0x0A000000 + i)
        itr.on_miss(1000, SRC, eid, None, now=i * 0.01)
        itr.on_map_reply(reply_for(itr.pending[(1000, eid)], f"[1000]{eid}/32"), i * 0.01)
    assert len(itr.last_sent) < 2 * 1024
    assert len(itr.cache) == 5000
    recent = ip_address(0x0A000000 + 4999)
    itr.cache.remove(EidPrefix.parse(f"[1000]{recent}/32"))
    assert itr.on_miss(1000, SRC, recent, None, now=50.0) == []  # asked 0.01 s ago: held
    old = ip_address(0x0A000000)
    itr.cache.remove(EidPrefix.parse(f"[1000]{old}/32"))
    assert sent(itr.on_miss(1000, SRC, old, None, now=50.0))  # asked 50 s ago: asked again
