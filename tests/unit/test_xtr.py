"""The xTR orchestrator, driven with real frames and checked against the flow-table simulator:
packet-ins in, packet-outs and flow changes out, and the map-cache never disagreeing with the flows.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lisp_app.node import Xtr
from lisp_app.dataplane.effects import LISP, UNDERLAY, FlowChange
from lisp_app.dataplane.flows import OFPP_TABLE
from lisp_app.dataplane import frames
from lisp_app.dataplane.pipeline import (K_ENCAP, K_NEGATIVE, K_PUNT_CONTROL, K_PUNT_DATA_PROBE,
                                         K_PUNT_MISS,
                                         K_PUNT_NEIGHBOR, K_PUNT_RESOLVE, K_PUNT_TOO_BIG, cookie,
                                         kind_of)
from lisp_app.mapping.locators import select_shares
from lisp_app.protocol import (Action, DataHeader, EidPrefix, EidRecord, Locator, MappingRecord,
                               MapReply, MapRequest, decode_control, decode_data_header)
from tests.fakeswitch import FakeSwitch
from tests.xtrkit import (CONFIG, GPE, GW_MAC, HOST_MAC, LOCAL_MAC, ROUTER_MAC, SITE, UPLINK,
                          alt_xtr, apply_alt, arp_reply, control_payloads, host_frame,
                          apply, learn_next_hop, make_xtr, miss, msmr, outs, switch_with_base,
                          underlay_in)

def test_first_miss_resolves_the_next_hop_then_sends_the_map_request():
    xtr = make_xtr()
    effects = miss(xtr, "10.2.0.10")
    (arp,) = outs(effects, UNDERLAY)
    f = frames.parse_frame(arp.data)
    assert (f.arp_op, str(f.arp_tpa), arp.out_port) == (1, "192.0.2.254", UPLINK)
    sent = control_payloads(learn_next_hop(xtr))
    (frame, request), = sent
    assert isinstance(request, MapRequest)
    assert (str(frame.ip_src), str(frame.ip_dst)) == ("192.0.2.1", "198.51.100.1")
    assert (frame.eth_src, frame.eth_dst) == (LOCAL_MAC, ROUTER_MAC)
    assert request.records[0].prefix == EidPrefix.parse("[1000]10.2.0.10/32")


def test_reply_installs_flows_and_reinjects_the_held_packet_through_the_pipeline():
    xtr = make_xtr()
    learn_next_hop(xtr)
    (_f, request), = control_payloads(miss(xtr, "10.2.0.10"))
    rec = MappingRecord.for_prefix(EidPrefix.parse("[1000]10.2.0.0/24"),
                                   locators=(Locator(ip_address("198.51.100.1")),), ttl=10)
    effects = xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                               underlay_in(MapReply(request.nonce, (rec,)).encode()), 1.0)
    changes = [e for e in effects if isinstance(e, FlowChange)]
    assert [kind_of(f.cookie) for f in changes[0].add] == [K_ENCAP]
    (reinject,) = outs(effects, LISP)
    assert (reinject.out_port, reinject.in_port) == (OFPP_TABLE, SITE)
    assert reinject.data == host_frame("10.2.0.10")


def test_etr_answers_a_map_request_to_the_requests_source_port():
    xtr = make_xtr()
    learn_next_hop(xtr)
    req = MapRequest(7, (EidRecord.for_prefix(EidPrefix.parse("[1000]10.1.0.5/32")),),
                     (ip_address("198.51.100.1"),))
    effects = xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                               underlay_in(req.encode(), sport=51000), 0.0)
    (frame, reply), = control_payloads(effects)
    assert isinstance(reply, MapReply) and reply.nonce == 7
    assert (frame.sport, frame.dport, str(frame.ip_dst)) == (4342, 51000, "198.51.100.1")
    assert reply.records[0].ttl == 5 and reply.records[0].authoritative


def test_malformed_control_and_frames_are_counted_not_raised():
    xtr = make_xtr()
    assert xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                            underlay_in(b"\x10\x00"), 0.0) == []
    assert xtr.on_packet_in(LISP, cookie(K_PUNT_MISS), SITE, 1000, b"\x00\x01", 0.0) == []
    assert xtr.stats.control_malformed == 1 and xtr.stats.bad_header == 1


def test_too_big_gets_icmp_with_the_inner_mtu():
    xtr = make_xtr()
    big = host_frame("10.2.0.10", size=1500)
    (out,) = xtr.on_packet_in(LISP, cookie(K_PUNT_TOO_BIG), SITE, 1000, big, 0.0)
    f = frames.parse_frame(out.data)
    icmp = out.data[f.ip_offset + 20:]
    assert (icmp[0], icmp[1], int.from_bytes(icmp[6:8], "big")) == (3, 4, 1464)
    assert (str(f.ip_dst), f.eth_dst, out.out_port) == ("10.1.0.10", HOST_MAC, SITE)


def test_unknown_local_host_is_asked_for_and_its_packets_delivered_once_it_answers():
    xtr = make_xtr()
    decapped = frames.udp_frame("00:00:00:00:00:00", "00:00:00:00:00:00", ip_address("10.2.0.10"),
                                ip_address("10.1.0.20"), 1, 2, b"hello")
    (ask,) = xtr.on_packet_in(LISP, cookie(K_PUNT_RESOLVE), GPE, 1000, decapped, 0.0)
    f = frames.parse_frame(ask.data)
    assert (f.arp_op, str(f.arp_tpa), str(f.arp_spa), ask.out_port) == (1, "10.1.0.20",
                                                                        "10.1.0.1", SITE)
    effects = xtr.on_packet_in(LISP, cookie(K_PUNT_NEIGHBOR), SITE, 0,
                               arp_reply("10.1.0.20", HOST_MAC, "10.1.0.1", GW_MAC), 0.1)
    (change,) = [e for e in effects if isinstance(e, FlowChange)]
    assert change.add[0].apply[1].value == HOST_MAC
    (delivered,) = outs(effects, LISP)
    g = frames.parse_frame(delivered.data)
    assert (g.eth_dst, g.eth_src, delivered.out_port) == (HOST_MAC, GW_MAC, SITE)
    assert delivered.data[12:] == decapped[12:]


def test_neighbour_solicitation_for_the_gateway_is_answered():
    xtr = make_xtr()
    ns = frames.neighbor_solicitation(HOST_MAC, ip_address("2001:db8:1::10"),
                                      ip_address("2001:db8:1::1"))
    effects = xtr.on_packet_in(LISP, cookie(K_PUNT_NEIGHBOR), SITE, 0, ns, 0.0)
    (na,) = outs(effects, LISP)
    f = frames.parse_frame(na.data)
    assert (f.icmpv6_type, str(f.nd_target), f.nd_lladdr) == (136, "2001:db8:1::1", GW_MAC)
    assert (1000, ip_address("2001:db8:1::10")) in xtr.site.hosts


# -- the map-cache and the flows never disagree ------------------------------------------------

PREFIXES = ["[1000]10.2.0.0/24", "[1000]10.2.0.0/16", "[1000]10.3.0.0/24",
            "[1000]2001:db8:2::/48"]
RLOCS = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]

locator = st.builds(lambda r, p, w, up: Locator(ip_address(r), p, w, reachable=up),
                    st.sampled_from(RLOCS), st.sampled_from([1, 2, 255]),
                    st.integers(0, 100), st.booleans())
step = st.one_of(
    st.tuples(st.just("miss"), st.sampled_from(PREFIXES)),
    st.tuples(st.just("reply"), st.sampled_from(PREFIXES),
              st.lists(locator, max_size=3, unique_by=lambda l: l.address),
              st.sampled_from([Action.NO_ACTION, Action.DROP_NO_REASON,
                               Action.NATIVELY_FORWARD, Action.SEND_MAP_REQUEST]),
              st.integers(1, 3)),
    st.tuples(st.just("static"), st.sampled_from(PREFIXES),
              st.lists(locator, min_size=1, max_size=3, unique_by=lambda l: l.address)),
    st.tuples(st.just("delete"), st.sampled_from(PREFIXES)),
    st.tuples(st.just("traffic"), st.sampled_from(PREFIXES)),
    st.tuples(st.just("time"), st.integers(1, 200)),
)



def expected_flows(xtr: Xtr) -> dict:
    flows = {}
    for entry in xtr.cache:
        compiled, _group = xtr.lisp_bridge.mapping_flows(
            entry, select_shares(entry.locators), xtr.group_ids().get(entry.prefix))
        flows.update({f.key: f for f in compiled})
    return flows


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=25))
def test_map_cache_and_flows_never_disagree(steps):
    xtr = make_xtr()
    learn_next_hop(xtr)
    switch = FakeSwitch()
    meters, base, groups = xtr.desired(LISP)
    switch.install(base, groups)
    now = 0.0
    for op in steps:
        if op[0] == "miss":
            host = EidPrefix.parse(op[1]).network.network_address + 1
            src = "10.1.0.10" if host.version == 4 else "2001:db8:1::10"
            effects = miss(xtr, str(host), now, src)
        elif op[0] == "reply":
            _, text, locs, action, ttl = op
            prefix = EidPrefix.parse(text)
            pending = next((p for p in xtr.itr.pending.values() if prefix.contains(p.prefix)),
                           None)
            if pending is None:
                continue
            rec = MappingRecord.for_prefix(prefix, locators=tuple(locs), ttl=ttl,
                                           action=action if not locs else Action.NO_ACTION)
            effects = xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                                       underlay_in(MapReply(pending.nonce, (rec,)).encode()), now)
        elif op[0] == "static":
            effects = xtr.add_static(EidPrefix.parse(op[1]), tuple(op[2]), now)
        elif op[0] == "delete":
            effects = xtr.remove_mapping(EidPrefix.parse(op[1]), now)
        elif op[0] == "traffic":
            xtr.itr.note_traffic(EidPrefix.parse(op[1]), now)
            continue
        else:
            now += op[1]
            effects = xtr.on_timer(now)
        apply(switch, effects)
        mapping_flows = {k: f for k, f in switch.flows.items()
                         if kind_of(f.cookie) in (K_ENCAP, K_NEGATIVE)
                         or (kind_of(f.cookie) == K_PUNT_MISS and f.priority > 0)}
        assert mapping_flows == expected_flows(xtr)
        used = {a.group_id for f in switch.flows.values() for a in f.write
                if hasattr(a, "group_id")}
        assert used == set(switch.groups), "every group is used and every used group exists"
        for entry in xtr.cache:
            probe = entry.prefix.network.network_address + 1
            shares = select_shares(entry.locators)
            result = switch.run(dict(in_port=SITE, length=100, ttl=64,
                                     **({"eth_type": 0x0800, "ipv4_src": "10.1.0.10",
                                         "ipv4_dst": str(probe)} if probe.version == 4 else
                                        {"eth_type": 0x86DD, "ipv6_src": "2001:db8:1::10",
                                         "ipv6_dst": str(probe)})))
            hit = xtr.cache.lookup(1000, probe)
            if hit is not entry:
                continue  # a more specific entry covers this address
            if shares:
                assert result.outputs and result.outputs[0][1]["tun_ipv4_dst"] in {
                    str(s.rloc) for s in shares}
            elif entry.action == Action.SEND_MAP_REQUEST:
                assert [kind_of(c) for c, _ in result.punts] == [K_PUNT_MISS]
            else:
                assert not result.outputs and not result.punts


def test_two_locators_then_one_frees_the_group_and_then_none_keeps_a_drop_flow():
    xtr = make_xtr()
    switch = switch_with_base(xtr)
    prefix = EidPrefix.parse("[1000]10.2.0.0/24")
    two = (Locator(ip_address(RLOCS[0]), 1, 50), Locator(ip_address(RLOCS[1]), 1, 50))
    apply(switch, xtr.add_static(prefix, two, 0.0))
    assert len(switch.groups) == 1
    apply(switch, xtr.add_static(prefix, two[:1], 1.0))
    assert switch.groups == {} and xtr.group_ids() == {}
    apply(switch, xtr.add_static(prefix, (Locator(ip_address(RLOCS[0]), 255, 0),), 2.0))
    (flow,) = [f for f in switch.flows.values() if kind_of(f.cookie) in (K_ENCAP, K_NEGATIVE)]
    assert kind_of(flow.cookie) == K_NEGATIVE


def test_refreshed_entry_answered_with_send_map_request_turns_into_a_miss_punt():
    xtr = make_xtr()
    learn_next_hop(xtr)
    switch = switch_with_base(xtr)
    (_f, request), = control_payloads(miss(xtr, "10.2.0.10"))
    prefix = EidPrefix.parse("[1000]10.2.0.0/24")
    rec = MappingRecord.for_prefix(prefix, locators=(Locator(ip_address(RLOCS[0])),), ttl=2)
    apply(switch, xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                                   underlay_in(MapReply(request.nonce, (rec,)).encode()), 0.0))
    xtr.itr.note_traffic(prefix, 50.0)
    (_f, refresh), = control_payloads(xtr.on_timer(60.0))
    negative = MappingRecord.for_prefix(prefix, ttl=1, action=Action.SEND_MAP_REQUEST)
    apply(switch, xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                                   underlay_in(MapReply(refresh.nonce, (negative,)).encode()),
                                   61.0))
    (flow,) = [f for f in switch.flows.values() if kind_of(f.cookie) in (K_ENCAP, K_NEGATIVE,
                                                                         K_PUNT_MISS)
               and f.priority > 0]
    assert kind_of(flow.cookie) == K_PUNT_MISS  # the encapsulation flow became a miss punt
    assert xtr.cache.get(prefix).action == Action.SEND_MAP_REQUEST


PROBE_CONFIG = CONFIG.replace("map_request_targets", "data_probes: true\nmap_request_targets")


def test_itr_data_probe_is_the_packet_encapsulated_towards_its_own_destination():
    xtr = make_xtr(PROBE_CONFIG)
    learn_next_hop(xtr)
    packet = host_frame("10.2.0.10")
    (out,) = xtr.on_packet_in(LISP, cookie(K_PUNT_MISS), SITE, 1000, packet, 0.0)
    f = frames.parse_frame(out.data)
    assert (out.bridge, out.out_port, f.dport) == (UNDERLAY, UPLINK, 4341)
    assert (str(f.ip_src), str(f.ip_dst)) == ("192.0.2.1", "10.2.0.10")
    header, at = decode_data_header(out.data, f.payload_offset)
    assert header.instance_id == 1000 and header.nonce is not None
    assert out.data[at:] == packet[14:]


def test_etr_answers_a_data_probe_and_delivers_its_packet():
    xtr = make_xtr()
    learn_next_hop(xtr)
    xtr.on_packet_in(LISP, cookie(K_PUNT_NEIGHBOR), SITE, 0,
                     arp_reply("10.1.0.10", HOST_MAC, "10.1.0.1", GW_MAC), 0.0)
    inner = host_frame("10.1.0.10", src="10.2.0.20")[14:]
    probe = frames.udp_frame(ROUTER_MAC, LOCAL_MAC, ip_address("198.51.100.1"),
                             ip_address("10.1.0.10"), 50000, 4341,
                             DataHeader(instance_id=1000, nonce=0xABCDE).encode() + inner)
    effects = xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_DATA_PROBE), UPLINK, 0, probe, 0.0)
    (frame, reply), = control_payloads(effects)
    assert isinstance(reply, MapReply) and reply.nonce == 0xABCDE
    assert str(frame.ip_dst) == "198.51.100.1"
    assert reply.records[0].prefix == EidPrefix.parse("[1000]10.1.0.0/24")
    (delivered,) = outs(effects, LISP)
    assert delivered.out_port == SITE and delivered.data[14:] == inner
    assert xtr.stats.data_probes_received == 1


def test_etr_ignores_a_data_packet_whose_outer_and_inner_destinations_differ():
    xtr = make_xtr()
    inner = host_frame("10.1.0.99", src="10.2.0.20")[14:]
    probe = frames.udp_frame(ROUTER_MAC, LOCAL_MAC, ip_address("198.51.100.1"),
                             ip_address("10.1.0.10"), 50000, 4341,
                             DataHeader(instance_id=1000, nonce=1).encode() + inner)
    assert xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_DATA_PROBE), UPLINK, 0, probe, 0.0) == []
    assert xtr.stats.bad_header == 1


def test_ipv6_locators_are_used_only_with_an_ipv6_rloc():
    prefix = EidPrefix.parse("[1000]10.2.0.0/24")
    locs = (Locator(ip_address("2001:db8:ff02::1"), 1, 100),
            Locator(ip_address("198.51.100.1"), 2, 100))
    v4_only = make_xtr()
    (change,) = v4_only.add_static(prefix, locs, 0.0)
    assert change.add[0].write[-2].value == "198.51.100.1"
    dual = make_xtr(CONFIG.replace("mtu: 1500", "mtu: 1500, rloc_ipv6: 2001:db8:ff01::1, "
                                                "next_hop_ipv6: 2001:db8:ff01::254"))
    (change,) = dual.add_static(prefix, locs, 0.0)
    assert change.add[0].write[-2].field == "tun_ipv6_dst"


def test_too_big_reports_the_mtu_of_the_mappings_locator_family():
    """An IPv6 locator costs 56 bytes of headers, not 36: ICMP says 1444 for its mapping (the
    flow's check_pkt_larger limit), and still 1464 where the mapping uses IPv4."""
    dual = make_xtr(CONFIG.replace("mtu: 1500", "mtu: 1500, rloc_ipv6: 2001:db8:ff01::1, "
                                                "next_hop_ipv6: 2001:db8:ff01::254"))
    dual.add_static(EidPrefix.parse("[1000]10.2.0.0/24"),
                    (Locator(ip_address("2001:db8:ff02::1")),), 0.0)
    dual.add_static(EidPrefix.parse("[1000]10.3.0.0/24"),
                    (Locator(ip_address("198.51.100.1")),), 0.0)
    for dst, mtu in (("10.2.0.10", 1444), ("10.3.0.10", 1464)):
        (out,) = dual.on_packet_in(LISP, cookie(K_PUNT_TOO_BIG), SITE, 1000,
                                   host_frame(dst, size=1500), 0.0)
        f = frames.parse_frame(out.data)
        icmp = out.data[f.ip_offset + 20:]
        assert (icmp[0], icmp[1], int.from_bytes(icmp[6:8], "big")) == (3, 4, mtu)


def test_warming_the_underlay_resolves_both_next_hops():
    xtr = make_xtr(CONFIG.replace("mtu: 1500", "mtu: 1500, rloc_ipv6: 2001:db8:ff01::1, "
                                  "next_hop_ipv6: 2001:db8:ff01::254"))
    arp, ns = (frames.parse_frame(o.data) for o in xtr.warm_underlay(0.0))
    assert (arp.arp_op, str(arp.arp_tpa)) == (1, "192.0.2.254")
    assert (ns.icmpv6_type, str(ns.nd_target), str(ns.ip_src)) == (135, "2001:db8:ff01::254",
                                                                   "2001:db8:ff01::1")


def test_map_requests_go_into_the_gre_port_the_alt_rib_chooses():
    xtr, rib, AltRoute = alt_xtr()
    assert miss(xtr, "10.2.0.10") == [] and xtr.stats.alt_no_route == 1
    rib.update(AltRoute(ip_network("0.0.0.0/0"), "100.64.254.168", "100.64.254.168"))
    (out,) = miss(xtr, "10.3.0.10")
    f = frames.parse_frame(out.data)
    assert (out.bridge, out.out_port) == (LISP, 31)
    assert (str(f.ip_src), str(f.ip_dst), f.dport) == ("100.64.254.169", "10.3.0.10", 4342)
    request = decode_control(out.data[f.payload_offset:])
    assert isinstance(request, MapRequest) and request.itr_rlocs == (ip_address("192.0.2.1"),)


def test_etr_answers_map_requests_arriving_over_the_alt_via_the_underlay():
    from lisp_app.dataplane.pipeline import K_PUNT_ALT_CONTROL
    xtr, _rib, _ = alt_xtr()
    learn_next_hop(xtr)
    req = MapRequest(5, (EidRecord.for_prefix(EidPrefix.parse("[1000]10.1.0.5/32")),),
                     (ip_address("198.51.100.1"),))
    over_alt = frames.udp_frame("00:00:00:00:00:00", "00:00:00:00:00:00",
                                ip_address("100.64.254.171"), ip_address("10.1.0.5"), 4342, 4342,
                                req.encode())
    effects = xtr.on_packet_in(LISP, cookie(K_PUNT_ALT_CONTROL), 31, 0, over_alt, 0.0)
    (frame, reply), = control_payloads(effects)
    assert isinstance(reply, MapReply) and str(frame.ip_dst) == "198.51.100.1"


def test_map_server_node_accepts_a_registration_announces_it_and_notifies():
    from lisp_app.protocol import MapNotify, MapRegister, sign
    xtr, alt = msmr()
    rec = MappingRecord.for_prefix(EidPrefix.parse("153.16.40.0/24"),
                                   locators=(Locator(ip_address("198.51.100.9")),))
    reg = sign(MapRegister(9, (rec,), want_map_notify=True), "s3cret", 2).encode()
    frame = frames.udp_frame(ROUTER_MAC, LOCAL_MAC, ip_address("198.51.100.9"),
                             ip_address("203.0.113.20"), 4342, 4342, reg)
    effects = xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0, frame, 0.0)
    apply_alt(alt, effects)
    assert alt.state.intended == {"153.16.40.0/24"}
    (f, notify), = control_payloads(effects)
    assert isinstance(notify, MapNotify) and str(f.ip_dst) == "198.51.100.9"
    assert xtr.ms.stats.registers_accepted == 1


