"""Shared test tooling for the xTR orchestrator: configurations, a ready-made Xtr (bridges
connected with fixed port numbers), frames as the switch punts them, and readers of the effects.
Test modules import from here, never from one another."""

from __future__ import annotations

import random
from ipaddress import ip_address

from lisp_app.alt.rib import AltRib, AltRoute
from lisp_app.alt.speaker import AltSpeaker
from lisp_app.config import parse_config
from lisp_app.alt.effects import Announce, Withdraw
from lisp_app.node import Xtr
from lisp_app.dataplane import frames
from lisp_app.dataplane.effects import LISP, UNDERLAY, FlowChange, PacketOut
from lisp_app.dataplane.pipeline import K_PUNT_MISS, cookie
from lisp_app.protocol.numbers import LISP_CONTROL_PORT
from lisp_app.protocol import decode_control

CONFIG = """
role: xtr
instance_id: 1000
eid_prefixes: [{prefix: 10.1.0.0/24, ttl: 5}, {prefix: "2001:db8:1::/48"}]
lisp_bridge: {datapath_id: 1, site_ports: [{name: site}]}
underlay: {datapath_id: 2, rloc: 192.0.2.1, next_hop: 192.0.2.254, mtu: 1500}
site_gateway: {ipv4: 10.1.0.1, ipv6: "2001:db8:1::1", mac: "02:00:00:00:00:01"}
map_request_targets: [198.51.100.1]
probing: {enabled: false}
"""
# (RLOC probing is off in this config, so that the timer's effects are the ITR's own; the
# probing tests turn it on: tests/unit/test_prober.py)
SITE, GPE, UPLINK = 1, 2, 7
HOST_MAC, GW_MAC = "02:aa:00:00:00:10", "02:00:00:00:00:01"
LOCAL_MAC, ROUTER_MAC = "02:bb:00:00:00:01", "02:cc:00:00:00:fe"


def make_xtr(text: str = CONFIG) -> Xtr:
    xtr = Xtr(parse_config(text), random.Random(3))
    xtr.lisp_bridge_ready({"site": SITE, "gpe": GPE})
    xtr.underlay_bridge_ready({"uplink": UPLINK}, LOCAL_MAC)
    return xtr


def host_frame(dst: str, src: str = "10.1.0.10", size: int = 10) -> bytes:
    return frames.udp_frame(HOST_MAC, GW_MAC, ip_address(src), ip_address(dst), 5000, 6000,
                            bytes(size))


def underlay_in(payload: bytes, sport: int = 4342, src: str = "198.51.100.1") -> bytes:
    return frames.udp_frame(ROUTER_MAC, LOCAL_MAC, ip_address(src), ip_address("192.0.2.1"),
                            sport, 4342, payload)


def arp_reply(sender_ip: str, sender_mac: str, target_ip: str, target_mac: str) -> bytes:
    return (frames.mac_to_bytes(target_mac) + frames.mac_to_bytes(sender_mac) + b"\x08\x06"
            + bytes.fromhex("0001080006040002") + frames.mac_to_bytes(sender_mac)
            + ip_address(sender_ip).packed + frames.mac_to_bytes(target_mac)
            + ip_address(target_ip).packed)


def switch_with_base(xtr):
    """A fake LISP bridge holding the node's base flows."""
    from tests.fakeswitch import FakeSwitch
    switch = FakeSwitch()
    _meters, base, groups = xtr.desired(LISP)
    switch.install(base, groups)
    return switch


def apply(switch, effects) -> None:
    """Carry the LISP bridge's flow changes among ``effects`` out on a fake switch."""
    for e in effects:
        if isinstance(e, FlowChange) and e.bridge == LISP:
            for f in e.delete:
                switch.flows.pop(f.key, None)
            switch.install(e.add, e.groups)
            for gid in e.delete_groups:
                del switch.groups[gid]


def miss(xtr, dst, now=0.0, src="10.1.0.10"):
    return xtr.on_packet_in(LISP, cookie(K_PUNT_MISS), SITE, 1000, host_frame(dst, src), now)


def outs(effects, bridge=None):
    return [e for e in effects if isinstance(e, PacketOut) and (bridge is None
                                                               or e.bridge == bridge)]


def control_payloads(effects):
    """The LISP control messages in underlay packet-outs."""
    found = []
    for out in outs(effects, UNDERLAY):
        f = frames.parse_frame(out.data)
        if f.dport == LISP_CONTROL_PORT or f.sport == LISP_CONTROL_PORT:
            found.append((f, decode_control(out.data[f.payload_offset:])))
    return found


def learn_next_hop(xtr):
    return xtr.on_packet_in(UNDERLAY, cookie(0x15), UPLINK, 0,
                            arp_reply("192.0.2.254", ROUTER_MAC, "192.0.2.1", LOCAL_MAC), 0.0)



def apply_alt(speaker: AltSpeaker, effects) -> None:
    """Hand the ALT effects among ``effects`` to the adapter, as the shell does."""
    for e in effects:
        if isinstance(e, (Announce, Withdraw)):
            speaker.apply(e)


ALT_CONFIG = CONFIG.replace("map_request_targets: [198.51.100.1]", """alt:
  local_as: 2147483677
  router_id: 153.16.36.254
  address: 100.64.254.169
  eid_space: [10.0.0.0/8]
  neighbors: [{address: 100.64.254.168, remote_as: 2147483671, gre_port: gre0}]""")


def alt_xtr():
    """An xTR on the ALT: (xtr, its ALT RIB, AltRoute)."""
    rib = AltRib()
    xtr = Xtr(parse_config(ALT_CONFIG), random.Random(3), alt_rib=rib)
    xtr.lisp_bridge_ready({"site": SITE, "gpe": GPE, "alt0": 30, "gre0": 31},
                          {"alt0": "02:a1:00:00:00:01"})
    xtr.underlay_bridge_ready({"uplink": UPLINK}, LOCAL_MAC)
    return xtr, rib, AltRoute


MSMR_CONFIG = """
role: ms-mr
lisp_bridge: {datapath_id: 1, site_ports: []}
underlay: {datapath_id: 2, rloc: 203.0.113.20, next_hop: 203.0.113.254}
map_resolver: true
map_server:
  sites: [{name: site-40, key: s3cret, eid_prefixes: [153.16.40.0/24]}]
alt:
  local_as: 2147483673
  router_id: 203.0.113.20
  address: 100.64.254.173
  eid_space: [153.16.0.0/16]
  neighbors: [{address: 100.64.254.172, remote_as: 2147483671, gre_port: gre0}]
"""


def msmr():
    """A Map-Server/Map-Resolver on the ALT: (node, its ALT adapter, not started). Hand the
    node's effects to the adapter with :func:`apply_alt`."""
    config = parse_config(MSMR_CONFIG)
    alt = AltSpeaker(config.alt)
    xtr = Xtr(config, random.Random(5), alt_rib=alt.state.rib)
    xtr.lisp_bridge_ready({"alt0": 30, "gre0": 31}, {"alt0": "02:a1:00:00:00:01"})
    xtr.underlay_bridge_ready({"uplink": UPLINK}, LOCAL_MAC)
    learn = arp_reply("203.0.113.254", ROUTER_MAC, "203.0.113.20", LOCAL_MAC)
    xtr.on_packet_in(UNDERLAY, cookie(0x15), UPLINK, 0, learn, 0.0)
    return xtr, alt


