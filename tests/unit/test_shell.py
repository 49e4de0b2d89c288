"""The os-ken shell (lisp_app.app.LispApp) over byte-level fake switches (tests/ofswitch.py), with
no os-ken controller running: a datapath stand-in whose ``send`` feeds the fake switch, requests
answered by the fake switch, barriers, error replies, aggregate replies and FlowRemoved messages
delivered in line. Checked: connect and reconnect (only a barrier, and the counters' baseline,
when nothing changed; foreign flows untouched), effects dispatched by type, bulk bundles and their
errors keyed by bridge, guarded handlers, the data-plane counters across flow removals, and the
API's flow and group rows (lisp_app.shell.translate's views)."""

from __future__ import annotations

from ipaddress import ip_address
from types import SimpleNamespace

import pytest
from os_ken.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from lisp_app.app import LispApp
from lisp_app.config import parse_config
from lisp_app.alt.effects import Announce
from lisp_app.dataplane import ofwire
from lisp_app.dataplane.effects import LISP, UNDERLAY, FlowChange, PacketOut
from lisp_app.dataplane.flows import (OFPP_CONTROLLER, OFPP_LOCAL, CheckPktLarger, CopyField,
                                      DecTtl, Flow, GroupAction, Output, SetField, ToController,
                                      match)
from lisp_app.dataplane.pipeline import COUNTED_KINDS, K_ENCAP, K_HOST, K_PUNT_TOO_BIG, cookie
from lisp_app.protocol import EidPrefix, Locator
from lisp_app.shell import translate
from tests.ofswitch import OFPT_BARRIER_REQUEST, Datapath, OFSwitch, plain
from tests.xtrkit import CONFIG, GPE, LOCAL_MAC, SITE, UPLINK

TWO = (Locator(ip_address("198.51.100.1"), 1, 70), Locator(ip_address("198.51.100.2"), 1, 30))
FOREIGN = 0x1234000000000001
# after programming the LISP bridge, the counters' baseline: an aggregate request per counted kind
BASELINE = [ofwire.OFPT_MULTIPART_REQUEST] * len(COUNTED_KINDS)


class Shell:
    """A LispApp wired to two fake switches."""

    def __init__(self):
        self.app = LispApp(lisp_config=parse_config(CONFIG))
        self.switches = {LISP: OFSwitch({"site": (SITE, "02:00:00:00:01:01"),
                                         "gpe": (GPE, "02:00:00:00:01:02")}),
                         UNDERLAY: OFSwitch({"uplink": (UPLINK, "02:00:00:00:02:07"),
                                             "LOCAL": (OFPP_LOCAL, LOCAL_MAC)})}
        self.dps = {LISP: Datapath(1, self.switches[LISP], self.app),
                    UNDERLAY: Datapath(2, self.switches[UNDERLAY], self.app)}
        self.app._bodies = lambda msg: self.switches[self.bridge(msg.datapath)].reply(msg)
        self.app._barrier = self.barrier
        self.seen_errors = {b: 0 for b in self.switches}

    def bridge(self, dp) -> str:
        return LISP if dp.id == 1 else UNDERLAY

    def barrier(self, dp) -> None:
        """The barrier, then the switch's error replies as os-ken delivers them (before the
        barrier's reply)."""
        dp.send(ofwire.barrier_request(self.app._xid(dp)))
        bridge = self.bridge(dp)
        errors = self.switches[bridge].errors
        for xid, _why in errors[self.seen_errors[bridge]:]:
            self.app._error(SimpleNamespace(msg=SimpleNamespace(
                datapath=dp, type=1, code=2, data=b"", xid=xid)))
        self.seen_errors[bridge] = len(errors)

    def connect(self, bridge: str) -> list[int]:
        """Connect ``bridge``; the message types it received."""
        before = len(self.switches[bridge].received)
        self.app._connect(bridge, self.dps[bridge])
        return self.switches[bridge].received[before:]


@pytest.fixture
def shell():
    return Shell()


