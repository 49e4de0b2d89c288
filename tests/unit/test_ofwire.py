"""lisp_app.dataplane.ofwire writes the bytes os-ken writes: every flow the pipeline compiles (base
flows of an xTR, an ALT xTR and an MS/MR node; encapsulation flows for one and several locators,
IPv4 and IPv6 EIDs and RLOCs; negative entries) is encoded by both and compared byte for byte, and
so are their strict deletes, the pipeline's select groups (add, modify, delete), its meters and a
barrier. The bundle framing is compared with os-ken's ONF bundle messages the same way."""

from __future__ import annotations

from ipaddress import ip_address

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from lisp_app.dataplane.effects import LISP, UNDERLAY
from lisp_app.dataplane import ofwire
from lisp_app.shell import translate
from lisp_app.dataplane.flows import CopyField, Flow, Meter, Output, SetField
from lisp_app.dataplane.pipeline import (COOKIE_MASK, K_BASE, K_DECAP, K_DROP, K_ENCAP, K_HOST,
                                         K_NEGATIVE, cookie, kind_of)
from lisp_app.mapping.cache import CacheEntry
from lisp_app.protocol import Action, EidPrefix, Locator

from tests.xtrkit import alt_xtr, make_xtr, msmr


class FakeDatapath:
    ofproto = ofp
    ofproto_parser = parser
    id = 1


DP = FakeDatapath()


def osken_bytes(flow: Flow, xid: int) -> bytes:
    msg = translate.flow_mod(flow, DP)
    msg.set_xid(xid)
    msg.serialize()
    return bytes(msg.buf)


ENC = ofwire.Encoder()


def osken_msg_bytes(msg, xid: int) -> bytes:
    msg.set_xid(xid)
    msg.serialize()
    return bytes(msg.buf)


def corpus_xtr():
    xtr = make_xtr()
    now = 0.0
    statics = [
        ("[1000]10.9.0.0/16", [Locator(ip_address("198.51.100.1"), 1, 100)]),
        ("[1000]10.8.0.0/24", [Locator(ip_address("198.51.100.1"), 1, 70),
                               Locator(ip_address("198.51.100.2"), 1, 30)]),
        ("[1000]2001:db8:9::/48", [Locator(ip_address("198.51.100.3"), 1, 100)]),
        ("[7]10.7.0.1/32", [Locator(ip_address("198.51.100.4"), 2, 0)]),
    ]
    for prefix, locators in statics:
        xtr.add_static(EidPrefix.parse(prefix), tuple(locators), now)
    return xtr


def corpus() -> list[Flow]:
    flows = []
    xtr = corpus_xtr()
    for bridge in (LISP, UNDERLAY):
        _meters, bflows, _groups = xtr.desired(bridge)
        flows.extend(bflows)
    b = xtr.lisp_bridge
    for action in tuple(Action):
        entry = CacheEntry(EidPrefix.parse("[1000]10.66.0.0/16"), (), action=action, ttl=1)
        flows.extend(b.mapping_flows(entry, (), None)[0])
    alt, _rib, _ = alt_xtr()
    for bridge in (LISP, UNDERLAY):
        flows.extend(alt.desired(bridge)[1])
    node, _alt = msmr()
    for bridge in (LISP, UNDERLAY):
        flows.extend(node.desired(bridge)[1])
    flows.append(Flow(1, 5, (("tun_ipv6_dst", "2001:db8::1"),), cookie(K_HOST),
                      apply=(SetField("tun_ipv6_dst", "2001:db8::2"), Output(3)),
                      idle_timeout=300))
    return flows


# the flows whose packets mapstat counts: they report their final counts when they leave
COUNTED = {K_ENCAP, K_DECAP, K_HOST, K_NEGATIVE, K_DROP}


def test_every_pipeline_flow_encodes_as_os_ken_does():
    flows = corpus()
    assert len(flows) > 40
    for xid, flow in enumerate(flows, 1):
        flags = ofp.OFPFF_SEND_FLOW_REM if kind_of(flow.cookie) in COUNTED else 0
        assert ofwire.flow_flags(flow) == flags
        ours = ENC.flow_add(flow, xid)
        assert ours == osken_bytes(flow, xid), flow
        assert ENC.flow_add(flow, xid) is not None  # memoised path gives the same
        assert ofwire.Encoder().flow_add(flow, xid) == ours
    # the Nicira reg_move flows (ARP answered in the switch) are among them
    assert any(isinstance(a, CopyField) for f in flows for a in f.apply)


