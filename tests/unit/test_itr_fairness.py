"""The ITR's fair state (issue 15): a flood of misses from one host neither blocks nor evicts other
hosts' lookups, Map-Requests are paced per source and in all, and the hold-down after unanswered
requests is proportional and lifted by any valid answer."""

import random
from dataclasses import replace
from ipaddress import ip_address

from lisp_app.control.actions import BufferedPacket, InstallMapping, Reinject, SendControl
from lisp_app.control.itr import ItrEngine, ItrSettings
from lisp_app.control.mapstat import MapStat
from lisp_app.dataplane.effects import LISP, UNDERLAY, FlowChange
from lisp_app.dataplane.pipeline import K_ENCAP, K_PUNT_CONTROL, cookie, kind_of
from lisp_app.mapping.cache import MapCache
from lisp_app.protocol import (Action, EidPrefix, EidRecord, InstanceIdAddress, Locator,
                               MappingRecord, MapReply, MapRequest, decode_control)
from tests.xtrkit import (UPLINK, control_payloads, host_frame, learn_next_hop, make_xtr, miss,
                          outs, underlay_in)

RLOC = ip_address("192.0.2.1")
ETR = ip_address("198.51.100.1")
FLOODER, HOST = ip_address("10.1.0.66"), ip_address("10.1.0.20")
DST = ip_address("10.2.0.10")  # a mapped destination (10.2.0.0/24 at ETR)


def engine(**kw):
    settings = dict(itr_rlocs=(RLOC,), map_request_targets=(ETR,), request_retries=3)
    settings.update(kw)
    return ItrEngine(ItrSettings(**settings), MapCache(), MapStat(), random.Random(7))


def pkt(tag):
    return BufferedPacket(b"frame-" + str(tag).encode(), 1, 1000)


def requests(actions):
    return [decode_control(a.payload) for a in actions if isinstance(a, SendControl)]


def reply(request, prefix="[1000]10.2.0.0/24", nonce=None, action=Action.NO_ACTION,
          locators=(Locator(ETR, 1, 100),)):
    rec = MappingRecord.for_prefix(EidPrefix.parse(prefix), locators=locators, ttl=10,
                                   authoritative=True, action=action)
    return MapReply(request.nonce if nonce is None else nonce, (rec,))


def uncached(i):
    """The i-th destination of the flood: 10.128.0.0/9, never answered."""
    return ip_address(0x0A800000 + i)


class Meter:
    """The switch's punt meter, as a token bucket: ``rate`` packet-ins a second get through."""

    def __init__(self, rate):
        self.rate, self.tokens, self.at = rate, float(rate), 0.0

    def passes(self, now):
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def flood(itr, sources, until, start=0.0, offered_pps=10_000, punted_pps=300, on_step=None):
    """Misses from ``sources`` (in turn) to distinct uncached destinations at ``offered_pps``
    for ``until - start`` simulated seconds; the meter lets ``punted_pps`` reach the ITR, whose
    timer runs when due. Returns the Map-Requests sent, as (time, request)."""
    meter, sent, n = Meter(punted_pps), [], 0
    steps = int((until - start) * offered_pps)
    for i in range(steps):
        now = start + i / offered_pps
        deadline = itr.next_deadline()
        if deadline is not None and deadline <= now:
            sent += [(now, r) for r in requests(itr.on_timer(now))]
        if on_step is not None:
            sent += [(now, r) for r in on_step(now)]
        if meter.passes(now):
            src = sources[n % len(sources)]
            sent += [(now, r) for r in requests(itr.on_miss(1000, src, uncached(i), pkt(i),
                                                            now))]
            n += 1
    return sent


# -- a miss flood from one host ------------------------------------------------------------------

