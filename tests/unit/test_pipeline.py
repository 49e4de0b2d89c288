"""The OpenFlow pipeline, checked by replaying packets through the flow-table simulator."""

from collections import Counter
from ipaddress import ip_address

import pytest

from lisp_app.dataplane.flows import OFPP_NORMAL
from lisp_app.dataplane.pipeline import (K_DROP, K_NEGATIVE, K_PUNT_CONTROL, K_PUNT_DATA_PROBE,
                                         K_PUNT_MISS,
                                         K_PUNT_NEIGHBOR, K_PUNT_RESOLVE, K_PUNT_TOO_BIG,
                                         METER_MISS, LispBridge, UnderlayBridge, kind_of,
                                         packet_size_limit)
from lisp_app.mapping.cache import CacheEntry
from lisp_app.mapping.locators import select_shares
from lisp_app.protocol import Action, EidPrefix, Locator
from tests.fakeswitch import FakeSwitch

SITE, BLUE, GPE, NATIVE = 1, 2, 10, 20
GW_MAC, HOST_MAC = "02:00:00:00:00:01", "02:aa:00:00:00:10"


def bridge(**kw) -> LispBridge:
    args = dict(site_ports=((SITE, 1000), (BLUE, 2000)), gpe_port=GPE,
                local_prefixes=(EidPrefix.parse("[1000]10.1.0.0/24"),
                                EidPrefix.parse("[1000]2001:db8:1::/48"),
                                EidPrefix.parse("[2000]10.1.0.0/24")),
                gateway_mac=GW_MAC, gateway_ipv4=ip_address("10.1.0.1"),
                gateway_ipv6=ip_address("2001:db8:1::1"), underlay_mtu=1500)
    args.update(kw)
    return LispBridge(**args)


def switch_for(b: LispBridge, entries=()) -> FakeSwitch:
    sw = FakeSwitch(b.base_flows())
    for i, entry in enumerate(entries):
        flows, group = b.mapping_flows(entry, select_shares(entry.locators), 100 + i)
        sw.install(flows, [group])
    return sw


def entry(text, *rlocs, action=Action.NO_ACTION):
    locs = tuple(Locator(ip_address(r), p, w) for r, p, w in rlocs)
    return CacheEntry(EidPrefix.parse(text), locs, action)


def ip_packet(dst, src="10.1.0.10", in_port=SITE, length=100, ttl=64):
    if ":" in dst:
        return dict(in_port=in_port, eth_type=0x86DD, ipv6_src=src, ipv6_dst=dst, length=length,
                    ttl=ttl)
    return dict(in_port=in_port, eth_type=0x0800, ipv4_src=src, ipv4_dst=dst, length=length,
                ttl=ttl)


def punt_kinds(result):
    return [kind_of(c) for c, _p in result.punts]


def test_cache_miss_is_punted_through_the_miss_meter():
    result = switch_for(bridge()).run(ip_packet("10.2.0.10"))
    assert punt_kinds(result) == [K_PUNT_MISS]
    # its source bucket's meter, its site port's, then the aggregate (tests/unit/test_miss_punting)
    assert len(result.meters) == 3 and result.meters[-1] == METER_MISS
    assert result.punts[0][1]["metadata"] & 0xFFFFFF == 1000
    assert not result.outputs


def test_mapping_encapsulates_to_its_rloc_with_instance_id_and_ttl_decrement():
    sw = switch_for(bridge(), [entry("[1000]10.2.0.0/24", ("198.51.100.1", 1, 100))])
    result = sw.run(ip_packet("10.2.0.10"))
    assert result.ports == [GPE]
    out = result.outputs[0][1]
    assert out["tun_ipv4_dst"] == "198.51.100.1"
    assert out["tunnel_id"] == 1000
    assert out["ttl"] == 63
    assert not result.punts


