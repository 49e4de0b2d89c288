"""Reconciliation (lisp_app.dataplane.reconcile) driven through the byte-level fake switch
(tests/ofswitch.py) with the real pipeline's desired state: a first connect, a reconnect, stale
flows of ours, foreign flows, changed instructions, groups of an earlier controller, meters. After
the plan has run, the switch holds exactly what the core wants plus the foreign flows. Also: every
pipeline flow survives Flow -> ofwire bytes -> switch -> Flow, and packets run through the flows
read back from the switch as through the originals. A counted flow lacking OFPFF_SEND_FLOW_REM
is added again."""

from __future__ import annotations

import itertools
from ipaddress import ip_address

from os_ken.ofproto import ofproto_v1_3 as ofp

from lisp_app.dataplane import ofwire, reconcile
from lisp_app.dataplane.effects import LISP, UNDERLAY
from lisp_app.dataplane.flows import Flow, Meter, Output, canonical_match, match
from lisp_app.dataplane.pipeline import (COOKIE_BASE, K_BASE, K_ENCAP, K_HOST, METER_MISS,
                                         cookie)
from lisp_app.protocol import EidPrefix, Locator
from lisp_app.shell import translate
from tests.fakeswitch import FakeSwitch
from tests.ofswitch import OFSwitch, plain
from tests.xtrkit import GPE, SITE, alt_xtr, make_xtr, msmr

FOREIGN = 0x1234000000000001  # another controller's cookie
TWO = (Locator(ip_address("198.51.100.1"), 1, 70), Locator(ip_address("198.51.100.2"), 1, 30))
ONE = (Locator(ip_address("198.51.100.3"), 1, 100),)


def with_statics(xtr, *items):
    for prefix, locators in items:
        xtr.add_static(EidPrefix.parse(prefix), locators, 0.0)
    return xtr


def connect(switch: OFSwitch, xtr, bridge: str):
    """What the shell does when ``bridge`` connects: read, plan, send the plan and a barrier.
    Returns (plan, the messages before the barrier, what the core wanted)."""
    have = switch.state()
    if bridge == LISP:
        xtr.avoid_group_ids(have.groups)
        xtr.reprogram_mappings()
    wanted = xtr.desired(bridge)
    encoder = ofwire.Encoder()
    plan = reconcile.plan(have, *wanted, delete_groups=bridge == LISP, encoder=encoder)
    xids = itertools.count(1)
    messages = reconcile.messages(plan, encoder, lambda: next(xids), translate)
    switch.receive(b"".join(messages) + ofwire.barrier_request(next(xids)))
    assert switch.errors == []
    return plan, messages, wanted


def assert_holds_exactly(switch: OFSwitch, wanted, foreign=()):
    meters, flows, groups = wanted
    assert switch.flow_set() == {plain(f) for f in flows} | {plain(f) for f in foreign}
    assert {g.group_id: g for g in switch.group_list()} == {g.group_id: g for g in groups}
    assert sorted(switch.tables.meters.values(), key=lambda m: m.meter_id) == \
        sorted(meters, key=lambda m: m.meter_id)


def foreign_flows():
    return [Flow(0, 5, match(eth_type=0x88cc), FOREIGN, apply=(Output(9),)),
            Flow(1, 1024, match(eth_type=0x800, ipv4_dst=("10.9.0.0", "255.255.0.0")), FOREIGN,
                 apply=(Output(3),)),
            # our table and priority, not our cookie: still not ours
            Flow(4, 7, match(eth_type=0x800), COOKIE_BASE ^ (1 << 63), apply=(Output(4),))]


def test_first_connect_on_an_empty_switch_adds_everything():
    xtr = with_statics(make_xtr(), ("[1000]10.8.0.0/24", TWO), ("[1000]10.9.0.0/16", ONE))
    for bridge in (LISP, UNDERLAY):
        switch = OFSwitch()
        plan, messages, wanted = connect(switch, xtr, bridge)
        meters, flows, groups = wanted
        assert (plan.added, plan.stale, plan.kept) == (len(flows), 0, 0)
        assert len(plan.meters_add) == len(meters) and not plan.meters_modify
        assert len(plan.groups_add) == len(groups) and not plan.groups_modify
        assert len(messages) == len(meters) + len(groups) + len(flows)
        assert switch.barriers == 1
        assert_holds_exactly(switch, wanted)
        assert bool(groups) == (bridge == LISP)  # the LISP bridge got the select group


