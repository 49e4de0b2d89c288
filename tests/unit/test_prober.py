"""RLOC probing and failover: the prober on its own (which locators, when, how many probes, what
a reply or a miss does), then inside the xTR on a fake switch (flows and select groups move off a
down locator and back, a mapping left with none is asked for again)."""

from __future__ import annotations

import random
from ipaddress import ip_address

import pytest

from lisp_app.control.mapstat import MapStat
from lisp_app.control.prober import DOWN, UNKNOWN, UP, LocatorChange, Prober, ProbeSettings
from lisp_app.dataplane import frames
from lisp_app.dataplane.effects import UNDERLAY
from lisp_app.dataplane.flows import GroupAction, SetField
from lisp_app.dataplane.pipeline import K_ENCAP, K_NEGATIVE, K_PUNT_CONTROL, cookie, kind_of
from lisp_app.protocol import (EidPrefix, EidRecord, Locator, MapReply, MapRequest, MappingRecord,
                               decode_control)
from tests.xtrkit import (CONFIG, UPLINK, apply, control_payloads, learn_next_hop, make_xtr,
                          miss, switch_with_base, underlay_in)

A, B, C = (ip_address(a) for a in ("198.51.100.1", "198.51.100.2", "198.51.100.3"))
P1, P2 = EidPrefix.parse("[1000]10.2.0.0/24"), EidPrefix.parse("[1000]10.3.0.0/24")
OURS = (ip_address("192.0.2.1"),)
FAST = ProbeSettings(interval=1.0, timeout=0.5, misses=3, rate=100)


def prober(settings=FAST, **kw):
    return Prober(settings, OURS, MapStat(), random.Random(1), **kw)


def probe_of(send):
    request = decode_control(send.payload)
    assert isinstance(request, MapRequest) and request.probe
    return request


def answer(p, send, now, source=None):
    request = probe_of(send)
    reply = MapReply(request.nonce, (MappingRecord.for_prefix(P1),), probe=True)
    return p.on_probe_reply(reply, source or send.destination, now)


# -- the prober ---------------------------------------------------------------------------------

def test_a_new_locator_is_probed_at_once_and_one_probe_serves_every_mapping_that_shares_it():
    p = prober()
    p.track(P1, [A, B], 0.0)
    p.track(P2, [A], 0.0)
    sends, changes = p.on_timer(0.0)
    assert sorted(str(s.destination) for s in sends) == [str(A), str(B)] and changes == []
    request = probe_of(sends[0])
    assert request.itr_rlocs == OURS and request.records[0].prefix in (P1, P2)
    assert p.view(A, 0.0)["state"] == UNKNOWN
    assert answer(p, sends[0], 0.02) == []  # unprobed -> up is no change for the flows
    state = p.view(sends[0].destination, 0.5)
    assert state["state"] == UP and state["rtt_ms"] == 20.0
    assert p.stats.probes_sent == 2 and p.stats.probe_replies == 1


def test_an_up_locator_is_probed_once_per_interval():
    p = prober()
    p.track(P1, [A], 0.0)
    (send,), _ = p.on_timer(0.0)
    answer(p, send, 0.01)
    assert p.on_timer(0.5) == ([], [])
    due = p.next_deadline()
    assert 0.9 <= due <= 1.01
    (again,), _ = p.on_timer(due)
    assert probe_of(again).nonce != probe_of(send).nonce


def test_misses_in_a_row_take_a_locator_down_and_one_answer_brings_it_back():
    p = prober()
    p.track(P1, [A], 0.0)
    p.track(P2, [A], 0.0)
    (first,), _ = p.on_timer(0.0)
    answer(p, first, 0.01)
    t, changes, sent = 1.0, [], 0
    while not changes and t < 10:  # nothing answers any more
        sends, changes = p.on_timer(t)
        sent += len(sends)
        t = round(t + 0.1, 2)
    assert changes == [LocatorChange(A, False, (P1, P2))]
    assert t - 1.0 <= FAST.interval + FAST.misses * FAST.timeout + 0.1
    assert p.is_down(A) and p.view(A, t)["state"] == DOWN and p.view(A, t)["misses"] == 3
    assert sent == 3 and p.stats.probes_unanswered == 3 and p.stats.locators_went_down == 1
    # a down locator is still probed, at the interval's pace; its answer brings it back
    (probe,), _ = p.on_timer(p.next_deadline())
    assert p.next_deadline() - t <= FAST.interval + FAST.timeout + 0.2
    assert answer(p, probe, t + 1.05) == [LocatorChange(A, True, (P1, P2))]
    assert not p.is_down(A) and p.stats.locators_came_up == 1