def test_connect_programs_both_bridges_and_a_reconnect_sends_only_the_barrier(shell):
    foreign = [Flow(0, 5, match(eth_type=0x88cc), FOREIGN, apply=(Output(9),))]
    shell.switches[LISP].preload(foreign)
    for bridge in (LISP, UNDERLAY):
        shell.connect(bridge)
        _meters, flows, _groups = shell.app.xtr.desired(bridge)
        extra = foreign if bridge == LISP else []
        assert shell.switches[bridge].flow_set() == {plain(f) for f in flows + extra}
        assert shell.switches[bridge].errors == []
    assert set(shell.app.datapaths) == {LISP, UNDERLAY}
    assert shell.switches[UNDERLAY].packet_outs  # the next hop is resolved at once
    assert shell.app.warm.next_at is not None
    # the switch's instructions, re-serialized from os-ken's parse, equal ofwire's bytes
    assert shell.connect(LISP) == [OFPT_BARRIER_REQUEST] + BASELINE
    sent = shell.connect(UNDERLAY)  # then the next hops are resolved again (packet-outs)
    assert sent[0] == OFPT_BARRIER_REQUEST and set(sent[1:]) == {ofwire.OFPT_PACKET_OUT}


def test_a_reconnect_modifies_groups_in_place(shell):
    shell.connect(LISP)
    shell.app.execute(shell.app.xtr.add_static(EidPrefix.parse("[1000]10.8.0.0/24"), TWO, 0.0))
    (gid,) = shell.app.xtr.group_ids().values()
    assert [g.group_id for g in shell.switches[LISP].group_list()] == [gid]
    assert shell.connect(LISP) == [ofwire.OFPT_GROUP_MOD, OFPT_BARRIER_REQUEST] + BASELINE
    assert shell.app.writer.groups == {gid}


def test_effects_are_dispatched_by_type(shell, caplog):
    shell.connect(LISP)
    flow = Flow(1, 7, match(eth_type=0x800, ipv4_dst="10.5.0.1"), cookie(K_ENCAP),
                apply=(Output(GPE),))
    shell.app.execute([FlowChange(LISP, add=(flow,)), PacketOut(LISP, b"\x00" * 60, 5),
                       PacketOut(UNDERLAY, b"\x00" * 60, 5),  # not connected: dropped
                       object()])  # no handler: ignored
    switch = shell.switches[LISP]
    assert plain(flow) in switch.flow_set()
    assert [(p.in_port, p.actions) for p in switch.packet_outs] == [(OFPP_CONTROLLER, (Output(5),))]
    shell.app.execute([FlowChange(LISP, delete=(flow,))])
    assert plain(flow) not in switch.flow_set()


def test_alt_effects_go_to_the_adapter_when_there_is_one(shell):
    applied = []
    shell.app.alt = SimpleNamespace(apply=applied.append)
    effect = object.__new__(Announce)
    shell.app.execute([effect])
    assert applied == [effect]
    shell.app.alt = None
    shell.app.execute([effect])  # not on the ALT: ignored


def test_bulk_installs_land_in_one_bundle(shell):
    shell.connect(LISP)
    effects = shell.app.xtr.add_static_many(
        [(EidPrefix.parse(f"[1000]10.{n}.0.0/16"), TWO[:1]) for n in range(20, 30)], 0.0)
    counts = shell.app.execute_bulk(effects)
    assert counts == {"flows": 10, "groups": 0, "bundles": 1}
    assert shell.switches[LISP].flow_set() >= {plain(f) for f in shell.app.xtr.desired(LISP)[1]}
    assert shell.app._bulk_running == 0


def test_a_bulk_install_streams_its_flows_into_one_bundle_committed_last(shell):
    """Effects from a generator (the API's, which compiles them as they are taken): the flows
    reach the switch batch by batch, into one open bundle, and count only at the commit."""
    from lisp_app.app import BULK_BATCH
    shell.connect(LISP)
    switch = shell.switches[LISP]
    before = switch.flow_set()
    n = 2 * BULK_BATCH + 10
    prefixes = [EidPrefix.parse(f"[1000]10.{i >> 8}.{i & 255}.0/24") for i in range(n)]
    seen = []

    def effects():
        for i in range(0, n, 100):
            seen.append(sum(len(b) for b in switch.bundles.values()))  # flows staged so far
            yield from shell.app.xtr.add_static_many([(p, TWO[:1]) for p in prefixes[i:i + 100]],
                                                     0.0)
            assert switch.flow_set() == before  # nothing installed before the commit
    counts = shell.app.execute_bulk(effects())
    assert counts == {"flows": n, "groups": 0, "bundles": 1}
    assert seen[0] == 0 and seen[-1] >= BULK_BATCH  # sent while later ones were compiled
    assert len(switch.flow_set() - before) == n and not switch.bundles