def test_a_reconnect_with_everything_present_sends_only_the_barrier():
    for xtr in (make_xtr(), alt_xtr()[0], msmr()[0]):
        for bridge in (LISP, UNDERLAY):
            switch = OFSwitch()
            connect(switch, xtr, bridge)
            plan, messages, wanted = connect(switch, xtr, bridge)
            assert not plan and messages == [] and switch.barriers == 2
            assert (plan.added, plan.stale, plan.kept) == (0, 0, len(wanted[1]))
            assert_holds_exactly(switch, wanted)


def test_a_reconnect_modifies_present_groups_in_place_and_nothing_else():
    xtr = with_statics(make_xtr(), ("[1000]10.8.0.0/24", TWO))
    switch = OFSwitch()
    connect(switch, xtr, LISP)
    plan, messages, wanted = connect(switch, xtr, LISP)
    assert [g.group_id for g in plan.groups_modify] == list(xtr.group_ids().values())
    assert not plan.groups_add and not plan.flows_add and not plan.flows_delete
    assert len(messages) == 1
    assert_holds_exactly(switch, wanted)


def test_stale_flows_of_ours_are_removed_and_foreign_flows_untouched():
    before = with_statics(make_xtr(), ("[1000]10.8.0.0/24", TWO), ("[1000]10.9.0.0/16", ONE),
                          ("[1000]2001:db8:9::/48", ONE))
    switch = OFSwitch()
    foreign = foreign_flows()
    switch.preload(foreign)
    connect(switch, before, LISP)
    after = with_statics(make_xtr(), ("[1000]10.9.0.0/16", ONE))  # a restart with fewer mappings
    plan, _messages, wanted = connect(switch, after, LISP)
    gone = {plain(f) for f in before.desired(LISP)[1]} - {plain(f) for f in wanted[1]}
    assert gone and {(r.table, r.priority, r.match) for r in plan.flows_delete} == \
        {(f.table, f.priority, f.match) for f in gone}
    assert plan.stale == len(gone) and plan.added == 0
    assert_holds_exactly(switch, wanted, foreign)
    assert all(f in switch.flow_set() for f in map(plain, foreign))


def test_the_plan_never_looks_at_a_foreign_flow_even_if_it_is_reported():
    xtr = make_xtr()
    switch = OFSwitch()
    switch.preload(foreign_flows())
    everything = switch.state(cookie=0, mask=0)  # as if the switch reported every flow
    assert len(everything.flows) == 3
    plan = reconcile.plan(everything, *xtr.desired(LISP), delete_groups=True)
    assert plan.flows_delete == []


def test_a_flow_whose_instructions_or_cookie_changed_is_added_again():
    xtr = make_xtr()
    _meters, flows, _groups = xtr.desired(LISP)
    changed = next(f for f in flows if f.apply)
    recookied = next(f for f in flows if f is not changed and f.cookie == cookie(K_BASE))
    switch = OFSwitch()
    connect(switch, xtr, LISP)
    switch.preload([Flow(changed.table, changed.priority, changed.match, changed.cookie,
                         apply=(Output(99),), goto=changed.goto),
                    Flow(recookied.table, recookied.priority, recookied.match, cookie(K_ENCAP),
                         recookied.apply, recookied.write, recookied.clear, recookied.metadata,
                         recookied.goto, recookied.meter)])
    plan, _messages, wanted = connect(switch, xtr, LISP)
    assert plan.flows_add == [changed, recookied] or plan.flows_add == [recookied, changed]
    assert (plan.stale, plan.kept) == (0, len(flows) - 2)
    assert_holds_exactly(switch, wanted)


