"""``lispctl flows`` writes the switch's flows as ``ovs-ofctl -O OpenFlow13 dump-flows`` does.

Each flow is turned into the bytes of a flow-stats reply (our match and instructions, as the
switch sends them back), parsed by os-ken as the controller parses the switch's reply, and
written by lisp_app.shell.ofctl. The expected lines were printed by ``ovs-ofctl ofp-print`` for
the same bytes; where ovs-ofctl is installed, the last tests ask it again for every flow the
pipeline compiles.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from lisp_app.dataplane.flows import (OFPP_IN_PORT, OFPP_LOCAL, OFPP_NORMAL, Bucket,
                                      CheckPktLarger, CopyField, DecTtl, Flow, Group,
                                      GroupAction, Output, SetField, ToController, match)
from lisp_app.dataplane.ofwire import flow_flags
from lisp_app.dataplane.pipeline import (K_ENCAP, K_HOST, LispBridge, UnderlayBridge, cookie)
from lisp_app.mapping.cache import CacheEntry
from lisp_app.mapping.locators import Share
from lisp_app.protocol.addresses import EidPrefix
from lisp_app.protocol.records import Action, Locator
from lisp_app.shell import ofctl, translate

C = cookie(K_ENCAP)  # 0x4c49535002000000
HEAD = ("cookie=0x4c49535002000000, duration=3.456s, table=1, n_packets=7, n_bytes=700, "
        "send_flow_rem ")  # an encapsulation flow reports its final count when it goes


def stats_body(flow: Flow, duration=(3, 456_000_000), packets=7, nbytes=700, flags=None) -> bytes:
    """One ofp_flow_stats entry for ``flow``, as a switch would report it."""
    buf = bytearray()
    translate.match(flow).serialize(buf, 0)
    inst = translate.instruction_bytes(translate.instructions(flow))
    return struct.pack("!HBxIIHHHH4xQQQ", 48 + len(buf) + len(inst), flow.table, *duration,
                       flow.priority, flow.idle_timeout, flow.hard_timeout,
                       flow_flags(flow) if flags is None else flags, flow.cookie, packets,
                       nbytes) + bytes(buf) + inst


def line(flow: Flow, **kw) -> str:
    return ofctl.flow_line(parser.OFPFlowStats.parser(stats_body(flow, **kw), 0))


def actions_of(flow: Flow) -> str:
    return line(flow).split(" actions=", 1)[1]


def match_of(flow: Flow) -> str:
    return line(flow)[len(HEAD):].split(" actions=", 1)[0]


# -- the line's head ----------------------------------------------------------------------------

def test_head_cookie_duration_table_counters_and_priority():
    assert line(Flow(1, 0, (), C)) == HEAD + "priority=0 actions=drop"


@pytest.mark.parametrize("duration, text", [((3, 0), "3s"), ((3, 456_000_000), "3.456s"),
                                            ((0, 1_000_000), "0.001s"),
                                            ((12, 123_456_700), "12.1234567s")])
def test_duration_as_ovs_writes_it(duration, text):
    assert f"duration={text}, " in line(Flow(1, 0, (), C), duration=duration)


def test_timeouts_and_flags_come_before_the_match():
    host = Flow(4, 1000, match(eth_type=0x800, ipv4_dst="10.1.0.10"), cookie(K_HOST),
                apply=(Output(1),), idle_timeout=300, hard_timeout=600)
    assert line(host).endswith(", idle_timeout=300, hard_timeout=600, send_flow_rem "
                               "priority=1000,ip,nw_dst=10.1.0.10 actions=output:1")
    assert "check_overlap reset_counts priority=5 " in line(
        Flow(1, 5, (), C), flags=ofp.OFPFF_CHECK_OVERLAP | ofp.OFPFF_RESET_COUNTS)


def test_the_default_priority_and_an_empty_match_leave_nothing_before_actions():
    assert line(Flow(1, 0x8000, (), C)) == HEAD + "actions=drop"
    assert line(Flow(1, 0x8000, match(in_port=3), C)) == HEAD + "in_port=3 actions=drop"


# -- matches ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, text", [
    ({"eth_type": 0x800}, "ip"),
    ({"eth_type": 0x86DD}, "ipv6"),
    ({"eth_type": 0x806}, "arp"),
    ({"eth_type": 0x88CC}, "dl_type=0x88cc"),
    ({"eth_type": 0x800, "ip_proto": 17, "udp_dst": 4342}, "udp,tp_dst=4342"),
    ({"eth_type": 0x86DD, "ip_proto": 17, "udp_dst": 4342}, "udp6,tp_dst=4342"),
    ({"eth_type": 0x800, "ip_proto": 6, "tcp_src": 179}, "tcp,tp_src=179"),
    ({"eth_type": 0x800, "ip_proto": 47}, "ip,nw_proto=47"),
    ({"eth_type": 0x800, "ipv4_dst": ("153.16.36.0", "255.255.255.0")},
     "ip,nw_dst=153.16.36.0/24"),
    ({"eth_type": 0x800, "ipv4_dst": ("10.0.0.0", "255.0.255.0")}, "ip,nw_dst=10.0.0.0/255.0.255.0"),
    ({"eth_type": 0x800, "ipv4_dst": "10.1.0.10"}, "ip,nw_dst=10.1.0.10"),
    ({"eth_type": 0x800, "ipv4_src": "10.1.0.10"}, "ip,nw_src=10.1.0.10"),
    ({"eth_type": 0x86DD, "ipv6_dst": ("2001:db8:2::", "ffff:ffff:ffff::")},
     "ipv6,ipv6_dst=2001:db8:2::/48"),
    ({"metadata": (1000, 0xFFFFFF)}, "metadata=0x3e8/0xffffff"),
    ({"metadata": (0, 0xFFFFFF)}, "metadata=0/0xffffff"),
    ({"tunnel_id": 1000}, "tun_id=0x3e8"),
    ({"tunnel_id": 0}, "tun_id=0"),
    ({"reg0": (1, 1)}, "reg0=0x1/0x1"),
    ({"in_port": 3}, "in_port=3"),
    ({"in_port": OFPP_LOCAL}, "in_port=LOCAL"),
    ({"eth_src": "02:00:00:00:00:01"}, "dl_src=02:00:00:00:00:01"),
    ({"eth_type": 0x806, "arp_op": 1, "arp_tpa": "10.1.0.1"}, "arp,arp_tpa=10.1.0.1,arp_op=1"),
    ({"eth_type": 0x86DD, "ip_proto": 58, "icmpv6_type": 135,
      "ipv6_nd_target": "2001:db8:1::1"}, "icmp6,icmp_type=135,nd_target=2001:db8:1::1"),
    ({"eth_type": 0x86DD, "ip_proto": 58, "icmpv6_type": 136, "ipv6_dst": "2001:db8:1::1"},
     "icmp6,ipv6_dst=2001:db8:1::1,icmp_type=136"),
    # OVS's order, whatever order the switch's OXM had
    ({"udp_dst": 4341, "ipv4_dst": ("10.1.0.0", "255.255.255.0"), "ip_proto": 17,
      "eth_type": 0x800, "in_port": 7, "metadata": (5, 0xFFFFFF), "tunnel_id": 5, "reg0": 1},
     "udp,reg0=0x1,tun_id=0x5,metadata=0x5/0xffffff,in_port=7,nw_dst=10.1.0.0/24,tp_dst=4341"),
])
def test_match_fields(fields, text):
    assert match_of(Flow(1, 2024, match(**fields), C)) == f"priority=2024,{text}"


# -- actions and instructions -------------------------------------------------------------------

@pytest.mark.parametrize("acts, text", [
    ((), "drop"),
    ((Output(3),), "output:3"),
    ((ToController(),), "CONTROLLER:65535"),
    ((ToController(128),), "CONTROLLER:128"),
    ((Output(OFPP_IN_PORT),), "IN_PORT"),
    ((Output(OFPP_NORMAL),), "NORMAL"),
    ((Output(OFPP_LOCAL),), "LOCAL"),
    ((GroupAction(9),), "group:9"),
    ((DecTtl(),), "dec_ttl"),
    ((SetField("tunnel_id", 1000),), "set_field:0x3e8->tun_id"),
    ((SetField("tunnel_id", 0),), "set_field:0->tun_id"),
    ((SetField("tun_ipv4_dst", "198.51.100.2"),), "set_field:198.51.100.2->tun_dst"),
    ((SetField("tun_ipv6_dst", "2001:db8:ff::2"),), "set_field:2001:db8:ff::2->tun_ipv6_dst"),
    ((SetField("eth_src", "02:4C:49:53:50:01"),), "set_field:02:4c:49:53:50:01->eth_src"),
    ((SetField("arp_op", 2),), "set_field:2->arp_op"),
    ((SetField("arp_spa", "10.1.0.1"),), "set_field:10.1.0.1->arp_spa"),
    ((CopyField("eth_src", "eth_dst", 48),), "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]"),
    ((CopyField("arp_sha", "arp_tha", 48),), "move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]"),
    ((CopyField("arp_spa", "arp_tpa", 32),), "move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]"),
    ((CheckPktLarger(1464),), "check_pkt_larger(1464)->NXM_NX_REG0[0]"),
    ((CheckPktLarger(1400, reg=1, bit=3),), "check_pkt_larger(1400)->NXM_NX_REG1[3]"),
    ((ToController(), Output(OFPP_NORMAL)), "CONTROLLER:65535,NORMAL"),
])
def test_apply_actions(acts, text):
    assert actions_of(Flow(1, 5, (), C, apply=acts)) == text


def test_a_move_between_fields_the_switch_names_by_nxm_header():
    """OVS reports our OXM reg_move fields by their NXM headers; os-ken calls those
    eth_src_nxm etc."""
    moves = [parser.NXActionRegMove("eth_src_nxm", "eth_dst_nxm", 48),
             parser.NXActionRegMove("arp_spa_nxm", "arp_tpa_nxm", 32),
             parser.NXActionRegMove("reg0", "reg1", 8, src_ofs=8, dst_ofs=0),
             parser.NXActionRegMove("reg0", "reg1", 1, src_ofs=3, dst_ofs=0)]
    assert [ofctl.action_text(m) for m in moves] == [
        "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]", "move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]",
        "move:NXM_NX_REG0[8..15]->NXM_NX_REG1[0..7]", "move:NXM_NX_REG0[3]->NXM_NX_REG1[0]"]


def test_instructions_in_openflow_order():
    flow = Flow(1, 2024, (), C, meter=1, apply=(CheckPktLarger(1478),), clear=True,
                write=(DecTtl(), SetField("tunnel_id", 1000),
                       SetField("tun_ipv4_dst", "198.51.100.2"), Output(3)),
                metadata=(1000, 0xFFFFFF), goto=2)
    assert actions_of(flow) == (
        "meter:1,check_pkt_larger(1478)->NXM_NX_REG0[0],clear_actions,"
        "write_actions(dec_ttl,set_field:0x3e8->tun_id,set_field:198.51.100.2->tun_dst,"
        "output:3),write_metadata:0x3e8/0xffffff,goto_table:2")
    assert actions_of(Flow(0, 800, (), C, metadata=(0, 0xFFFFFF), goto=1)) == \
        "write_metadata:0/0xffffff,goto_table:1"
    assert actions_of(Flow(0, 800, (), C, metadata=(7, 2 ** 64 - 1))) == "write_metadata:0x7"


def test_a_select_group_as_dump_groups_writes_it():
    group = Group(9, (Bucket(70, (SetField("tunnel_id", 0), SetField("tun_ipv4_dst", "198.51.100.2"),
                                  Output(3))),
                      Bucket(30, (SetField("tunnel_id", 0),
                                  SetField("tun_ipv6_dst", "2001:db8:ff::2"), Output(3)))))
    assert ofctl.group_line(_group_desc(group)) == (
        "group_id=9,type=select,bucket=weight:70,actions=set_field:0->tun_id,"
        "set_field:198.51.100.2->tun_dst,output:3,bucket=weight:30,actions=set_field:0->tun_id,"
        "set_field:2001:db8:ff::2->tun_ipv6_dst,output:3")


def _group_desc(group: Group):
    mod = translate.group_mod(ofp.OFPGC_ADD, group)
    mod.set_xid(1)
    mod.serialize()
    buckets = bytes(mod.buf[16:])
    body = struct.pack("!HBxI", 8 + len(buckets), ofp.OFPGT_SELECT, group.group_id) + buckets
    return parser.OFPGroupDescStats.parser(body, 0)


# -- every flow the pipeline compiles, checked by ovs-ofctl itself ------------------------------

def pipeline_flows() -> tuple[list[Flow], list[Group]]:
    b = LispBridge(site_ports=((1, 1000), (2, 0)), gpe_port=3,
                   local_prefixes=(EidPrefix.parse("[1000]10.1.0.0/24"),
                                   EidPrefix.parse("[1000]2001:db8:1::/64")),
                   gateway_mac="02:00:00:00:00:01", gateway_ipv4=IPv4Address("10.1.0.1"),
                   gateway_ipv6=IPv6Address("2001:db8:1::1"), native_port=5, alt_port=6,
                   alt_mac="02:00:00:00:00:06", alt_address=IPv4Address("172.16.0.1"),
                   alt_peers=((IPv4Address("172.16.0.2"), 7),), alt_last_hop=True)
    u = UnderlayBridge(rloc=IPv4Address("198.51.100.1"), rloc_ipv6=IPv6Address("2001:db8:ff::1"),
                       other_rlocs=(IPv4Address("198.51.100.9"),), native_port=4,
                       local_mac="02:00:00:00:00:04",
                       native_prefixes=(EidPrefix.parse("10.1.0.0/24"),),
                       data_probe_prefixes=(EidPrefix.parse("10.1.0.0/24"),))
    flows = b.base_flows() + u.base_flows()
    flows += [b.host_flow(1000, IPv4Address("10.1.0.10"), "02:00:00:00:00:10", 1),
              b.host_flow(0, IPv6Address("2001:db8:1::10"), "02:00:00:00:00:10", 1)]
    rloc4, rloc6 = ip_address("198.51.100.2"), ip_address("2001:db8:ff::2")
    loc = (Locator(rloc4, 1, 100),)
    groups = []
    for prefix, shares, gid in (("[1000]10.2.0.0/24", (Share(rloc4, 100),), None),
                                ("[0]10.3.0.0/16", (Share(rloc4, 70), Share(rloc6, 30)), 9),
                                ("[1000]2001:db8:2::/48", (Share(rloc6, 100),), None)):
        more, group = b.mapping_flows(CacheEntry(EidPrefix.parse(prefix), loc), shares, gid)
        flows += more
        groups += [group] if group else []
    for action in (Action.NO_ACTION, Action.NATIVELY_FORWARD, Action.SEND_MAP_REQUEST):
        flows += b.mapping_flows(CacheEntry(EidPrefix.parse("[1000]10.9.0.0/16"), (), action),
                                 (), None)[0]
    return flows, groups


OVS_OFCTL = shutil.which("ovs-ofctl")
needs_ovs = pytest.mark.skipif(OVS_OFCTL is None, reason="ovs-ofctl is not installed (the "
                               "expected lines above were taken from it)")


def _ofp_print(multipart_type: int, body: bytes) -> str:
    msg = struct.pack("!BBHIHH4x", 4, ofp.OFPT_MULTIPART_REPLY, 16 + len(body), 1,
                      multipart_type, 0) + body
    out = subprocess.run([OVS_OFCTL, "ofp-print", msg.hex()], capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()[1].strip()


@needs_ovs
def test_every_pipeline_flow_is_written_as_ovs_ofctl_writes_it():
    flows, _ = pipeline_flows()
    assert len(flows) > 50
    for flow in flows:
        body = stats_body(flow)
        assert line(flow) == _ofp_print(ofp.OFPMP_FLOW, body), flow


@needs_ovs
def test_every_pipeline_group_is_written_as_ovs_ofctl_writes_it():
    _, groups = pipeline_flows()
    for group in groups:
        desc = _group_desc(group)
        mod = translate.group_mod(ofp.OFPGC_ADD, group)
        mod.set_xid(1)
        mod.serialize()
        buckets = bytes(mod.buf[16:])
        body = struct.pack("!HBxI", 8 + len(buckets), ofp.OFPGT_SELECT, group.group_id) + buckets
        assert ofctl.group_line(desc) == _ofp_print(ofp.OFPMP_GROUP_DESC, body)