def test_during_a_miss_flood_another_hosts_lookup_is_sent_at_once_and_answered():
    """100,000 misses from one host to distinct uncached destinations over 10 s (10 kpps, about
    300 a second past the meter, never answered); at 5 s another host misses on a mapped
    destination: its Map-Request leaves at once, and the answer installs the mapping and releases
    its packet."""
    itr = engine()
    seen = {}

    def other_host(now):
        if "asked" in seen or now < 5.0:
            return []
        seen["asked"] = now
        actions = itr.on_miss(1000, HOST, DST, pkt("host"), now)
        seen["request"] = requests(actions)
        return []

    sent = flood(itr, [FLOODER], until=10.0, on_step=other_host)
    (request,) = seen["request"]  # sent at once, in the miss's own actions
    assert request.records[0].prefix == EidPrefix.parse(f"[1000]{DST}/32")
    assert request.source_eid == HOST
    actions = itr.on_map_reply(reply(request), seen["asked"] + 0.05)
    assert [type(a) for a in actions] == [InstallMapping, Reinject]
    assert [p.data for p in actions[1].packets] == [b"frame-host"]
    assert itr.cache.lookup(1000, DST).locators[0].address == ETR
    # the flood held no more than its host's share, and was paced
    assert itr.stats.requests_refused_source > 2000
    assert len(sent) < 64 * 4 + 10  # its 64 open requests, each sent and retransmitted
    assert max(sum(1 for t, _ in sent if a <= t < a + 1) for a in range(10)) <= 100


def test_hosts_flooding_together_cannot_fill_the_table_against_a_light_host():
    """Twenty flooding hosts fill the requests table (20 x 64 > 1024) and the buffer: a host
    with no request open still gets its lookup sent and its packet held, taking the place of
    the heaviest host's oldest request and packet."""
    itr = engine()
    flooders = [ip_address(0x0A010100 + n) for n in range(20)]
    flood(itr, flooders, until=5.0, punted_pps=2000)
    assert len(itr.pending) == 1024 and itr.stats.requests_refused_full > 0
    assert itr.stats.requests_evicted == 0  # flooders holding about as much do not churn
    actions = itr.on_miss(1000, HOST, DST, pkt("host"), 5.0)
    (request,) = requests(actions)
    assert itr.stats.requests_evicted >= 1
    assert len(itr.pending) == 1024
    actions = itr.on_map_reply(reply(request), 5.05)
    assert [p.data for a in actions if isinstance(a, Reinject) for p in a.packets] == \
        [b"frame-host"]


def test_a_source_at_its_cap_is_refused_and_counted_not_queued():
    itr = engine(pending_per_source=2)
    assert requests(itr.on_miss(1000, FLOODER, uncached(1), pkt(1), 0.0))
    assert requests(itr.on_miss(1000, FLOODER, uncached(2), pkt(2), 0.0))
    assert itr.on_miss(1000, FLOODER, uncached(3), pkt(3), 0.0) == []
    assert (1000, uncached(3)) not in itr.pending
    assert itr.stats.requests_refused_source == 1 and itr.stats.buffered == 2
    # misses for a destination already asked for still hold their packet
    assert itr.on_miss(1000, FLOODER, uncached(1), pkt(4), 0.1) == []
    assert itr.stats.buffered == 3
    # another host is not concerned; the flooder gets a slot back once one is answered
    assert requests(itr.on_miss(1000, HOST, DST, pkt(5), 0.1))
    itr.on_map_reply(reply(itr.pending[(1000, uncached(1))], f"[1000]{uncached(1)}/32"), 0.2)
    assert requests(itr.on_miss(1000, FLOODER, uncached(3), pkt(6), 0.3))


def test_a_full_table_evicts_the_oldest_request_of_the_source_holding_the_most():
    itr = engine(pending_total=4, pending_per_source=3)
    a, b, c = (ip_address(f"10.1.0.{n}") for n in (1, 2, 3))
    first = requests(itr.on_miss(1000, a, uncached(1), pkt("a1"), 0.0))[0]
    itr.on_miss(1000, a, uncached(2), pkt("a2"), 0.1)
    itr.on_miss(1000, a, uncached(3), pkt("a3"), 0.2)
    itr.on_miss(1000, b, uncached(4), pkt("b1"), 0.3)
    assert requests(itr.on_miss(1000, c, uncached(5), pkt("c1"), 0.4))  # a's oldest makes room
    assert (1000, uncached(1)) not in itr.pending and len(itr.pending) == 4
    assert itr.stats.requests_evicted == 1 and itr.stats.buffer_dropped == 1
    assert itr.on_map_reply(reply(first, f"[1000]{uncached(1)}/32"), 0.5) == []  # nonce spent
    # a: 2, b: 1, c: 1: a holds only one more than b: b is refused, nothing is evicted
    assert itr.on_miss(1000, b, uncached(6), None, 0.6) == []
    assert itr.stats.requests_refused_full == 1 and itr.stats.requests_evicted == 1
    # a host with nothing open always gets in: d evicts a's oldest
    d = ip_address("10.1.0.4")
    assert requests(itr.on_miss(1000, d, uncached(7), None, 0.7))
    assert (1000, uncached(2)) not in itr.pending and itr.stats.requests_evicted == 2
    assert sorted(len(s.pending) for s in itr.sources.values()) == [1, 1, 1, 1]
    # the table is full and everybody holds one: nobody is evicted for a second request
    assert itr.on_miss(1000, d, uncached(8), None, 0.8) == []
    assert itr.stats.requests_refused_full == 2 and len(itr.pending) == 4