def test_longest_prefix_wins():
    sw = switch_for(bridge(), [entry("[1000]10.2.0.0/16", ("198.51.100.16", 1, 100)),
                               entry("[1000]10.2.3.0/24", ("198.51.100.24", 1, 100))])
    assert sw.run(ip_packet("10.2.3.4")).outputs[0][1]["tun_ipv4_dst"] == "198.51.100.24"
    assert sw.run(ip_packet("10.2.4.4")).outputs[0][1]["tun_ipv4_dst"] == "198.51.100.16"


def test_instance_ids_keep_the_same_prefix_apart():
    sw = switch_for(bridge(), [entry("[1000]10.2.0.0/24", ("198.51.100.1", 1, 100)),
                               entry("[2000]10.2.0.0/24", ("198.51.100.2", 1, 100))])
    red = sw.run(ip_packet("10.2.0.10", in_port=SITE)).outputs[0][1]
    blue = sw.run(ip_packet("10.2.0.10", in_port=BLUE)).outputs[0][1]
    assert (red["tun_ipv4_dst"], red["tunnel_id"]) == ("198.51.100.1", 1000)
    assert (blue["tun_ipv4_dst"], blue["tunnel_id"]) == ("198.51.100.2", 2000)


def test_weighted_locators_share_flows_through_a_select_group():
    sw = switch_for(bridge(), [entry("[1000]10.2.0.0/24", ("198.51.100.1", 1, 70),
                                     ("198.51.100.2", 1, 30), ("198.51.100.3", 2, 100))])
    seen = Counter(sw.run(ip_packet("10.2.0.10", src=f"10.1.0.{i % 250 + 2}",
                                    length=100 + i)).outputs[0][1]["tun_ipv4_dst"]
                   for i in range(1000))
    assert set(seen) == {"198.51.100.1", "198.51.100.2"}  # priority 2 stays out
    assert 0.6 < seen["198.51.100.1"] / 1000 < 0.8


def test_too_big_packet_is_punted_not_sent():
    b = bridge()
    sw = switch_for(b, [entry("[1000]10.2.0.0/24", ("198.51.100.1", 1, 100))])
    limit = packet_size_limit(1500)
    assert limit == 1500 - 36 + 14
    ok = sw.run(ip_packet("10.2.0.10", length=limit))
    big = sw.run(ip_packet("10.2.0.10", length=limit + 1))
    assert ok.ports == [GPE]
    assert big.ports == [] and punt_kinds(big) == [K_PUNT_TOO_BIG]


def test_negative_entries_drop_or_forward_natively():
    sw = switch_for(bridge(native_port=NATIVE),
                    [entry("[1000]10.8.0.0/16", action=Action.DROP_POLICY_DENIED),
                     entry("[1000]10.9.0.0/16", action=Action.NATIVELY_FORWARD)])
    dropped = sw.run(ip_packet("10.8.0.1"))
    assert dropped.dropped and kind_of(dropped.path[-1].cookie) == K_NEGATIVE
    assert sw.run(ip_packet("10.9.0.1")).ports == [NATIVE]
    # without a native path, natively-forward entries drop (and never punt)
    no_native = switch_for(bridge(), [entry("[1000]10.9.0.0/16", action=Action.NATIVELY_FORWARD)])
    assert no_native.run(ip_packet("10.9.0.1")).dropped


def test_multicast_broadcast_and_link_local_never_reach_the_controller():
    sw = switch_for(bridge())
    for dst in ("224.0.0.251", "255.255.255.255", "169.254.1.1", "ff02::1", "fe80::1"):
        result = sw.run(ip_packet(dst))
        assert result.dropped and not result.punts, dst


