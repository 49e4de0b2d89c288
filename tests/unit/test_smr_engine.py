"""Solicit-Map-Requests (RFC 9301 section 6.1): an ETR whose mapping changes tells the ITRs that
asked for it, and those ITRs ask again and update their flows in place. Two real Xtr objects
(x1, ITR; x2, ETR) exchange the frames their packet-outs carry; no switch."""

from __future__ import annotations

import random
from ipaddress import ip_address

import pytest

from lisp_app.config import parse_config
from lisp_app.control.mapstat import MapStat
from lisp_app.control.smr import SmrSender
from lisp_app.dataplane import frames
from lisp_app.dataplane.effects import UNDERLAY
from lisp_app.dataplane.flows import SetField
from lisp_app.dataplane.pipeline import K_ENCAP, K_PUNT_CONTROL, cookie, kind_of
from lisp_app.node import Xtr
from lisp_app.protocol import (EidPrefix, EidRecord, InstanceIdAddress, Locator, MapRegister,
                               MapRequest, decode_control)
from tests.xtrkit import (CONFIG, LOCAL_MAC, UPLINK, apply, arp_reply, control_payloads,
                          learn_next_hop, make_xtr, miss, switch_with_base)

X2_CONFIG = """
role: xtr
instance_id: 1000
eid_prefixes: [{prefix: 10.2.0.0/24, ttl: 10, locators: [{rloc: 198.51.100.1}]}]
lisp_bridge: {datapath_id: 1, site_ports: [{name: site}]}
underlay: {datapath_id: 2, rloc: 198.51.100.1, next_hop: 198.51.100.254, mtu: 1500}
site_gateway: {ipv4: 10.2.0.1, mac: "02:00:00:00:00:01"}
map_request_targets: [192.0.2.1]
probing: {enabled: false}
"""
P2 = EidPrefix.parse("[1000]10.2.0.0/24")
X1_RLOC, X2_RLOC = ip_address("192.0.2.1"), ip_address("198.51.100.1")


def x2_node(extra: str = "") -> Xtr:
    xtr = Xtr(parse_config(X2_CONFIG + extra), random.Random(9))
    xtr.lisp_bridge_ready({"site": 1, "gpe": 2})
    xtr.underlay_bridge_ready({"uplink": UPLINK}, LOCAL_MAC)
    xtr.on_packet_in(UNDERLAY, cookie(0x15), UPLINK, 0,
                     arp_reply("198.51.100.254", "02:cc:00:00:00:fe", "198.51.100.1",
                               LOCAL_MAC), 0.0)
    return xtr


def deliver(effects, to: Xtr, now: float) -> list:
    """Hand the control messages among ``effects`` to the node they are addressed to."""
    out = []
    for f, _message in control_payloads(effects):
        frame = next(p.data for p in _outs(effects) if frames.parse_frame(p.data) == f)
        out += to.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0, frame, now)
    return out


def _outs(effects):
    return [e for e in effects if getattr(e, "bridge", None) == UNDERLAY and hasattr(e, "data")]


def tun_dst(switch) -> str:
    (flow,) = [f for f in switch.flows.values() if kind_of(f.cookie) == K_ENCAP]
    return next(a.value for a in flow.write if isinstance(a, SetField)
                and a.field == "tun_ipv4_dst")


def resolved_pair():
    """x1 has resolved x2's 10.2.0.0/24 through a Map-Request x2 answered."""
    x1, x2 = make_xtr(), x2_node()
    learn_next_hop(x1)
    switch = switch_with_base(x1)
    answer = deliver(miss(x1, "10.2.0.10", 0.0), x2, 0.1)
    apply(switch, deliver(answer, x1, 0.2))
    assert tun_dst(switch) == str(X2_RLOC)
    return x1, x2, switch


def test_a_changed_mapping_reaches_the_itr_that_asked_and_its_flow_follows():
    x1, x2, switch = resolved_pair()
    moved = (Locator(ip_address("198.51.100.2"), 1, 100),)
    effects = x2.set_local_locators(P2, moved, None, 5.0)
    ((f, smr),) = control_payloads(effects)
    assert (f.ip_src, f.ip_dst) == (X2_RLOC, X1_RLOC)
    assert isinstance(smr, MapRequest) and smr.smr and not smr.smr_invoked
    assert smr.source_eid == InstanceIdAddress(1000, ip_address("10.2.0.0"), 24)
    assert smr.records[0].prefix == EidPrefix.parse("[1000]10.1.0.10/32")  # the ITR's EID
    asked = deliver(effects, x1, 5.1)
    ((_f, request),) = control_payloads(asked)
    assert request.smr_invoked and request.records[0].prefix == P2
    apply(switch, deliver(deliver(asked, x2, 5.2), x1, 5.3))
    assert tun_dst(switch) == "198.51.100.2"  # in place: still one encapsulation flow
    assert x1.stats.smrs_received == 1 and x2.stats.smrs_sent == 1
    assert x2.database.covering(P2).locators[0].address == ip_address("198.51.100.2")