def test_a_bulk_install_whose_effects_fail_discards_its_bundle(shell):
    from lisp_app.app import BULK_BATCH
    shell.connect(LISP)
    switch = shell.switches[LISP]
    before = switch.flow_set()

    def effects():
        yield from shell.app.xtr.add_static_many(
            [(EidPrefix.parse(f"[1000]10.{i >> 8}.{i & 255}.0/24"), TWO[:1])
             for i in range(BULK_BATCH + 1)],
            0.0)
        raise ValueError("compiling failed")
    with pytest.raises(ValueError, match="compiling failed"):
        shell.app.execute_bulk(effects())
    assert switch.flow_set() == before and not switch.bundles  # discarded: nothing installed
    assert shell.app._bulk_running == 0
    assert shell.app.execute_bulk([FlowChange(LISP, add=(_flow(7),))])["bundles"] == 1


def _flow(n: int) -> Flow:
    return Flow(1, 7, match(eth_type=0x800, ipv4_dst=f"10.5.0.{n}"), cookie(K_ENCAP),
                apply=(Output(GPE),))


def test_a_refused_bundle_raises_and_errors_are_kept_per_bridge(shell, monkeypatch):
    shell.connect(LISP)
    shell.connect(UNDERLAY)
    # an error of the other bridge with an xid in the bundle's range does not count
    shell.app.errors.record(UNDERLAY, shell.dps[LISP].xid + 2, "type 9 code 9")
    good = Flow(1, 7, match(eth_type=0x800, ipv4_dst="10.5.0.1"), cookie(K_ENCAP),
                apply=(Output(GPE),))
    assert shell.app.execute_bulk([FlowChange(LISP, add=(good,))])["bundles"] == 1
    assert plain(good) in shell.switches[LISP].flow_set()
    # a bundle the switch refuses at commit (inside: a modify of a group it does not hold)
    writer = shell.app.writer
    missing = SimpleNamespace(group_id=4242, buckets=())
    monkeypatch.setattr(writer, "bundled_flow_add", lambda flow, xid, bundle: ofwire.bundle_add(
        writer.encoder.group_mod(ofwire.OFPGC_MODIFY, missing, xid), bundle))
    before = shell.switches[LISP].flow_set()
    with pytest.raises(RuntimeError,
                       match="refused bundle .* OFPET_BAD_REQUEST/OFPBRC_BAD_MULTIPART"):
        shell.app.execute_bulk([FlowChange(LISP, add=(good,))])
    assert shell.switches[LISP].flow_set() == before and shell.app._bulk_running == 0


def test_handlers_are_guarded_and_count_their_failures(shell, monkeypatch):
    shell.connect(LISP)
    stats = shell.app.xtr.stats

    def broken(*args):
        raise ValueError("boom")

    monkeypatch.setattr(shell.app.xtr, "on_packet_in", broken)
    ev = SimpleNamespace(msg=SimpleNamespace(datapath=shell.dps[LISP], cookie=cookie(K_HOST),
                                             match={"in_port": SITE}, data=b"\x00" * 14))
    shell.app._packet_in(ev)  # does not raise
    assert (stats.bad_header, stats.handler_errors) == (1, 1)
    monkeypatch.setattr(shell.app.xtr, "host_expired", broken)
    shell.app._flow_removed(SimpleNamespace(msg=SimpleNamespace(
        datapath=shell.dps[LISP], cookie=cookie(K_HOST), packet_count=0,
        match=parser.OFPMatch(in_port=1))))
    assert (stats.bad_header, stats.handler_errors) == (1, 2)
    monkeypatch.setattr(shell.app, "_bodies", broken)
    shell.app._connect(UNDERLAY, shell.dps[UNDERLAY])  # a failed connect: logged, counted
    assert stats.handler_errors == 3 and UNDERLAY not in shell.app.datapaths


def test_state_changes_ignore_unknown_datapaths_and_forget_dead_ones(shell, monkeypatch):
    spawned = []
    monkeypatch.setattr("lisp_app.app.hub.spawn", lambda *a: spawned.append(a))
    shell.app._state_change(SimpleNamespace(datapath=SimpleNamespace(id=99),
                                            state=MAIN_DISPATCHER))
    assert spawned == []
    shell.app._state_change(SimpleNamespace(datapath=shell.dps[LISP], state=MAIN_DISPATCHER))
    assert [a[1:] for a in spawned] == [(LISP, shell.dps[LISP])]
    shell.connect(LISP)
    shell.app._state_change(SimpleNamespace(datapath=shell.dps[LISP], state=DEAD_DISPATCHER))
    assert LISP not in shell.app.datapaths