def test_arp_for_the_gateway_is_answered_in_the_switch():
    request = dict(in_port=SITE, eth_type=0x0806, arp_op=1, eth_src=HOST_MAC,
                   eth_dst="ff:ff:ff:ff:ff:ff", arp_sha=HOST_MAC, arp_spa="10.1.0.10",
                   arp_tha="00:00:00:00:00:00", arp_tpa="10.1.0.1")
    result = switch_for(bridge()).run(request)
    assert result.ports == [SITE] and not result.punts
    reply = result.outputs[0][1]
    assert (reply["arp_op"], reply["eth_src"], reply["eth_dst"]) == (2, GW_MAC, HOST_MAC)
    assert (reply["arp_sha"], reply["arp_spa"]) == (GW_MAC, "10.1.0.1")
    assert (reply["arp_tha"], reply["arp_tpa"]) == (HOST_MAC, "10.1.0.10")


def test_arp_reply_and_neighbour_solicitation_for_the_gateway_are_punted():
    sw = switch_for(bridge())
    reply = dict(in_port=SITE, eth_type=0x0806, arp_op=2, arp_tpa="10.1.0.1", arp_spa="10.1.0.10")
    ns = dict(in_port=SITE, eth_type=0x86DD, ip_proto=58, icmpv6_type=135, ipv6_dst="ff02::1:ff00:1",
              ipv6_nd_target="2001:db8:1::1", ipv6_src="2001:db8:1::10")
    assert punt_kinds(sw.run(reply)) == [K_PUNT_NEIGHBOR]
    assert punt_kinds(sw.run(ns)) == [K_PUNT_NEIGHBOR]


def test_decapsulated_packets_reach_known_hosts_and_resolve_unknown_ones():
    b = bridge()
    sw = switch_for(b)
    sw.install([b.host_flow(1000, ip_address("10.1.0.10"), HOST_MAC, SITE)])
    pkt = ip_packet("10.1.0.10", src="10.2.0.10", in_port=GPE)
    pkt["tunnel_id"] = 1000
    result = sw.run(pkt)
    assert result.ports == [SITE]
    assert (result.outputs[0][1]["eth_src"], result.outputs[0][1]["eth_dst"]) == (GW_MAC, HOST_MAC)
    unknown = dict(pkt, ipv4_dst="10.1.0.99")
    assert punt_kinds(sw.run(unknown)) == [K_PUNT_RESOLVE]
    # a known host of instance-id 1000 is not reachable through instance-id 2000
    other = dict(pkt, tunnel_id=2000)
    assert punt_kinds(sw.run(other)) == [K_PUNT_RESOLVE]
    assert sw.run(dict(pkt, tunnel_id=3000)).dropped  # no such instance-id here
    assert sw.run(dict(pkt, ipv4_dst="10.7.0.1")).dropped  # not our EID


def test_ipv6_eids_encapsulate_and_decapsulate():
    b = bridge()
    sw = switch_for(b, [entry("[1000]2001:db8:2::/48", ("198.51.100.1", 1, 100))])
    out = sw.run(ip_packet("2001:db8:2::10", src="2001:db8:1::10"))
    assert out.ports == [GPE] and out.outputs[0][1]["tun_ipv4_dst"] == "198.51.100.1"
    sw.install([b.host_flow(1000, ip_address("2001:db8:1::10"), HOST_MAC, SITE)])
    back = dict(ip_packet("2001:db8:1::10", src="2001:db8:2::10", in_port=GPE), tunnel_id=1000)
    assert sw.run(back).ports == [SITE]


def test_local_traffic_between_site_ports_stays_local():
    b = bridge(site_ports=((SITE, 1000), (BLUE, 1000)))
    sw = switch_for(b)
    sw.install([b.host_flow(1000, ip_address("10.1.0.20"), "02:bb:00:00:00:20", BLUE)])
    assert sw.run(ip_packet("10.1.0.20", in_port=SITE)).ports == [BLUE]


def test_roles():
    itr_only = switch_for(bridge(etr=False))
    pkt = dict(ip_packet("10.1.0.10", src="10.2.0.10", in_port=GPE), tunnel_id=1000)
    assert itr_only.run(pkt).dropped
    etr_only = switch_for(bridge(itr=False))
    miss = etr_only.run(ip_packet("10.2.0.10"))
    assert miss.dropped and not miss.punts
    assert kind_of(miss.path[-1].cookie) == K_DROP