def test_a_full_buffer_drops_the_oldest_packet_of_the_host_holding_the_most():
    itr = engine(buffer_total=4, buffer_per_source=4)
    request = requests(itr.on_miss(1000, FLOODER, uncached(1), pkt(0), 0.0))[0]
    for n in range(1, 4):
        itr.on_miss(1000, FLOODER, uncached(1), pkt(n), 0.1)
    host_request = requests(itr.on_miss(1000, HOST, DST, pkt("host"), 0.2))[0]
    assert itr.stats.buffer_evicted == 1 and itr.stats.buffer_overflow == 0
    # the flooder, holding the most, cannot take the host's place
    itr.on_miss(1000, FLOODER, uncached(1), pkt(9), 0.3)
    assert itr.stats.buffer_overflow == 1
    flooded = itr.on_map_reply(reply(request, f"[1000]{uncached(1)}/32"), 0.4)
    assert [p.data for a in flooded if isinstance(a, Reinject) for p in a.packets] == \
        [b"frame-1", b"frame-2", b"frame-3"]
    hosted = itr.on_map_reply(reply(host_request), 0.4)
    assert [p.data for a in hosted if isinstance(a, Reinject) for p in a.packets] == \
        [b"frame-host"]


def test_a_host_holds_at_most_its_share_of_the_buffer():
    itr = engine(buffer_per_source=2)
    itr.on_miss(1000, FLOODER, uncached(1), pkt(1), 0.0)
    itr.on_miss(1000, FLOODER, uncached(2), pkt(2), 0.0)
    itr.on_miss(1000, FLOODER, uncached(1), pkt(3), 0.0)
    assert itr.stats.buffered == 2 and itr.stats.buffer_source_full == 1
    # its packets are charged to it even when they wait on another host's request
    host_request = requests(itr.on_miss(1000, HOST, DST, pkt("host"), 0.0))[0]
    itr.on_miss(1000, FLOODER, DST, pkt(4), 0.0)
    assert itr.stats.buffer_source_full == 2
    actions = itr.on_map_reply(reply(host_request), 0.1)
    assert [p.data for a in actions if isinstance(a, Reinject) for p in a.packets] == \
        [b"frame-host"]


# -- the Map-Request rate ------------------------------------------------------------------------

def test_a_host_over_its_request_rate_waits_while_another_is_sent_at_once():
    itr = engine(request_rate_per_source=2, request_rate=100)
    sent = [r for n in range(4) for r in requests(itr.on_miss(1000, FLOODER, uncached(n),
                                                                  None, 0.0))]
    assert len(sent) == 2 and itr.stats.requests_deferred == 2
    assert len(requests(itr.on_miss(1000, HOST, DST, None, 0.0))) == 1
    assert itr.next_deadline() == 0.5  # the flooder's next token
    later = requests(itr.on_timer(0.5))
    assert [r.records[0].prefix for r in later] == [EidPrefix.parse(f"[1000]{uncached(2)}/32")]
    assert itr.stats.requests_sent == 4


def test_the_total_request_rate_is_shared_round_robin_between_hosts():
    itr = engine(request_rate=4, request_rate_per_source=100, request_timeout=10.0)
    a, b = ip_address("10.1.0.1"), ip_address("10.1.0.2")
    first = [r for n in range(6) for r in requests(itr.on_miss(1000, a, uncached(n), None, 0.0))]
    assert len(first) == 4
    assert [r for n in (10, 11) for r in requests(itr.on_miss(1000, b, uncached(n), None,
                                                              0.0))] == []
    order = []
    for step in range(1, 5):
        now = step * 0.25
        assert itr.next_deadline() == now
        (request,) = requests(itr.on_timer(now))
        order.append(request.source_eid)
    assert order == [a, b, a, b]


