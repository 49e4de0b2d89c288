"""The xTR's control plane over an IPv6 underlay: Map-Resolvers, Map-Servers and Map-Request
targets at IPv6 addresses (``underlay.rloc_ipv6``), the IPv6 next hop learned from the Neighbor
Advertisements the underlay bridge punts, and the config rules that keep an IPv4-only site from
naming IPv6 peers."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from lisp_app.config import ConfigError, parse_config
from lisp_app.control.actions import SendControl
from lisp_app.control.next_hop import UnderlayNextHop
from lisp_app.dataplane import frames
from lisp_app.dataplane.effects import UNDERLAY
from lisp_app.dataplane.flows import OFPP_NORMAL
from lisp_app.dataplane.pipeline import (K_PUNT_CONTROL, K_PUNT_UNDERLAY_ND,
                                         UnderlayBridge, cookie, kind_of)
from lisp_app.protocol import (EidPrefix, EidRecord, EncapsulatedControlMessage, Locator,
                               MapNotify, MapReply, MapRequest, MappingRecord, decode_control,
                               sign)
from tests.fakeswitch import FakeSwitch
from tests.xtrkit import (CONFIG, LOCAL_MAC, ROUTER_MAC, UPLINK, learn_next_hop, make_xtr, miss,
                          outs)

RLOC6, HOP6 = ip_address("2001:db8:ff01::1"), ip_address("2001:db8:ff01::254")
MR6, MS6, ETR6 = (ip_address("2001:db8:ff99::1"), ip_address("2001:db8:ff99::2"),
                  ip_address("2001:db8:ff02::1"))
V6_UNDERLAY = ("underlay: {datapath_id: 2, rloc: 192.0.2.1, next_hop: 192.0.2.254, mtu: 1500, "
               f"rloc_ipv6: \"{RLOC6}\", next_hop_ipv6: \"{HOP6}\"}}")
V4_UNDERLAY = "underlay: {datapath_id: 2, rloc: 192.0.2.1, next_hop: 192.0.2.254, mtu: 1500}"


def v6_config(peers: str) -> str:
    return CONFIG.replace(V4_UNDERLAY, V6_UNDERLAY).replace(
        "map_request_targets: [198.51.100.1]", peers)


def neighbor_advert(target=HOP6, mac=ROUTER_MAC) -> bytes:
    return frames.neighbor_advertisement(mac, LOCAL_MAC, target, RLOC6, target)


def learn_ipv6_next_hop(xtr, now=0.0):
    return xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_UNDERLAY_ND), UPLINK, 0, neighbor_advert(),
                            now)


def underlay_in6(payload: bytes, src=MR6, sport=4342) -> bytes:
    return frames.udp_frame(ROUTER_MAC, LOCAL_MAC, src, RLOC6, sport, 4342, payload)


def sent_control(effects):
    found = []
    for out in outs(effects, UNDERLAY):
        f = frames.parse_frame(out.data)
        if f.dport == 4342:
            found.append((f, decode_control(out.data[f.payload_offset:f.ip_offset
                                                      + f.ip_length])))
    return found


# -- the next hop, per family ---------------------------------------------------------------------

def test_ipv6_messages_wait_for_the_ipv6_next_hop_only():
    hop = UnderlayNextHop(ip_address("192.0.2.1"), ip_address("192.0.2.254"), RLOC6, HOP6)
    hop.connected(UPLINK, LOCAL_MAC)
    v4, v6 = SendControl(ip_address("198.51.100.1"), b"4"), SendControl(MR6, b"6")
    (ns,) = hop.hold(v6, 0.0, 6)
    f = frames.parse_frame(ns.data)
    assert (f.icmpv6_type, f.nd_target, f.ip_src) == (135, HOP6, RLOC6)
    (arp,) = hop.hold(v4, 0.0, 4)
    assert frames.parse_frame(arp.data).arp_op == 1
    assert hop.hold(v6, 0.5, 6) == []  # asked less than a second ago
    stranger = frames.parse_frame(neighbor_advert(target=ip_address("2001:db8:ff01::9")))
    assert hop.on_neighbor_advert(stranger) == [] and not hop.resolved_for(6)
    assert hop.on_neighbor_advert(frames.parse_frame(neighbor_advert())) == [v6, v6]
    assert hop.resolved_for(6) and not hop.resolved_for(4)
    assert hop.next_hop_ipv6_mac == ROUTER_MAC and hop.next_hop_mac is None
    out = frames.parse_frame(hop.udp(hop.source_for(MR6), MR6, 4342, 4342, b"x").data)
    assert (out.eth_dst, out.ip_src, out.ip_dst) == (ROUTER_MAC, RLOC6, MR6)
    assert [len(x) for x in (hop.retry(5.0),)] == [1]  # the IPv4 one still waits: asked again


def test_without_an_ipv6_rloc_ipv6_is_out_of_reach():
    hop = UnderlayNextHop(ip_address("192.0.2.1"), ip_address("192.0.2.254"))
    hop.connected(UPLINK, LOCAL_MAC)
    assert not hop.reaches(MR6) and hop.reaches(ip_address("198.51.100.1"))
    assert hop.on_neighbor_advert(frames.parse_frame(neighbor_advert())) == []
    assert len(hop.warm(0.0)) == 1  # ARP only


def test_warm_asks_for_both_next_hops():
    hop = UnderlayNextHop(ip_address("192.0.2.1"), ip_address("192.0.2.254"), RLOC6, HOP6)
    hop.connected(UPLINK, LOCAL_MAC)
    kinds = [frames.parse_frame(p.data) for p in hop.warm(0.0)]
    assert [k.arp_op for k in kinds] == [1, None] and kinds[1].icmpv6_type == 135


# -- the underlay bridge --------------------------------------------------------------------------

def test_underlay_bridge_punts_ipv6_control_and_the_next_hops_advertisements():
    sw = FakeSwitch(UnderlayBridge(ip_address("192.0.2.1"), rloc_ipv6=RLOC6, data_probe_prefixes=(
        EidPrefix.parse("[1000]2001:db8:1::/48"),)).base_flows())
    control = dict(in_port=1, eth_type=0x86DD, ip_proto=17, ipv6_dst=str(RLOC6), udp_dst=4342)
    run = sw.run(control)
    assert [kind_of(c) for c, _ in run.punts] == [K_PUNT_CONTROL] and not run.outputs
    assert sw.run(dict(control, udp_dst=4341)).ports == [OFPP_NORMAL]  # data: OVS's GPE port
    advert = dict(in_port=1, eth_type=0x86DD, ip_proto=58, icmpv6_type=136, ipv6_dst=str(RLOC6))
    run = sw.run(advert)
    assert [kind_of(c) for c, _ in run.punts] == [K_PUNT_UNDERLAY_ND]
    assert run.ports == [OFPP_NORMAL]  # the kernel and OVS's tunnel neighbour cache see it too
    probe = dict(in_port=1, eth_type=0x86DD, ip_proto=17, ipv6_dst="2001:db8:1::10",
                 udp_dst=4341)
    assert sw.run(probe).ports == [OFPP_NORMAL]  # data probes are for IPv4 EIDs only


def test_an_ipv4_only_underlay_bridge_has_no_ipv6_punts():
    flows = UnderlayBridge(ip_address("192.0.2.1"), data_probe_prefixes=(
        EidPrefix.parse("[1000]2001:db8:1::/48"),)).base_flows()
    assert all(dict(f.match).get("eth_type") != 0x86DD for f in flows)


# -- the xTR --------------------------------------------------------------------------------------

def test_an_ipv6_map_resolver_gets_an_ecm_from_the_ipv6_rloc_and_the_reply_is_accepted():
    xtr = make_xtr(v6_config(f"map_resolvers: [\"{MR6}\"]"))
    learn_next_hop(xtr)
    effects = miss(xtr, "10.2.0.10")
    assert sent_control(effects) == []  # waits for the IPv6 next hop, which is asked for
    (ns,) = outs(effects, UNDERLAY)
    assert frames.parse_frame(ns.data).nd_target == HOP6
    ((f, ecm),) = sent_control(learn_ipv6_next_hop(xtr))
    assert (f.ip_src, f.ip_dst, f.eth_dst) == (RLOC6, MR6, ROUTER_MAC)
    assert isinstance(ecm, EncapsulatedControlMessage)
    request = ecm.message
    assert request.itr_rlocs == (RLOC6, ip_address("192.0.2.1"))  # the reply comes back over v6
    assert (str(ecm.source), str(ecm.destination)) == ("10.1.0.10", "10.2.0.10")
    reply = MapReply(request.nonce, (MappingRecord.for_prefix(
        EidPrefix.parse("[1000]10.2.0.0/24"), ttl=10,
        locators=(Locator(ETR6, 1, 100, reachable=True),)),))
    xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                     underlay_in6(reply.encode(), src=ETR6), 1.0)
    assert xtr.stats.requests_answered == 1 and xtr.stats.replies_rejected == 0
    entry = xtr.cache.lookup(1000, ip_address("10.2.0.10"))
    assert entry is not None and entry.locators[0].address == ETR6


def test_ipv4_and_ipv6_resolvers_each_get_the_rlocs_of_their_family_first():
    xtr = make_xtr(v6_config(f"map_resolvers: [198.51.100.9, \"{MR6}\"]"))
    learn_next_hop(xtr)
    learn_ipv6_next_hop(xtr)
    sent = {f.ip_dst: ecm.message for f, ecm in sent_control(miss(xtr, "10.2.0.10"))}
    assert sent[ip_address("198.51.100.9")].itr_rlocs == (ip_address("192.0.2.1"), RLOC6)
    assert sent[MR6].itr_rlocs == (RLOC6, ip_address("192.0.2.1"))
    assert sent[MR6].nonce == sent[ip_address("198.51.100.9")].nonce


def test_registration_with_an_ipv6_map_server_is_confirmed_by_its_map_notify():
    xtr = make_xtr(v6_config(f"map_request_targets: [\"{ETR6}\"]\nmap_servers: "
                             f"[{{address: \"{MS6}\", key: s3cret, key_id: 1}}]"))
    learn_ipv6_next_hop(xtr)
    ((f, register),) = sent_control(xtr.on_timer(0.0))
    assert (f.ip_src, f.ip_dst) == (RLOC6, MS6)
    notify = sign(MapNotify(register.nonce, register.records), "s3cret", 1)
    xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                     underlay_in6(notify.encode(), src=MS6), 1.0)
    assert xtr.stats.registrations_confirmed == 1 and xtr.stats.control_unexpected == 0


def test_the_etr_answers_an_ipv6_itr_rloc_over_ipv6():
    xtr = make_xtr(v6_config("map_request_targets: [198.51.100.1]"))
    learn_ipv6_next_hop(xtr)
    itr6 = ip_address("2001:db8:ff03::1")
    request = MapRequest(77, (EidRecord.for_prefix(EidPrefix.parse("[1000]10.1.0.0/24")),),
                         (itr6, ip_address("203.0.113.3")))
    effects = xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                               underlay_in6(request.encode(), src=itr6, sport=61000), 0.0)
    out = [p for p in outs(effects, UNDERLAY)]
    assert len(out) == 1
    f = frames.parse_frame(out[0].data)
    reply = decode_control(out[0].data[f.payload_offset:f.ip_offset + f.ip_length])
    assert (f.ip_src, f.ip_dst, f.dport) == (RLOC6, itr6, 61000)
    assert isinstance(reply, MapReply) and reply.nonce == 77


def test_an_ipv4_only_site_drops_and_counts_what_must_go_over_ipv6():
    """An ETR without an IPv6 RLOC asked by an ITR that lists only IPv6 ITR-RLOCs: nothing is
    sent, the request is counted as one it could not answer."""
    xtr = make_xtr()
    learn_next_hop(xtr)
    request = MapRequest(78, (EidRecord.for_prefix(EidPrefix.parse("[1000]10.1.0.0/24")),),
                         (ip_address("2001:db8:ff03::1"),))
    frame = frames.udp_frame(ROUTER_MAC, LOCAL_MAC, ip_address("198.51.100.1"),
                             ip_address("192.0.2.1"), 4342, 4342, request.encode())
    effects = xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0, frame, 0.0)
    assert outs(effects, UNDERLAY) == [] and xtr.stats.control_unexpected == 1


# -- the config -----------------------------------------------------------------------------------

@pytest.mark.parametrize("peers,where", [
    (f"map_resolvers: [\"{MR6}\"]", "map_resolvers[0]"),
    (f"map_request_targets: [198.51.100.1, \"{ETR6}\"]", "map_request_targets[1]"),
    (f"map_request_targets: [198.51.100.1]\nmap_servers: [{{address: \"{MS6}\", key: k}}]",
     "map_servers[0].address"),
])
def test_ipv6_peers_without_an_ipv6_rloc_are_refused_by_name(peers, where):
    with pytest.raises(ConfigError) as err:
        parse_config(CONFIG.replace("map_request_targets: [198.51.100.1]", peers), "site.yaml")
    assert err.value.path == where and "rloc_ipv6" in str(err.value)
    assert "site.yaml" in str(err.value)


def test_ipv6_peers_are_accepted_with_an_ipv6_rloc():
    config = parse_config(v6_config(f"map_resolvers: [\"{MR6}\", 198.51.100.9]\nmap_servers: "
                                    f"[{{address: \"{MS6}\", key: k}}]"))
    assert config.map_resolvers == (MR6, ip_address("198.51.100.9"))
    assert config.map_servers[0].address == MS6