def test_a_counted_flow_without_its_flow_removed_flag_is_added_again_keeping_its_counts():
    """A flow of an earlier version (no OFPFF_SEND_FLOW_REM) would leave without reporting its
    final count: reconciliation replaces it, and the switch keeps the counts it had."""
    xtr = with_statics(make_xtr(), ("[1000]10.9.0.0/16", ONE))
    switch = OFSwitch()
    connect(switch, xtr, LISP)
    (encap,) = xtr.installer.flows_of(EidPrefix.parse("[1000]10.9.0.0/16"))
    assert switch.flags(encap) == ofp.OFPFF_SEND_FLOW_REM
    switch.receive(ofwire.Encoder().flow_add(encap, 9, flags=0))  # as an earlier version did
    switch.hit(encap, 7)
    plan, _messages, wanted = connect(switch, xtr, LISP)
    assert plan.flows_add == [encap] and plan.stale == 0
    assert switch.flags(encap) == ofp.OFPFF_SEND_FLOW_REM and switch.packets(encap) == 7
    assert_holds_exactly(switch, wanted)


def test_groups_of_an_earlier_controller_are_deleted_and_shared_ids_modified():
    earlier = with_statics(make_xtr(), ("[1000]10.8.0.0/24", TWO), ("[1000]10.7.0.0/24", TWO))
    switch = OFSwitch()
    connect(switch, earlier, LISP)
    left = sorted(earlier.group_ids().values())
    assert len(left) == 2
    # the restarted controller knows one of the two mappings (a static of its config)
    now = with_statics(make_xtr(), ("[1000]10.8.0.0/24", TWO))
    plan, _messages, wanted = connect(switch, now, LISP)
    (kept,) = now.group_ids().values()
    assert [g.group_id for g in plan.groups_modify] == [kept]
    assert plan.groups_delete == [gid for gid in left if gid != kept]
    assert plan.groups_after(left) == {kept}
    assert_holds_exactly(switch, wanted)
    # a new mapping takes an id that was not in use on the switch
    with_statics(now, ("[1000]10.6.0.0/24", TWO))
    assert now.group_ids()[EidPrefix.parse("[1000]10.6.0.0/24")] not in left


def test_the_underlay_bridge_never_deletes_groups():
    xtr = make_xtr()
    switch = OFSwitch()
    switch.preload(groups=with_statics(make_xtr(), ("[1000]10.8.0.0/24", TWO)).desired(LISP)[2])
    plan, _messages, _wanted = connect(switch, xtr, UNDERLAY)
    assert plan.groups_delete == [] and len(switch.group_list()) == 1


def test_meters_are_added_or_modified():
    xtr = make_xtr()
    meters = xtr.desired(LISP)[0]
    assert len(meters) >= 2
    switch = OFSwitch()
    miss = next(m for m in meters if m.meter_id == METER_MISS)
    switch.receive(ofwire.meter_mod(ofwire.OFPMC_ADD, Meter(METER_MISS, miss.rate_pps + 1), 1))
    plan, _messages, wanted = connect(switch, xtr, LISP)
    assert plan.meters_modify == [miss]
    assert sorted(m.meter_id for m in plan.meters_add) == \
        sorted(m.meter_id for m in meters if m.meter_id != METER_MISS)
    assert_holds_exactly(switch, wanted)
    assert connect(switch, xtr, LISP)[0].meters_modify == []


def pipeline_corpus():
    flows, groups = [], []
    xtr = with_statics(make_xtr(), ("[1000]10.8.0.0/24", TWO), ("[1000]10.9.0.0/16", ONE),
                       ("[1000]2001:db8:9::/48", ONE),
                       ("[7]10.7.0.1/32", (Locator(ip_address("198.51.100.4"), 2, 0),)))
    for x in (xtr, alt_xtr()[0], msmr()[0]):
        for bridge in (LISP, UNDERLAY):
            _meters, bflows, bgroups = x.desired(bridge)
            flows += bflows
            groups += bgroups
    flows.append(Flow(4, 5, match(metadata=(1000, 0xFFFFFF), eth_type=0x800,
                                  ipv4_dst="10.1.0.10"), cookie(K_HOST), idle_timeout=300,
                      apply=(Output(SITE),)))
    return xtr, flows, groups