def test_an_smr_for_a_mapping_the_itr_does_not_hold_is_ignored_and_counted():
    x1 = make_xtr()
    learn_next_hop(x1)
    smr = MapRequest(5, (EidRecord.for_prefix(EidPrefix.parse("[1000]10.1.0.10/32")),),
                     (X2_RLOC,), source_eid=InstanceIdAddress(1000, ip_address("10.7.0.0"), 24),
                     smr=True)
    frame = frames.udp_frame("02:cc:00:00:00:fe", LOCAL_MAC, X2_RLOC, X1_RLOC, 4342, 4342,
                             smr.encode())
    assert x1.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0, frame, 1.0) == []
    assert x1.stats.smrs_received == 1 and x1.stats.smrs_ignored == 1
    assert x1.stats.requests_sent == 0


def test_smrs_twice_in_a_second_ask_once():
    x1, x2, _switch = resolved_pair()
    first = x2.set_local_locators(P2, (Locator(ip_address("198.51.100.2")),), None, 5.0)
    asked = deliver(first, x1, 5.1)
    again = x2.set_local_locators(P2, (Locator(ip_address("198.51.100.3")),), None, 5.3)
    assert control_payloads(deliver(again, x1, 5.4)) == []  # pending, and asked 0.3 s ago
    assert len(control_payloads(asked)) == 1 and x1.stats.smrs_ignored == 1


def test_only_itrs_that_asked_within_the_ttl_get_an_smr():
    x1, x2, _switch = resolved_pair()  # x1 asked at 0.1; the record's TTL is 10 minutes
    late = x2.set_local_locators(P2, (Locator(ip_address("198.51.100.2")),), None, 601.0)
    assert control_payloads(late) == []


def test_the_change_is_registered_at_once():
    x2 = x2_node("map_servers: [{address: 203.0.113.20, key: k, key_id: 1}]\n")
    x2.on_timer(0.0)  # the first registration
    effects = x2.set_local_locators(P2, (Locator(ip_address("198.51.100.2"), 1, 100),), 30,
                                    1.0)
    registers = [m for _f, m in control_payloads(effects) if isinstance(m, MapRegister)]
    (register,) = registers
    assert [str(l.address) for l in register.records[0].locators] == ["198.51.100.2"]
    assert register.records[0].ttl == 30


def test_bad_changes_are_refused_and_change_nothing():
    x2 = x2_node()
    with pytest.raises(LookupError, match="not one of this site's EID prefixes"):
        x2.set_local_locators(EidPrefix.parse("[1000]10.9.0.0/24"),
                              (Locator(ip_address("198.51.100.2")),), None, 1.0)
    itr_only = make_xtr(CONFIG.replace("role: xtr", "role: itr"))
    with pytest.raises(ValueError, match="etr or xtr"):
        itr_only.set_local_locators(EidPrefix.parse("[1000]10.1.0.0/24"),
                                    (Locator(ip_address("192.0.2.9")),), None, 1.0)
    assert x2.database.covering(P2).locators[0].address == X2_RLOC


def test_smrs_are_rate_limited_and_the_rest_follow():
    sender = SmrSender((X2_RLOC,), MapStat(), random.Random(1), rate=10)
    for n in range(25):
        request = MapRequest(n + 1, (EidRecord.for_prefix(P2),),
                             (ip_address(f"192.0.2.{n + 1}"),))
        sender.note_request(P2, request, 10, 0.0)
    assert sender.on_change(P2, 1.0) == 25
    first = sender.on_timer(1.0)
    assert len(first) == 10 and sender.queued() == 15
    assert 1.0 < sender.next_deadline() <= 1.11
    assert len(sender.on_timer(2.0)) == 10 and len(sender.on_timer(3.0)) == 5
    assert len({s.destination for s in first}) == 10


def test_probes_and_smrs_leave_no_note():
    sender = SmrSender((X2_RLOC,), MapStat(), random.Random(1))
    for flags in ({"probe": True}, {"smr": True}):
        sender.note_request(P2, MapRequest(1, (EidRecord.for_prefix(P2),), (X1_RLOC,),
                                           **flags), 10, 0.0)
    assert len(sender) == 0 and sender.on_change(P2, 1.0) == 0
    assert decode_control(MapRequest(1, (EidRecord.for_prefix(P2),), (X1_RLOC,),
                                     smr=True).encode()).smr


def test_the_underlay_punts_probes_to_a_new_local_locator():
    from lisp_app.dataplane.effects import FlowChange
    from tests.fakeswitch import FakeSwitch
    x2 = x2_node()
    probe = dict(in_port=UPLINK, eth_type=0x0800, ip_proto=17, ipv4_dst="198.51.100.2",
                 udp_dst=4342)
    assert FakeSwitch(x2.desired(UNDERLAY)[1]).run(probe).punts == []
    effects = x2.set_local_locators(P2, (Locator(ip_address("198.51.100.2")),), None, 1.0)
    (change,) = [e for e in effects if isinstance(e, FlowChange)]
    assert change.bridge == UNDERLAY and len(change.add) == 1
    sw = FakeSwitch(x2.desired(UNDERLAY)[1])  # and after a reconnect too
    assert [kind_of(c) for c, _p in sw.run(probe).punts] == [K_PUNT_CONTROL]