def test_a_reply_with_an_unknown_nonce_changes_nothing_and_is_counted():
    p = prober()
    p.track(P1, [A], 0.0)
    (send,), _ = p.on_timer(0.0)
    stranger = MapReply(probe_of(send).nonce ^ 1, (MappingRecord.for_prefix(P1),), probe=True)
    assert p.on_probe_reply(stranger, A, 0.1) == []
    assert p.view(A, 0.1)["state"] == UNKNOWN and p.stats.probe_replies_unknown == 1
    answer(p, send, 0.2)
    assert p.on_probe_reply(MapReply(probe_of(send).nonce, (), probe=True), A, 0.3) == []
    assert p.stats.probe_replies_unknown == 2  # the same answer twice: the second is unknown


def test_the_rate_cap_bounds_the_probes_and_defers_the_rest():
    p = prober(ProbeSettings(interval=60, timeout=2, misses=3, rate=2))
    addresses = [ip_address(f"198.51.100.{n}") for n in range(1, 11)]
    for n, address in enumerate(addresses):
        p.track(EidPrefix.parse(f"[1000]10.{n}.0.0/24"), [address], 0.0)
    sent, t = [], 0.0
    while t <= 5.0:
        sends, _ = p.on_timer(t)
        sent += [(t, s) for s in sends]
        t = round(t + 0.25, 2)
    assert len(sent) == 2 + 2 * 5  # a burst of `rate`, then `rate` per second
    assert len({s.destination for _t, s in sent}) == 10
    assert p.stats.probes_deferred > 0


def test_forgotten_locators_are_not_probed_and_their_late_answers_are_unknown():
    p = prober()
    p.track(P1, [A, B], 0.0)
    sends, _ = p.on_timer(0.0)
    p.track(P1, [B], 0.0, old_addresses=[A, B])  # the mapping changed: A is no longer used
    assert p.view(A, 0.0) is None
    late = next(s for s in sends if s.destination == A)
    assert answer(p, late, 0.1) == [] and p.stats.probe_replies_unknown == 1
    p.untrack(P1, [B])
    assert p.locators == {} and p.on_timer(5.0) == ([], [])


def test_addresses_we_cannot_reach_are_not_probed():
    p = prober(reaches=lambda address: address.version == 4)
    p.track(P1, [A, ip_address("2001:db8::1")], 0.0)
    assert [s.destination for s in p.on_timer(0.0)[0]] == [A]


# -- in the xTR ---------------------------------------------------------------------------------

PROBING = "probing: {interval: 1, timeout: 0.5, misses: 3}"


def probing_xtr():
    xtr = make_xtr(CONFIG.replace("probing: {enabled: false}", PROBING))
    learn_next_hop(xtr)
    return xtr, switch_with_base(xtr)


def tun_dsts(switch, prefix=P1):
    """Where the mapping's traffic goes: its flow's tunnel destination, or its group's."""
    (flow,) = [f for f in switch.flows.values() if kind_of(f.cookie) in (K_ENCAP, K_NEGATIVE)
               and dict(f.match).get("ipv4_dst", ("",))[0] == str(prefix.network.network_address)]
    if kind_of(flow.cookie) == K_NEGATIVE:
        return None
    actions = flow.write or ()
    group = next((a.group_id for a in actions if isinstance(a, GroupAction)), None)
    if group is not None:
        return sorted(tun_dst(b.actions) for b in switch.groups[group].buckets)
    return [tun_dst(actions)]