def test_new_rates_from_a_reload_apply_at_once():
    itr = engine(request_rate_per_source=100, request_timeout=10.0)
    assert requests(itr.on_miss(1000, FLOODER, uncached(1), None, 0.0))
    itr.settings = replace(itr.settings, request_rate_per_source=1, pending_per_source=3)
    assert requests(itr.on_miss(1000, FLOODER, uncached(2), None, 0.1))  # one token left
    assert itr.on_miss(1000, FLOODER, uncached(3), None, 0.1) == []  # waits for the next
    assert itr.stats.requests_deferred == 1
    assert itr.on_miss(1000, FLOODER, uncached(4), None, 0.1) == []  # at its new cap
    assert itr.stats.requests_refused_source == 1
    assert itr.next_deadline() == 1.1


def test_retransmissions_are_paced_too():
    itr = engine(request_rate=2, request_retries=1, request_timeout=1.0)
    for n in range(2):
        assert requests(itr.on_miss(1000, HOST, uncached(n), None, 0.0))
    itr.on_miss(1000, FLOODER, uncached(9), None, 0.2)  # waits for a token
    # at 1.0 both retransmissions are due, but the bucket holds 2 tokens: the waiting first
    # request and one retransmission go; the other retransmission waits
    assert len(requests(itr.on_timer(1.0))) == 2
    assert itr.stats.requests_retransmitted == 1 and itr.stats.requests_deferred == 2


# -- hold-down ---------------------------------------------------------------------------------

def give_up(itr, eid, now, source=HOST):
    """Ask for ``eid`` at ``now``; with request_retries=0 and a 1 s timeout it is given up at
    now + 1. Returns the unanswered request."""
    (request,) = requests(itr.on_miss(1000, source, eid, None, now))
    itr.on_timer(now + 1.0)
    assert (1000, eid) not in itr.pending
    return request


def test_hold_down_doubles_then_is_forgotten_after_a_quiet_spell():
    itr = engine(request_retries=0, request_timeout=1.0, request_holddown_first=1.0,
                 request_holddown=30.0)
    now, waits = 0.0, []
    for _ in range(7):
        give_up(itr, DST, now)
        until = itr.holddown[(1000, DST)].until
        waits.append(until - (now + 1.0))
        assert itr.on_miss(1000, HOST, DST, None, until - 0.01) == []
        now = until
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    # quiet for the cap after the hold-down ended: the count starts again
    now += 30.0
    itr.on_timer(now)
    give_up(itr, DST, now)
    assert itr.holddown[(1000, DST)].until == now + 2.0  # given up at now + 1, held 1 s


def test_a_control_flood_that_ate_one_round_of_retransmissions_holds_the_eid_for_a_second():
    """The finding: x2's request and its 3 retries were lost in a flood; it then held the EID
    down for 30 s. Now the next miss after a second asks again, and its answer is used."""
    itr = engine()  # 3 retries: 1 + 2 + 4 + 8 s
    assert requests(itr.on_miss(1000, HOST, DST, pkt(1), 0.0))
    for t in (1.0, 3.0, 7.0):
        assert requests(itr.on_timer(t))
    itr.on_timer(15.0)
    assert itr.stats.requests_timed_out == 1
    assert itr.on_miss(1000, HOST, DST, pkt(2), 15.5) == []  # held down, briefly
    (request,) = requests(itr.on_miss(1000, HOST, DST, pkt(3), 16.0))
    actions = itr.on_map_reply(reply(request), 16.05)
    assert [p.data for a in actions if isinstance(a, Reinject) for p in a.packets] == \
        [b"frame-3"]


def test_a_late_reply_to_a_given_up_request_is_accepted_and_lifts_the_hold_down():
    itr = engine(request_retries=0, request_timeout=1.0, request_holddown_first=30.0)
    request = give_up(itr, DST, 0.0)
    assert itr.on_miss(1000, HOST, DST, None, 1.5) == []  # held down
    actions = itr.on_map_reply(reply(request), 2.0)
    assert [type(a) for a in actions] == [InstallMapping]
    assert itr.cache.lookup(1000, DST) is not None
    assert itr.stats.late_replies == 1 and itr.stats.holddowns_lifted == 1
    assert itr.stats.replies_rejected == 0 and (1000, DST) not in itr.holddown
    # the mapping goes (expiry, removal): the EID is asked for at once, not held down
    itr.remove(EidPrefix.parse("[1000]10.2.0.0/24"))
    assert requests(itr.on_miss(1000, HOST, DST, None, 2.5))
    # the late nonce is spent with it
    assert itr.on_map_reply(reply(request), 2.6) == []