def test_map_resolver_node_forwards_an_ecm_request_into_the_alt():
    from lisp_app.alt.rib import AltRoute
    from lisp_app.protocol import EncapsulatedControlMessage
    xtr, alt = msmr()
    alt.state.rib.update(AltRoute(ip_network("153.16.36.0/24"), "100.64.254.172", "100.64.254.172"))
    req = MapRequest(3, (EidRecord.for_prefix(EidPrefix.parse("153.16.36.10/32")),),
                     (ip_address("198.51.100.9"),))
    ecm = EncapsulatedControlMessage(ip_address("153.16.40.10"), ip_address("153.16.36.10"), req,
                                     source_port=50123).encode()
    frame = frames.udp_frame(ROUTER_MAC, LOCAL_MAC, ip_address("198.51.100.9"),
                             ip_address("203.0.113.20"), 50123, 4342, ecm)
    (out,) = xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0, frame, 0.0)
    f = frames.parse_frame(out.data)
    assert (out.bridge, out.out_port) == (LISP, 31)
    assert (str(f.ip_src), str(f.ip_dst), f.sport) == ("153.16.40.10", "153.16.36.10", 50123)
    assert decode_control(out.data[f.payload_offset:]) == req


def test_etr_registers_its_prefixes_with_its_map_servers_every_minute():
    from lisp_app.protocol import MapNotify, MapRegister, sign, verify_authentication
    cfg = CONFIG.replace("map_request_targets: [198.51.100.1]",
                         "map_request_targets: [198.51.100.1]\nmap_servers: "
                         "[{address: 203.0.113.20, key: s3cret, key_id: 2}]")
    xtr = make_xtr(cfg)
    learn_next_hop(xtr)
    (out,) = outs(xtr.on_timer(0.0), UNDERLAY)
    f = frames.parse_frame(out.data)
    payload = out.data[f.payload_offset:]
    reg = decode_control(payload)
    assert isinstance(reg, MapRegister) and reg.want_map_notify and reg.key_id == 2
    assert str(f.ip_dst) == "203.0.113.20"
    assert verify_authentication(payload, "s3cret") and not verify_authentication(payload, "x")
    assert {r.prefix for r in reg.records} == {EidPrefix.parse("[1000]10.1.0.0/24"),
                                              EidPrefix.parse("[1000]2001:db8:1::/48")}
    assert len(outs(xtr.on_timer(5.0), UNDERLAY)) == 1  # unconfirmed: retried after 5 s
    notify = sign(MapNotify(reg.nonce, reg.records), "s3cret", 2).encode()
    xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                     underlay_in(notify, src="203.0.113.20"), 6.0)
    assert xtr.stats.registrations_confirmed == 1
    assert outs(xtr.on_timer(11.0), UNDERLAY) == []  # confirmed: every 60 s now
    assert len(outs(xtr.on_timer(66.0), UNDERLAY)) == 1