def tun_dst(actions) -> str:
    return next(a.value for a in actions if isinstance(a, SetField) and a.field == "tun_ipv4_dst")


def run_timer(xtr, switch, start, stop, answered=()):
    """Timer ticks every 0.1 s from ``start`` to ``stop``; probes to ``answered`` addresses get
    their reply at once. Returns the Map-Requests (not probes) sent."""
    requests = []
    t = start
    while t <= stop:
        effects = xtr.on_timer(t)
        apply(switch, effects)
        for f, message in control_payloads(effects):
            if isinstance(message, MapRequest) and message.probe:
                if f.ip_dst in answered:
                    reply = MapReply(message.nonce, (MappingRecord.for_prefix(P1),), probe=True)
                    apply(switch, xtr.on_packet_in(
                        UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                        underlay_in(reply.encode(), src=str(f.ip_dst)), t + 0.01))
            else:
                requests.append(message)
        t = round(t + 0.1, 2)
    return requests


def test_priority_failover_moves_the_flow_to_the_next_locator_and_back():
    xtr, switch = probing_xtr()
    apply(switch, xtr.add_static(P1, (Locator(A, 1, 100), Locator(B, 2, 100)), 0.0))
    apply(switch, xtr.add_static(P2, (Locator(C, 1, 100),), 0.0))
    other = dict(switch.flows)
    run_timer(xtr, switch, 0.0, 2.0, answered={A, B, C})
    assert tun_dsts(switch) == [str(A)]
    run_timer(xtr, switch, 2.1, 5.0, answered={B, C})  # A stops answering
    assert tun_dsts(switch) == [str(B)] and xtr.prober.is_down(A)
    assert [f for k, f in switch.flows.items() if k in other and "10.3.0.0" in str(f.match)] == \
        [f for k, f in other.items() if "10.3.0.0" in str(f.match)]  # P2 untouched
    run_timer(xtr, switch, 5.1, 7.0, answered={A, B, C})
    assert tun_dsts(switch) == [str(A)] and not xtr.prober.is_down(A)


def test_a_shared_locator_going_down_modifies_the_group_in_place():
    xtr, switch = probing_xtr()
    apply(switch, xtr.add_static(P1, (Locator(A, 1, 50), Locator(B, 1, 50)), 0.0))
    run_timer(xtr, switch, 0.0, 1.0, answered={A, B})
    assert tun_dsts(switch) == sorted([str(A), str(B)])
    flow_before = [f for f in switch.flows.values() if kind_of(f.cookie) == K_ENCAP]
    changes = []
    t = 1.1
    while t < 5 and not xtr.prober.is_down(B):
        effects = xtr.on_timer(t)
        changes += [e for e in effects if type(e).__name__ == "FlowChange"]
        apply(switch, effects)
        for f, message in control_payloads(effects):
            if message.probe and f.ip_dst == A:
                apply(switch, xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                                               underlay_in(MapReply(message.nonce, (),
                                                                    probe=True).encode(),
                                                           src=str(A)), t))
        t = round(t + 0.1, 2)
    assert tun_dsts(switch) == [str(A)]
    (change,) = changes
    assert change.add == () and change.delete == () and len(change.groups) == 1
    assert [f for f in switch.flows.values() if kind_of(f.cookie) == K_ENCAP] == flow_before


def test_a_mapping_whose_locators_are_all_down_is_asked_for_again():
    xtr, switch = probing_xtr()
    (_f, request), = control_payloads(miss(xtr, "10.2.0.10"))
    record = MappingRecord.for_prefix(P1, locators=(Locator(A),), ttl=10)
    apply(switch, xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                                   underlay_in(MapReply(request.nonce, (record,)).encode()), 0.0))
    requests = run_timer(xtr, switch, 0.0, 4.0)
    assert xtr.prober.is_down(A) and tun_dsts(switch) is None  # dropped, not sent into A
    assert requests and {r.records[0].prefix for r in requests} == {P1}
    assert xtr.stats.locators_went_down == 1