def test_every_pipeline_flow_survives_the_round_trip_through_the_switch():
    _xtr, flows, groups = pipeline_corpus()
    encoder = ofwire.Encoder()
    for xid, flow in enumerate(flows, 1):
        switch = OFSwitch()
        switch.receive(encoder.flow_add(flow, xid))
        assert switch.errors == [] and switch.flows() == [plain(flow)], flow
        assert switch.flags(flow) == ofwire.flow_flags(flow)
    for group in groups:
        switch = OFSwitch()
        switch.receive(encoder.group_mod(ofwire.OFPGC_ADD, group, 1))
        assert switch.group_list() == [group]


def test_packets_run_through_the_flows_read_back_as_through_the_originals():
    xtr, _flows, _groups = pipeline_corpus()
    meters, flows, groups = xtr.desired(LISP)
    switch = OFSwitch()
    connect(switch, xtr, LISP)
    original, read_back = FakeSwitch(flows, groups), FakeSwitch(switch.flows(),
                                                                switch.group_list())
    packets = [dict(in_port=SITE, eth_type=0x800, ipv4_src="10.1.0.10", ipv4_dst=dst, ttl=64,
                    length=100) for dst in ("10.8.0.5", "10.9.3.3", "10.66.0.1", "10.1.0.10")]
    packets.append(dict(in_port=GPE, eth_type=0x800, tunnel_id=1000, ipv4_src="10.9.0.1",
                        ipv4_dst="10.1.0.10", ttl=64, length=100))
    for pkt in packets:
        want, got = original.run(pkt), read_back.run(pkt)
        assert (got.outputs, [c for c, _p in got.punts], got.meters, got.dropped) == \
            (want.outputs, [c for c, _p in want.punts], want.meters, want.dropped)
    assert any(original.run(p).outputs for p in packets)


def test_a_bundle_lands_at_commit_all_or_nothing():
    xtr = make_xtr()
    flows = xtr.desired(LISP)[1][:5]
    encoder = ofwire.Encoder()
    switch = OFSwitch()
    framed = [ofwire.bundle_add(encoder.flow_add(f, 10 + i), 7) for i, f in enumerate(flows)]
    switch.receive(ofwire.bundle_control(1, 7, ofwire.ONF_BCT_OPEN_REQUEST) + b"".join(framed))
    assert switch.flows() == []
    switch.receive(ofwire.bundle_control(2, 7, ofwire.ONF_BCT_COMMIT_REQUEST))
    assert switch.flow_set() == {plain(f) for f in flows}
    bad = ofwire.group_mod(ofwire.OFPGC_MODIFY, 99, (), 20)  # no group 99: refused
    other = ofwire.Encoder().flow_add(xtr.desired(UNDERLAY)[1][0], 21)
    switch.receive(ofwire.bundle_control(3, 8, ofwire.ONF_BCT_OPEN_REQUEST)
                   + ofwire.bundle_add(other, 8) + ofwire.bundle_add(bad, 8)
                   + ofwire.bundle_control(4, 8, ofwire.ONF_BCT_COMMIT_REQUEST))
    assert [xid for xid, _why in switch.errors] == [4]
    assert switch.flow_set() == {plain(f) for f in flows}


def test_strict_delete_honours_the_cookie_mask():
    flow = Flow(1, 10, match(eth_type=0x800), FOREIGN, apply=(Output(1),))
    switch = OFSwitch()
    switch.preload([flow])
    switch.receive(ofwire.Encoder().flow_delete_of(Flow(1, 10, flow.match, cookie(K_BASE)), 1))
    assert switch.flows() == [flow]  # our cookie under our mask: not that flow
    switch.receive(ofwire.Encoder().flow_delete(1, 10, canonical_match(flow.match), FOREIGN, 2))
    assert switch.flows() == []