def test_map_server_relays_a_data_probe_for_a_registered_site_as_a_map_request():
    from lisp_app.protocol import MapRegister, sign
    xtr, _alt = msmr()
    rec = MappingRecord.for_prefix(EidPrefix.parse("153.16.40.0/24"),
                                   locators=(Locator(ip_address("198.51.100.9")),))
    reg = sign(MapRegister(9, (rec,)), "s3cret", 1).encode()
    xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                     frames.udp_frame(ROUTER_MAC, LOCAL_MAC, ip_address("198.51.100.9"),
                                      ip_address("203.0.113.20"), 4342, 4342, reg), 0.0)
    inner = host_frame("153.16.40.10", src="153.16.36.10")[14:]
    probe = frames.udp_frame("00:00:00:00:00:00", "00:00:00:00:00:00", ip_address("192.0.2.1"),
                             ip_address("153.16.40.10"), 50000, 4341,
                             DataHeader(instance_id=0, nonce=0x123).encode() + inner)
    effects = xtr.on_packet_in(LISP, cookie(K_PUNT_DATA_PROBE), 31, 0, probe, 1.0)
    (f, ecm), = control_payloads(effects)
    assert str(f.ip_dst) == "198.51.100.9" and ecm.to_etr
    assert ecm.message.nonce == 0x123 and ecm.message.itr_rlocs == (ip_address("192.0.2.1"),)
    assert xtr.stats.data_probes_relayed == 1