def test_flow_rows_show_what_the_switch_holds(shell):
    shell.connect(LISP)
    rows = shell.app.flow_rows(LISP)
    assert rows and rows == sorted(rows, key=lambda r: (r["table"], -r["priority"]))
    assert {"table", "priority", "cookie", "kind", "match", "actions", "packets", "bytes",
            "idle_timeout", "duration", "ofctl"} == set(rows[0])
    assert rows[0]["ofctl"].startswith(f"cookie={rows[0]['cookie']}, duration=")
    assert {r["kind"] for r in rows} >= {"base", "punt-miss"}


def test_instruction_and_action_descriptions():
    flow = Flow(1, 5, match(eth_type=0x800), cookie(K_ENCAP), meter=1,
                apply=(CheckPktLarger(1464), ToController()), clear=True,
                write=(DecTtl(), SetField("tun_ipv4_dst", "198.51.100.1"), GroupAction(3),
                       Output(OFPP_LOCAL), CopyField("eth_src", "eth_dst", 48)),
                metadata=(1000, 0xFFFFFF), goto=2)
    assert translate.describe_instructions(translate.instructions(flow)) == [
        "meter:1", "apply(check_pkt_larger(1464),output:CONTROLLER)", "clear_actions",
        "write(dec_ttl,set_field:198.51.100.1->tun_ipv4_dst,group:3,output:LOCAL,"
        "move:eth_src->eth_dst)", "write_metadata:0x3e8/0xffffff", "goto_table:2"]
    stat = parser.OFPFlowStats(1, 3, 0, 5, 0, 0, 0, FOREIGN, 4, 400,
                               parser.OFPMatch(ipv4_dst=("10.0.0.0", "255.0.0.0")), [])
    row = translate.flow_view(stat)
    assert row["kind"] == "other" and row["match"] == {"ipv4_dst": ["10.0.0.0", "255.0.0.0"]}
    desc = parser.OFPGroupDescStats(ofp.OFPGT_SELECT, 3, [parser.OFPBucket(
        70, ofp.OFPP_ANY, ofp.OFPG_ANY, translate.actions((Output(2),)))])
    counters = parser.OFPGroupStats(group_id=3, packet_count=5, byte_count=50, ref_count=1,
                                    duration_sec=12, duration_nsec=345000000,
                                    bucket_stats=[parser.OFPBucketCounter(5, 50)])
    assert translate.group_rows([(desc, counters)], {EidPrefix.parse("[1000]10.8.0.0/24"): 3}) \
        == [{"group_id": 3, "packets": 5, "bytes": 50,
             "buckets": [{"weight": 70, "actions": ["output:2"]}], "bucket_packets": [5],
             "ofctl": "group_id=3,type=select,bucket=weight:70,actions=output:2",
             "ofctl_stats": "group_id=3,duration=12.345s,ref_count=1,packet_count=5,byte_count=50,"
                            "bucket0:packet_count=5,byte_count=50",
             "prefix": "[1000]10.8.0.0/24"}]


def test_the_writer_adds_a_group_once_then_modifies_it_and_forgets_deleted_ones():
    from lisp_app.dataplane.flows import Bucket, Group
    from lisp_app.shell.writer import FlowWriter
    writer = FlowWriter(translate)
    group = Group(5, (Bucket(70, (Output(2),)), Bucket(30, (Output(3),))))
    switch = OFSwitch()
    xids = iter(range(1, 100))
    for _ in range(2):
        switch.receive(b"".join(writer.change(FlowChange(LISP, groups=(group,)),
                                              lambda: next(xids))))
    assert switch.errors == [] and switch.group_list() == [group]
    switch.receive(b"".join(writer.change(FlowChange(LISP, delete_groups=(5,)),
                                          lambda: next(xids))))
    assert switch.group_list() == [] and writer.groups == set()