def test_several_locators_need_a_group_id():
    e = entry("[1000]10.2.0.0/24", ("198.51.100.1", 1, 50), ("198.51.100.2", 1, 50))
    with pytest.raises(ValueError, match="group id"):
        bridge().mapping_flows(e, select_shares(e.locators), None)


def test_underlay_punts_control_messages_and_forwards_the_rest():
    sw = FakeSwitch(UnderlayBridge(ip_address("192.0.2.1")).base_flows())
    control = dict(in_port=1, eth_type=0x0800, ip_proto=17, ipv4_dst="192.0.2.1", udp_dst=4342)
    data = dict(control, udp_dst=4341)
    assert punt_kinds(sw.run(control)) == [K_PUNT_CONTROL] and not sw.run(control).outputs
    assert sw.run(data).ports == [OFPP_NORMAL]
    assert sw.run(dict(control, ipv4_dst="192.0.2.9")).ports == [OFPP_NORMAL]


def test_etr_underlay_punts_data_probes_for_its_eids_only():
    sw = FakeSwitch(UnderlayBridge(ip_address("192.0.2.1"), data_probe_prefixes=(
        EidPrefix.parse("[1000]10.1.0.0/24"), EidPrefix.parse("[1000]2001:db8:1::/48"))).base_flows())
    probe = dict(in_port=1, eth_type=0x0800, ip_proto=17, ipv4_dst="10.1.0.10", udp_dst=4341)
    assert [kind_of(c) for c, _p in sw.run(probe).punts] == [K_PUNT_DATA_PROBE]
    assert sw.run(dict(probe, ipv4_dst="10.9.0.1")).ports == [OFPP_NORMAL]
    assert sw.run(dict(probe, ipv4_dst="192.0.2.1")).ports == [OFPP_NORMAL]  # GPE to our RLOC


def test_ipv6_locators_use_tun_ipv6_dst_and_the_larger_overhead():
    e = entry("[1000]10.2.0.0/24", ("2001:db8:ff02::1", 1, 100))
    (flow,), group = bridge().mapping_flows(e, select_shares(e.locators, families=(4, 6)), None)
    assert group is None
    assert flow.apply[0].length == packet_size_limit(1500, 6) == 1500 - 56 + 14
    out = FakeSwitch(bridge().base_flows() + [flow]).run(ip_packet("10.2.0.10"))
    assert out.outputs[0][1]["tun_ipv6_dst"] == "2001:db8:ff02::1"


ALT0, GRE1 = 30, 31


def alt_bridge(**kw):
    return bridge(alt_port=ALT0, alt_mac="02:a1:00:00:00:01",
                  alt_address=ip_address("100.64.254.169"),
                  alt_peers=((ip_address("100.64.254.168"), GRE1),), **kw)


def test_alt_plumbing_carries_bgp_and_nothing_else():
    sw = switch_for(alt_bridge())
    bgp_out = dict(in_port=ALT0, eth_type=0x0800, ipv4_dst="100.64.254.168", ip_proto=6)
    assert sw.run(bgp_out).ports == [GRE1]
    bgp_in = dict(in_port=GRE1, eth_type=0x0800, ipv4_dst="100.64.254.169", ip_proto=6)
    out = sw.run(bgp_in)
    assert out.ports == [ALT0] and out.outputs[0][1]["eth_dst"] == "02:a1:00:00:00:01"
    arp = dict(in_port=ALT0, eth_type=0x0806, arp_op=1, arp_tpa="100.64.254.168",
               arp_spa="100.64.254.169", eth_src="02:a1:00:00:00:01",
               arp_sha="02:a1:00:00:00:01")
    reply = sw.run(arp).outputs[0][1]
    assert (reply["arp_op"], reply["arp_spa"], reply["arp_tpa"]) == (2, "100.64.254.168",
                                                                     "100.64.254.169")
    assert sw.run(dict(in_port=ALT0, eth_type=0x0800, ipv4_dst="8.8.8.8")).dropped
    assert sw.run(dict(in_port=GRE1, eth_type=0x0800, ipv4_dst="8.8.8.8")).dropped