def test_every_pipeline_flow_deletes_as_os_ken_does():
    """The strict delete the shell sends for a stale or removed flow: our cookie and mask."""
    for xid, flow in enumerate(corpus(), 1):
        msg = parser.OFPFlowMod(
            DP, cookie=flow.cookie, cookie_mask=COOKIE_MASK, table_id=flow.table,
            command=ofp.OFPFC_DELETE_STRICT, priority=flow.priority, out_port=ofp.OFPP_ANY,
            out_group=ofp.OFPG_ANY, match=parser.OFPMatch(**flow.match_dict()))
        assert ENC.flow_delete_of(flow, xid) == osken_msg_bytes(msg, xid), flow


def osken_group_mod(command, group):
    buckets = [parser.OFPBucket(weight=b.weight, watch_port=ofp.OFPP_ANY,
                                watch_group=ofp.OFPG_ANY,
                                actions=translate.actions(b.actions))
               for b in group.buckets]
    return parser.OFPGroupMod(DP, command, ofp.OFPGT_SELECT, group.group_id, buckets)


def test_pipeline_groups_encode_as_os_ken_does():
    xtr = corpus_xtr()
    groups = xtr.desired(LISP)[2]
    assert groups and all(len(g.buckets) == 2 for g in groups)
    assert [b.weight for b in groups[0].buckets] == [70, 30]
    for command in (ofp.OFPGC_ADD, ofp.OFPGC_MODIFY):
        for group in groups:
            assert ENC.group_mod(command, group, 5) == osken_msg_bytes(
                osken_group_mod(command, group), 5)
    msg = parser.OFPGroupMod(DP, ofp.OFPGC_DELETE, ofp.OFPGT_SELECT, groups[0].group_id, [])
    assert ENC.group_delete(groups[0].group_id, 6) == osken_msg_bytes(msg, 6)


def test_pipeline_meters_encode_as_os_ken_does():
    meters = []
    for x in (make_xtr(), alt_xtr()[0], msmr()[0]):
        for bridge in (LISP, UNDERLAY):
            meters.extend(x.desired(bridge)[0])
    meters.append(Meter(9, 1000, burst=50))
    assert len(meters) >= 4
    for command in (ofp.OFPMC_ADD, ofp.OFPMC_MODIFY):
        for meter in meters:
            band = parser.OFPMeterBandDrop(rate=meter.rate_pps, burst_size=meter.burst)
            msg = parser.OFPMeterMod(DP, command, ofp.OFPMF_PKTPS, meter.meter_id, [band])
            assert ENC.meter_mod(command, meter, 8) == osken_msg_bytes(msg, 8)


def test_barrier_matches_os_ken():
    assert ofwire.barrier_request(3) == osken_msg_bytes(parser.OFPBarrierRequest(DP), 3)


@pytest.mark.parametrize("kind", sorted(COUNTED))
def test_aggregate_requests_match_os_ken(kind):
    request = parser.OFPAggregateStatsRequest(DP, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                              cookie(kind), 0xFFFFFFFFFFFFFFFF, parser.OFPMatch())
    assert ofwire.aggregate_request(77, cookie(kind)) == osken_msg_bytes(request, 77)
    masked = parser.OFPAggregateStatsRequest(DP, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                             cookie(kind), COOKIE_MASK, parser.OFPMatch())
    assert ofwire.aggregate_request(5, cookie(kind), COOKIE_MASK) == osken_msg_bytes(masked, 5)


def test_the_memos_are_the_encoders_own_and_bounded():
    enc = ofwire.Encoder()
    enc.MEMO_LIMIT = 4
    flows = [Flow(1, 10, (("eth_type", 0x800), ("ipv4_dst", f"10.0.0.{n}")), cookie(K_BASE),
                  apply=(Output(n),)) for n in range(1, 20)]
    for flow in flows:
        assert enc.flow_add(flow, 1) == osken_bytes(flow, 1)
    assert len(enc._tlvs) <= 4 and len(enc._instructions) <= 4
    assert not ofwire.Encoder()._tlvs  # a new encoder starts empty: no module-level state


