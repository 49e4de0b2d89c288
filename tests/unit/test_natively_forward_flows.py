"""Natively-forward negative mappings (RFC 9300 section 6.1): out unencapsulated through the
underlay (a patch port to the underlay bridge, whose LOCAL port's host routes them), or
encapsulated to proxy ETRs, or dropped, as the site's config says; and native traffic back to
the site's hosts."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from lisp_app.config import ConfigError, parse_config
from lisp_app.dataplane.effects import LISP, UNDERLAY
from lisp_app.dataplane.flows import OFPP_LOCAL
from lisp_app.dataplane.pipeline import K_ENCAP, K_NATIVE, K_NEGATIVE, kind_of
from lisp_app.protocol import Action, EidPrefix, MappingRecord, MapReply
from lisp_app.dataplane.pipeline import K_PUNT_CONTROL, cookie
from tests.fakeswitch import FakeSwitch
from tests.xtrkit import (CONFIG, GPE, LOCAL_MAC, SITE, UPLINK, apply, control_payloads,
                          learn_next_hop, miss, underlay_in)

NATIVE_L, NATIVE_U = 9, 19
OUTSIDE = EidPrefix.parse("[1000]203.0.113.0/24")


def node(extra: str):
    import random

    from lisp_app.node import Xtr
    text = CONFIG.replace("lisp_bridge: {datapath_id: 1, site_ports: [{name: site}]}",
                          "lisp_bridge: {datapath_id: 1, site_ports: [{name: site}], "
                          "native_port: native-l}").replace(
        "mtu: 1500}", "mtu: 1500, native_port: native-u}") + extra
    if "probing:" in extra:  # the test's own probing replaces the shared config's
        text = text.replace("probing: {enabled: false}\n", "")
    xtr = Xtr(parse_config(text), random.Random(3))
    xtr.lisp_bridge_ready({"site": SITE, "gpe": GPE, "native-l": NATIVE_L})
    xtr.underlay_bridge_ready({"uplink": UPLINK, "native-u": NATIVE_U}, LOCAL_MAC)
    learn_next_hop(xtr)
    return xtr


def negative_reply(xtr, switch, now=0.0):
    (_f, request), = control_payloads(miss(xtr, "203.0.113.10", now))
    record = MappingRecord.for_prefix(OUTSIDE, ttl=15, action=Action.NATIVELY_FORWARD)
    apply(switch, xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                                   underlay_in(MapReply(request.nonce, (record,)).encode()),
                                   now + 0.1))


def lisp_switch(xtr):
    _m, flows, groups = xtr.desired(LISP)
    return FakeSwitch(flows, groups)


def host_packet(dst):
    return dict(in_port=SITE, eth_type=0x0800, ip_proto=17, ipv4_src="10.1.0.10", ipv4_dst=dst,
                length=100)


def test_native_mode_sends_the_traffic_out_the_patch_port_to_the_underlay_hosts_kernel():
    xtr = node("")
    switch = lisp_switch(xtr)
    negative_reply(xtr, switch)
    run = switch.run(host_packet("203.0.113.10"))
    assert run.ports == [NATIVE_L]
    (flow,) = [f for f in switch.flows.values() if kind_of(f.cookie) == K_NATIVE]
    under = FakeSwitch(xtr.desired(UNDERLAY)[1])
    out = under.run(dict(in_port=NATIVE_U, eth_type=0x0800, ip_proto=17,
                         ipv4_dst="203.0.113.10"))
    assert out.ports == [OFPP_LOCAL] and out.outputs[0][1]["eth_dst"] == LOCAL_MAC


def test_native_traffic_for_a_local_eid_reaches_the_site():
    xtr = node("")
    under = FakeSwitch(xtr.desired(UNDERLAY)[1])
    back = under.run(dict(in_port=UPLINK, eth_type=0x0800, ip_proto=1, ipv4_dst="10.1.0.10"))
    assert back.ports == [NATIVE_U]
    switch = lisp_switch(xtr)
    run = switch.run(dict(in_port=NATIVE_L, eth_type=0x0800, ip_proto=1, ipv4_dst="10.1.0.10"))
    assert run.punts  # the host's MAC is unknown yet: resolved like decapsulated traffic
    assert switch.run(dict(in_port=NATIVE_L, eth_type=0x0800, ip_proto=1,
                           ipv4_dst="10.9.0.1")).dropped


def test_petr_mode_encapsulates_to_the_proxy_etrs():
    xtr = node("natively_forward: {mode: petr, petrs: [198.51.100.50, 198.51.100.51]}\n"
               "probing: {enabled: false}\n")
    switch = lisp_switch(xtr)
    negative_reply(xtr, switch)
    run = switch.run(host_packet("203.0.113.10"))
    assert not run.dropped and run.outputs
    (flow,) = [f for f in switch.flows.values() if kind_of(f.cookie) == K_ENCAP]
    (group,) = switch.groups.values()
    dsts = sorted(a.value for b in group.buckets for a in b.actions
                  if getattr(a, "field", None) == "tun_ipv4_dst")
    assert dsts == ["198.51.100.50", "198.51.100.51"]


def test_drop_mode_drops_and_counts_in_the_switch():
    xtr = node("natively_forward: {mode: drop}\n")
    switch = lisp_switch(xtr)
    negative_reply(xtr, switch)
    assert switch.run(host_packet("203.0.113.10")).dropped
    assert [kind_of(f.cookie) for f in switch.flows.values()].count(K_NEGATIVE) == 1
    assert all(dict(f.match).get("in_port") != NATIVE_U for f in xtr.desired(UNDERLAY)[1])


def test_probing_watches_the_proxy_etrs():
    xtr = node("natively_forward: {mode: petr, petrs: [198.51.100.50]}\n"
               "probing: {interval: 1, timeout: 0.5}\n")
    switch = lisp_switch(xtr)
    negative_reply(xtr, switch)
    assert ip_address("198.51.100.50") in xtr.prober.locators


@pytest.mark.parametrize("extra, where", [
    ("natively_forward: {mode: petr}", "natively_forward.petrs"),
    ("natively_forward: {mode: petr, petrs: ['2001:db8::5']}", "natively_forward.petrs[0]"),
])
def test_bad_natively_forward_settings_are_refused_by_name(extra, where):
    with pytest.raises(ConfigError) as err:
        parse_config(CONFIG + extra + "\n", "site.yaml")
    assert err.value.path == where


def test_the_two_ends_of_the_native_patch_go_together():
    with pytest.raises(ConfigError) as err:
        parse_config(CONFIG.replace("mtu: 1500}", "mtu: 1500, native_port: native-u}"))
    assert err.value.path == "underlay.native_port"