def test_probe_replies_go_to_the_prober_not_the_itr():
    xtr, switch = probing_xtr()
    stranger = MapReply(12345, (MappingRecord.for_prefix(P1),), probe=True)
    xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                     underlay_in(stranger.encode()), 0.0)
    assert xtr.stats.probe_replies_unknown == 1 and xtr.stats.replies_rejected == 0


def test_probes_leave_from_the_uplink_as_map_requests_with_the_p_bit():
    xtr, switch = probing_xtr()
    apply(switch, xtr.add_static(P1, (Locator(A),), 0.0))
    ((f, request),) = control_payloads(xtr.on_timer(0.0))
    assert (str(f.ip_dst), f.dport) == (str(A), 4342) and request.probe
    assert frames.parse_frame(underlay_in(b"x")).ip_dst == ip_address("192.0.2.1")


@pytest.mark.parametrize("text", ["probing: {enabled: false}", "probing: {interval: 60}"])
def test_probing_can_be_turned_off_and_tuned(text):
    xtr = make_xtr(CONFIG.replace("probing: {enabled: false}", text))
    assert (xtr.prober is None) == ("false" in text)


# -- the ETR's side: every local locator answers -------------------------------------------------

TWO_LOCATORS = CONFIG.replace(
    "eid_prefixes: [{prefix: 10.1.0.0/24, ttl: 5}",
    "eid_prefixes: [{prefix: 10.1.0.0/24, ttl: 5, locators: [{rloc: 192.0.2.1}, "
    "{rloc: 192.0.2.7, priority: 2}]}")


def test_probes_to_each_local_locator_are_punted_and_answered_from_that_locator():
    from lisp_app.dataplane.flows import OFPP_NORMAL
    from tests.fakeswitch import FakeSwitch
    xtr = make_xtr(TWO_LOCATORS)
    learn_next_hop(xtr)
    _meters, flows, _groups = xtr.desired(UNDERLAY)
    sw = FakeSwitch(flows)
    for address in ("192.0.2.1", "192.0.2.7"):
        run = sw.run(dict(in_port=UPLINK, eth_type=0x0800, ip_proto=17, ipv4_dst=address,
                          udp_dst=4342))
        assert [kind_of(c) for c, _p in run.punts] == [K_PUNT_CONTROL], address
    assert sw.run(dict(in_port=UPLINK, eth_type=0x0800, ip_proto=17, ipv4_dst="192.0.2.9",
                       udp_dst=4342)).ports == [OFPP_NORMAL]
    probe = MapRequest(99, (EidRecord.for_prefix(EidPrefix.parse("[1000]10.1.0.0/24")),),
                       (ip_address("198.51.100.1"),), probe=True)
    frame = frames.udp_frame("02:cc:00:00:00:fe", "02:bb:00:00:00:01",
                             ip_address("198.51.100.1"), ip_address("192.0.2.7"), 4342, 4342,
                             probe.encode())
    effects = xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0, frame, 0.0)
    ((f, reply),) = control_payloads(effects)
    assert isinstance(reply, MapReply) and reply.probe and reply.nonce == 99
    assert (str(f.ip_src), str(f.ip_dst)) == ("192.0.2.7", "198.51.100.1")
    probed = [str(l.address) for l in reply.records[0].locators if l.probed]
    assert probed == ["192.0.2.7"]


def test_a_changed_or_removed_mapping_stops_the_probes_of_the_locators_it_left():
    xtr, switch = probing_xtr()
    apply(switch, xtr.add_static(P1, (Locator(A), Locator(B, 2)), 0.0))
    apply(switch, xtr.add_static(P2, (Locator(B),), 0.0))
    assert set(xtr.prober.locators) == {A, B}
    apply(switch, xtr.add_static(P1, (Locator(C),), 1.0))  # replaces P1's entry
    assert set(xtr.prober.locators) == {B, C}
    assert xtr.prober.locators[B].users == {P2}
    apply(switch, xtr.remove_mapping(P2, 2.0))
    assert set(xtr.prober.locators) == {C}