def test_the_control_punt_rate_is_configurable():
    from lisp_app.dataplane.pipeline import METER_CONTROL
    xtr = make_xtr(CONFIG + "control_rate: 20000\n")
    meters, _flows, _groups = xtr.desired(UNDERLAY)
    rates = {m.meter_id: m.rate_pps for m in meters}
    assert rates.pop(METER_CONTROL) == 20000
    assert set(rates.values()) == {5000}  # per source bucket: a quarter (test_miss_punting)


def test_only_mappings_near_their_refresh_point_are_watched_and_traffic_refreshes_them():
    """TTL 5 min, refresh 60 s before expiry, traffic counts within 30 s before that: the
    window opens at 210 s. The flow is watched from 210 s - horizon on; a counter increase
    inside the window makes the ITR refresh the mapping; static entries are never watched."""
    xtr = make_xtr()
    learn_next_hop(xtr)
    (_f, request), = control_payloads(miss(xtr, "10.2.0.10"))
    prefix = EidPrefix.parse("[1000]10.2.0.0/24")
    rec = MappingRecord.for_prefix(prefix, locators=(Locator(ip_address("198.51.100.1")),), ttl=5)
    xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                     underlay_in(MapReply(request.nonce, (rec,)).encode()), 0.0)
    xtr.add_static(EidPrefix.parse("[1000]10.9.0.0/16"), (Locator(ip_address("198.51.100.2")),),
                   0.0)
    assert xtr.traffic_watch(100.0, 10.0) == []
    (flow,) = xtr.traffic_watch(200.0, 10.0)
    assert kind_of(flow.cookie) == K_ENCAP and dict(flow.match)["ipv4_dst"][0] == "10.2.0.0"

    def look(packets, now):
        xtr.on_flow_stats(LISP, [(flow.cookie, flow.table, flow.priority, flow.match, packets)],
                          now)

    look(7, 200.0)  # before the window: a baseline, too early to count as "in use"
    assert control_payloads(xtr.on_timer(240.0)) == []  # refresh point, no traffic in window
    xtr2 = make_xtr()  # the same, with traffic inside the window
    learn_next_hop(xtr2)
    (_f, request), = control_payloads(miss(xtr2, "10.2.0.10"))
    xtr2.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                      underlay_in(MapReply(request.nonce, (rec,)).encode()), 0.0)
    (flow2,) = xtr2.traffic_watch(200.0, 10.0)
    for packets, now in ((7, 200.0), (7, 212.0), (9, 225.0)):
        xtr2.on_flow_stats(LISP, [(flow2.cookie, flow2.table, flow2.priority, flow2.match,
                                   packets)], now)
    (_f, refresh), = control_payloads(xtr2.on_timer(240.0))
    assert isinstance(refresh, MapRequest) and refresh.records[0].prefix == prefix