def test_map_requests_and_data_probes_for_our_eids_arriving_over_the_alt_are_punted():
    from lisp_app.dataplane.pipeline import K_PUNT_ALT_CONTROL
    sw = switch_for(alt_bridge())
    req = dict(in_port=GRE1, eth_type=0x0800, ip_proto=17, udp_dst=4342, ipv4_dst="10.1.0.77")
    assert punt_kinds(sw.run(req)) == [K_PUNT_ALT_CONTROL]
    assert punt_kinds(sw.run(dict(req, udp_dst=4341))) == [K_PUNT_DATA_PROBE]
    assert sw.run(dict(req, ipv4_dst="10.9.0.1")).dropped  # not ours: the ALT goes on elsewhere
    itr_only = switch_for(alt_bridge(etr=False))
    assert itr_only.run(req).dropped


def test_the_fast_encapsulation_match_is_the_canonical_match():
    from lisp_app.dataplane.flows import match
    from lisp_app.dataplane.pipeline import METADATA_MASK, _encap_match, prefix_match
    for text in ("[1000]10.9.0.0/16", "[7]10.7.0.1/32", "[0]0.0.0.0/0", "[1000]2001:db8:9::/48",
                 "[5]::/0"):
        prefix = EidPrefix.parse(text)
        net = prefix.network
        assert _encap_match(prefix) == match(
            metadata=(prefix.instance_id, METADATA_MASK),
            eth_type=0x0800 if net.version == 4 else 0x86DD, **dict([prefix_match(net)]))


def test_each_bridge_owns_the_memos_its_mappings_share():
    """Mappings to the same locators share one compiled action tuple and one metadata match field
    (a million mappings must not hold a million copies); the memos are the bridge's own, bounded,
    and no part of its value."""
    from lisp_app.dataplane import pipeline
    one, other = bridge(), bridge()
    assert one == other and hash(one) == hash(other) and "memo" not in repr(one)
    a = entry("[1000]10.9.0.0/24", ("192.0.2.7", 1, 100))
    b = entry("[1000]10.8.0.0/24", ("192.0.2.7", 1, 100))
    (fa,), _ = one.mapping_flows(a, select_shares(a.locators), None)
    (fb,), _ = one.mapping_flows(b, select_shares(b.locators), None)
    assert fa.write is fb.write and fa.apply is fb.apply
    assert dict(fa.match)["metadata"] is dict(fb.match)["metadata"]
    (fc,), _ = other.mapping_flows(a, select_shares(a.locators), None)
    assert fc == fa and fc.write is not fa.write  # another bridge, its own memo
    for i in range(pipeline.ENCAP_ACTIONS_MEMO_LIMIT + 10):
        e = entry(f"[{i}]10.9.0.0/24", ("192.0.2.7", 1, 100))
        one.mapping_flows(e, select_shares(e.locators), None)
    assert len(one._encap_actions_memo) <= pipeline.ENCAP_ACTIONS_MEMO_LIMIT
    assert len(one._metadata_memo) <= pipeline.METADATA_MEMO_LIMIT


def test_cookies_and_netmasks_are_precomputed_tables():
    from lisp_app.dataplane.pipeline import COOKIE_BASE, _NETMASKS, cookie
    assert all(cookie(k) == COOKIE_BASE | k << 24 and cookie(k) is cookie(k) for k in range(256))
    assert kind_of(cookie(K_DROP)) == K_DROP
    assert _NETMASKS[4][24] == "255.255.255.0" and _NETMASKS[6][0] == "::"
    assert _NETMASKS[6][128] == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