def test_a_late_reply_must_still_cover_the_eid():
    itr = engine(request_retries=0, request_timeout=1.0)
    request = give_up(itr, DST, 0.0)
    assert itr.on_map_reply(reply(request, prefix="[1000]10.3.0.0/24"), 1.2) == []
    assert itr.stats.replies_rejected == 1 and (1000, DST) in itr.holddown


def test_a_reply_for_another_request_covering_a_held_down_eid_lifts_its_hold_down():
    itr = engine(request_retries=0, request_timeout=1.0, request_holddown_first=30.0)
    give_up(itr, DST, 0.0)
    other = ip_address("10.2.0.20")
    (request,) = requests(itr.on_miss(1000, HOST, other, None, 2.0))
    # a negative reply that says "ask again" covers both: the cache does not answer DST's
    # misses, the lifted hold-down lets them ask
    itr.on_map_reply(reply(request, action=Action.SEND_MAP_REQUEST, locators=()), 2.1)
    assert itr.stats.holddowns_lifted == 1 and (1000, DST) not in itr.holddown
    assert requests(itr.on_miss(1000, HOST, DST, None, 2.2))


def test_an_smr_naming_a_prefix_lifts_the_hold_downs_inside_it():
    itr = engine(request_retries=0, request_timeout=1.0, request_holddown_first=30.0)
    give_up(itr, DST, 0.0)
    give_up(itr, ip_address("10.9.0.1"), 0.0)
    smr = MapRequest(5, (EidRecord.for_prefix(EidPrefix.parse("[1000]10.1.0.10/32")),), (ETR,),
                     source_eid=InstanceIdAddress(1000, ip_address("10.2.0.0"), 24), smr=True)
    itr.on_smr(smr, 2.0)
    assert itr.stats.holddowns_lifted == 1
    assert requests(itr.on_miss(1000, HOST, DST, None, 2.1))
    assert itr.on_miss(1000, HOST, ip_address("10.9.0.1"), None, 2.1) == []


def test_lifting_a_hold_down_keeps_the_one_request_a_second_per_eid():
    itr = engine(request_retries=0, request_timeout=0.3, request_holddown_first=30.0)
    (request,) = requests(itr.on_miss(1000, HOST, DST, None, 0.0))
    itr.on_timer(0.3)  # given up
    assert itr.on_miss(1000, HOST, DST, None, 0.4) == []  # held down
    itr.on_map_reply(reply(request, action=Action.SEND_MAP_REQUEST, locators=()), 0.5)
    assert itr.stats.holddowns_lifted == 1
    assert itr.on_miss(1000, HOST, DST, None, 0.6) == []  # asked at 0.0: waits until 1.0
    assert requests(itr.on_timer(1.0))


# -- the whole xTR -------------------------------------------------------------------------------

def test_xtr_during_a_miss_flood_resolves_another_hosts_first_contact():
    """The same through the orchestrator: packet-ins from a flooding host, then another host's
    first packet to a mapped destination; its Map-Request leaves in the packet-in's effects, and
    the Map-Reply installs the flow and reinjects the packet."""
    xtr = make_xtr()
    learn_next_hop(xtr)
    meter = Meter(300)
    for i in range(30_000):  # 3 s at 10 kpps
        now = i / 10_000
        deadline = xtr.next_deadline()
        if deadline is not None and deadline <= now:
            xtr.on_timer(now)
        if meter.passes(now):
            miss(xtr, str(uncached(i)), now, src=str(FLOODER))
    effects = miss(xtr, str(DST), 3.0, src=str(HOST))
    ((_frame, request),) = control_payloads(effects)
    assert request.records[0].prefix == EidPrefix.parse(f"[1000]{DST}/32")
    rec = MappingRecord.for_prefix(EidPrefix.parse("[1000]10.2.0.0/24"),
                                   locators=(Locator(ETR),), ttl=10)
    effects = xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                               underlay_in(MapReply(request.nonce, (rec,)).encode()), 3.05)
    changes = [e for e in effects if isinstance(e, FlowChange)]
    assert [kind_of(f.cookie) for f in changes[0].add] == [K_ENCAP]
    (reinject,) = outs(effects, LISP)
    assert reinject.data == host_frame(str(DST), str(HOST))
    assert xtr.stats.requests_refused_source > 0