def test_what_ofwire_does_not_write_goes_through_os_ken():
    from lisp_app.shell.writer import FlowWriter
    flow = Flow(0, 9, match(vlan_vid=0x1005), cookie(K_ENCAP), apply=(Output(2),))
    writer = FlowWriter(translate)
    assert writer.flow_add(flow, 3) == translate.flow_add(flow, 3)
    switch = OFSwitch()
    switch.receive(writer.flow_add(flow, 3))
    assert switch.flows() == [plain(flow)]
    switch.receive(writer.flow_delete(flow, 4))
    assert switch.flows() == []


def test_switch_errors_are_found_by_bridge_and_wrapping_xid_range():
    from lisp_app.shell.writer import SwitchErrors, summary
    errors = SwitchErrors()
    errors.record(LISP, 0xFFFFFFFF, "a")
    errors.record(LISP, 2, "b")
    errors.record(UNDERLAY, 1, "c")
    errors.record(LISP, 9, "d")
    assert errors.between(LISP, 0xFFFFFFFE, 3) == ["a", "b"]
    assert errors.between(UNDERLAY, 0xFFFFFFFE, 3) == ["c"]
    assert summary(["a", "b", "c"]) == "a and 2 more errors" and summary(["a"]) == "a"
    for xid in range(SwitchErrors.LIMIT + 10):
        errors.record(LISP, 100 + xid, "x")
    assert errors.between(LISP, 0, 99) == []  # the oldest were dropped


def test_a_bulk_install_splits_into_what_goes_at_once_and_one_bundle_per_bridge():
    from lisp_app.dataplane.flows import Bucket, Group
    from lisp_app.shell.writer import split_bulk
    a, b = (Flow(1, 2000 + n, (("ipv4_dst", f"10.{n}.0.0"),), cookie(K_ENCAP)) for n in (1, 2))
    group = Group(5, (Bucket(1, ()),))
    out = PacketOut(LISP, b"x", 1)
    alt = Announce(EidPrefix.parse("10.1.0.0/24"))
    effects = [FlowChange(LISP, add=(a,), delete=(b,), groups=(group,)), out, alt,
               FlowChange(LISP, add=(b,)), FlowChange(UNDERLAY, add=(a,))]
    at_once, adds = split_bulk(effects, {LISP: object()})
    assert at_once == [FlowChange(LISP, delete=(b,), groups=(group,)), out, alt]
    assert adds == {LISP: [a, b]}  # the underlay is not connected: left for its reconnect


# -- the data-plane counters (lisp_app.control.counting through the shell) ----------------------

def _encap_flow(shell, prefix: str) -> Flow:
    (flow,) = shell.app.xtr.installer.flows_of(EidPrefix.parse(prefix))
    return flow


def test_sent_counts_survive_the_controllers_delete_of_the_mapping(shell):
    """A 3-packet ping's encapsulation flow, then ``lispctl map del``: the controller deletes
    the flow, the switch reports its final count, and sent does not go down."""
    switch = shell.switches[LISP]
    shell.connect(LISP)
    shell.app.execute(shell.app.xtr.add_static(EidPrefix.parse("[1000]10.9.0.0/16"), TWO[:1],
                                               0.0))
    flow = _encap_flow(shell, "[1000]10.9.0.0/16")
    assert switch.flags(flow) & ofp.OFPFF_SEND_FLOW_REM
    switch.hit(flow, 3)
    assert shell.app.poll_counters(settle=0)
    stats = shell.app.xtr.stats
    assert stats.sent == 3
    switch.hit(flow, 1)  # one more before the delete, never polled
    shell.app.execute(shell.app.xtr.remove_mapping(EidPrefix.parse("[1000]10.9.0.0/16"), 1.0))
    assert plain(flow) not in switch.flow_set()
    assert stats.sent == 4
    assert shell.app.poll_counters(settle=0) and stats.sent == 4


def test_expired_flows_and_explicit_drops_count_apart_from_negative_mappings(shell):
    from lisp_app.mapping.cache import CacheEntry
    from lisp_app.protocol import Action
    switch = shell.switches[LISP]
    shell.connect(LISP)
    xtr = shell.app.xtr
    multicast = next(f for f in xtr.desired(LISP)[1]
                     if dict(f.match).get("ipv4_dst") == ("224.0.0.0", "240.0.0.0"))
    switch.hit(multicast, 2)
    negative = CacheEntry(EidPrefix.parse("[1000]10.66.0.0/16"), (), Action.DROP_NO_REASON)
    shell.app.execute(xtr.installer.install(negative))
    switch.hit(_encap_flow(shell, "[1000]10.66.0.0/16"), 5)
    assert shell.app.poll_counters(settle=0)
    assert (xtr.stats.dropped_policy, xtr.stats.dropped_negative) == (2, 5)
    switch.expire(_encap_flow(shell, "[1000]10.66.0.0/16"))  # a hard timeout, say
    assert shell.app.poll_counters(settle=0)
    assert (xtr.stats.dropped_policy, xtr.stats.dropped_negative) == (2, 5)
    assert xtr.stats.sent == 0