def test_watched_counters_are_forgotten_when_no_longer_watched():
    xtr = make_xtr()
    xtr.on_flow_stats(LISP, [(cookie(K_ENCAP), 1, 2024, (("x", 1),), 5)], 0.0)
    assert xtr.watch.flow_packets == {(1, 2024, (("x", 1),)): 5}
    xtr.on_flow_stats(LISP, [], 1.0)
    assert xtr.watch.flow_packets == {}


def test_group_ids_are_not_reused_at_once_and_avoid_the_switchs_old_ones():
    """OVS loses a packet-out through a group re-added under a just-deleted id: ids rise."""
    xtr = make_xtr()
    two = (Locator(ip_address("198.51.100.1"), 1, 50), Locator(ip_address("198.51.100.2"), 1, 50))
    xtr.avoid_group_ids({1, 2, 7})  # what a previous controller left in the switch
    a, b = EidPrefix.parse("[1000]10.8.0.0/16"), EidPrefix.parse("[1000]10.9.0.0/16")
    xtr.add_static(a, two, 0.0)
    assert xtr.group_ids() == {a: 8}
    xtr.remove_mapping(a, 1.0)
    xtr.add_static(b, two, 2.0)
    assert xtr.group_ids() == {b: 9}  # 8 was just deleted: not reused
    xtr.reprogram_mappings()  # a reconnect keeps the ids: the groups are modified in place
    assert xtr.group_ids() == {b: 9}
    xtr.add_static(b, two[:1], 3.0)  # one locator now: its group goes
    xtr.reprogram_mappings()
    assert xtr.group_ids() == {}


def test_group_ids_wrap_around_skipping_those_in_use():
    from lisp_app.control.installer import LAST_GROUP_ID
    xtr = make_xtr()
    two = (Locator(ip_address("198.51.100.1"), 1, 50), Locator(ip_address("198.51.100.2"), 1, 50))
    xtr.add_static(EidPrefix.parse("[1000]10.1.128.0/24"), two, 0.0)  # takes id 1
    xtr.avoid_group_ids({LAST_GROUP_ID - 1})
    ids = []
    for n in range(3):
        prefix = EidPrefix.parse(f"[1000]10.{20 + n}.0.0/16")
        xtr.add_static(prefix, two, 0.0)
        ids.append(xtr.group_ids()[prefix])
    assert ids == [LAST_GROUP_ID, 2, 3]  # 1 is in use