def test_encapsulation_flows_are_all_supported():
    xtr = make_xtr()
    effects = xtr.add_static(EidPrefix.parse("[1000]10.9.0.0/16"),
                             (Locator(ip_address("198.51.100.1")),), 0.0)
    (change,) = effects
    for flow in change.add:
        assert ENC.flow_add(flow, 9) == osken_bytes(flow, 9)


def test_unknown_fields_and_actions_are_refused_not_guessed():
    with pytest.raises(ofwire.Unsupported):
        ENC.flow_add(Flow(0, 1, (("vlan_vid", 5),), 0), 1)
    with pytest.raises(ofwire.Unsupported):
        ENC.flow_add(Flow(0, 1, (), 0, apply=(object(),)), 1)
    with pytest.raises(ofwire.Unsupported):
        ENC.flow_add(Flow(0, 1, (), 0, apply=(SetField("tunnel_id", (1, 2)),)), 1)
    with pytest.raises(ofwire.Unsupported):
        ENC.flow_add(Flow(0, 1, (), 0, apply=(CopyField("vlan_vid", "reg0", 12),)), 1)


def test_bundle_framing_matches_os_ken():
    for ctype in (ofp.ONF_BCT_OPEN_REQUEST, ofp.ONF_BCT_COMMIT_REQUEST):
        msg = parser.ONFBundleCtrlMsg(DP, 7, ctype, ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED, [])
        msg.set_xid(11)
        msg.serialize()
        assert ofwire.bundle_control(11, 7, ctype) == bytes(msg.buf)
        assert ofwire.parse_bundle_control(bytes(msg.buf)) == (11, 7, ctype)
    flow = Flow(1, 1024, (("eth_type", 0x800), ("ipv4_dst", ("10.1.0.0", "255.255.0.0"))),
                cookie(2), apply=(Output(2),))
    inner = osken_bytes(flow, 12)
    fm = translate.flow_mod(flow, DP)
    add = parser.ONFBundleAddMsg(DP, 7, ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED, fm, [])
    add.set_xid(12)
    fm.set_xid(12)
    add.serialize()
    assert ofwire.bundle_add(inner, 7) == bytes(add.buf)
    assert ofwire.parse_bundle_control(inner) is None


def test_canonical_match_agrees_with_os_kens_round_trip():
    """The statistics poll and reconciliation key our flows by canonical_match(flow.match) and
    the switch's by canonical_match(parsed match): both must agree for every pipeline flow."""
    from lisp_app.dataplane.flows import canonical_match
    flows = corpus()
    for flow in flows:
        match = parser.OFPMatch(**flow.match_dict())
        buf = bytearray()
        match.serialize(buf, 0)
        parsed = parser.OFPMatch.parser(bytes(buf), 0)
        assert canonical_match(flow.match) == canonical_match(parsed.items()), flow
    # and it is not the identity: a full mask is dropped, a partial one kept
    assert canonical_match((("ipv4_dst", ("10.0.0.1", "255.255.255.255")),)) == (
        ("ipv4_dst", "10.0.0.1"),)
    assert canonical_match((("ipv4_dst", ("10.0.0.0", "255.0.0.0")),)) == (
        ("ipv4_dst", ("10.0.0.0", "255.0.0.0")),)


@pytest.mark.parametrize("in_port, out_port", [(ofp.OFPP_CONTROLLER, 7), (3, ofp.OFPP_TABLE)])
def test_packet_out_matches_os_ken(in_port, out_port):
    data = bytes(range(60))
    msg = parser.OFPPacketOut(DP, ofp.OFP_NO_BUFFER, in_port, [parser.OFPActionOutput(out_port, 0)],
                              data)
    msg.set_xid(77)
    msg.serialize()
    assert ofwire.encode_packet_out(77, in_port, out_port, data) == bytes(msg.buf)