def test_a_mapping_that_turns_positive_does_not_carry_its_drops_into_sent(shell):
    """OVS keeps a replaced flow's counts: the negative flow is deleted first (its count goes to
    dropped_negative), then the encapsulation flow is added from zero."""
    from lisp_app.mapping.cache import CacheEntry
    from lisp_app.protocol import Action
    switch = shell.switches[LISP]
    shell.connect(LISP)
    xtr = shell.app.xtr
    prefix = EidPrefix.parse("[1000]10.66.0.0/16")
    negative = CacheEntry(prefix, (), Action.DROP_NO_REASON)
    shell.app.execute(xtr.installer.install(negative))
    switch.hit(_encap_flow(shell, "[1000]10.66.0.0/16"), 4)
    shell.app.execute(xtr.installer.install(CacheEntry(prefix, TWO[:1])))
    assert _encap_flow(shell, "[1000]10.66.0.0/16").cookie == cookie(K_ENCAP)
    assert switch.packets(_encap_flow(shell, "[1000]10.66.0.0/16")) == 0
    assert shell.app.poll_counters(settle=0)
    assert (xtr.stats.dropped_negative, xtr.stats.sent) == (4, 0)


def test_the_controllers_own_drops_are_not_overwritten_by_a_poll(shell):
    from tests.xtrkit import arp_reply
    shell.connect(LISP)
    stats = shell.app.xtr.stats
    frame = arp_reply("10.1.0.10", "02:00:00:00:00:10", "10.1.0.1", "02:00:00:00:00:01")
    shell.app._packet_in(SimpleNamespace(msg=SimpleNamespace(
        datapath=shell.dps[LISP], cookie=cookie(K_PUNT_TOO_BIG), match={"in_port": SITE},
        data=frame)))
    assert stats.too_big_dropped == 1
    assert shell.app.poll_counters(settle=0)
    assert stats.too_big_dropped == 1 and stats.dropped == 1


def test_counters_go_on_across_a_reconnect_and_reconciliation(shell):
    """Counts of flows from before the controller's start are not counted; a reconnect whose
    reconciliation deletes a counted flow (its mapping went while disconnected) loses nothing."""
    switch = shell.switches[LISP]
    old = Flow(1, 2016, match(eth_type=0x800, ipv4_dst=("10.77.0.0", "255.255.0.0"),
                              metadata=(1000, 0xFFFFFF)), cookie(K_ENCAP), apply=(Output(GPE),))
    switch.preload([old])
    switch.hit(old, 100)  # an earlier controller's flow, with its counts
    shell.connect(LISP)   # reconciliation deletes it (its count is not ours), then the baseline
    stats = shell.app.xtr.stats
    assert stats.sent == 0
    prefix = EidPrefix.parse("[1000]10.9.0.0/16")
    shell.app.execute(shell.app.xtr.add_static(prefix, TWO[:1], 0.0))
    switch.hit(_encap_flow(shell, "[1000]10.9.0.0/16"), 6)
    assert shell.app.poll_counters(settle=0) and stats.sent == 6
    del shell.app.datapaths[LISP]  # disconnected: the mapping goes, the switch keeps the flow
    shell.app.execute(shell.app.xtr.remove_mapping(prefix, 1.0))
    switch.hit(_encap_flow_key(switch, prefix), 1)
    shell.connect(LISP)
    assert not any(f.cookie == cookie(K_ENCAP) for f in switch.flows())
    assert stats.sent == 6
    assert shell.app.poll_counters(settle=0) and stats.sent == 6


def _encap_flow_key(switch: OFSwitch, prefix: EidPrefix) -> Flow:
    return next(f for f in switch.flows() if f.cookie == cookie(K_ENCAP)
                and dict(f.match).get("ipv4_dst", ("",))[0] == str(prefix.network.network_address))


def test_a_poll_without_a_connected_bridge_says_so(shell):
    assert shell.app.poll_counters() is False
