"""The small engines the orchestrator composes, on their own (the underlay next-hop queue), and
the registrar fed a Map-Notify that bends the RFC."""

from __future__ import annotations

import hashlib
import hmac
from ipaddress import ip_address

from lisp_app.control.actions import SendControl
from lisp_app.control.next_hop import UnderlayNextHop
from lisp_app.dataplane import frames
from lisp_app.dataplane.effects import UNDERLAY
from lisp_app.dataplane.pipeline import K_PUNT_CONTROL, cookie
from lisp_app.protocol import MapNotify, decode_control, sign
from tests.xtrkit import (CONFIG, LOCAL_MAC, ROUTER_MAC, UPLINK, arp_reply, learn_next_hop,
                          make_xtr, outs, underlay_in)

RLOC, NEXT_HOP = ip_address("192.0.2.1"), ip_address("192.0.2.254")


def next_hop(queue_size: int = 256) -> UnderlayNextHop:
    hop = UnderlayNextHop(RLOC, NEXT_HOP, queue_size=queue_size)
    hop.connected(UPLINK, LOCAL_MAC)
    return hop


def test_messages_wait_for_the_next_hop_and_are_released_in_order():
    hop = next_hop()
    sends = [SendControl(ip_address("198.51.100.1"), bytes([n])) for n in range(3)]
    (ask,) = hop.hold(sends[0], 0.0)
    assert (ask.bridge, ask.out_port) == (UNDERLAY, UPLINK)
    assert hop.hold(sends[1], 0.5) == [] and hop.hold(sends[2], 0.9) == []  # asked < 1 s ago
    assert len(hop.retry(1.5)) == 1  # still waiting: asked again
    stranger = frames.parse_frame(arp_reply("192.0.2.99", "02:00:00:00:00:99", "192.0.2.1",
                                            LOCAL_MAC))
    assert hop.on_arp_reply(stranger) == [] and not hop.resolved
    answer = frames.parse_frame(arp_reply("192.0.2.254", ROUTER_MAC, "192.0.2.1", LOCAL_MAC))
    assert hop.on_arp_reply(answer) == sends
    assert hop.resolved and hop.retry(10.0) == []
    out = frames.parse_frame(hop.udp(RLOC, ip_address("198.51.100.1"), 4342, 4342, b"x").data)
    assert (out.eth_src, out.eth_dst, str(out.ip_src)) == (LOCAL_MAC, ROUTER_MAC, "192.0.2.1")


def test_the_queue_is_bounded_and_keeps_the_newest():
    hop = next_hop(queue_size=4)
    sends = [SendControl(ip_address("198.51.100.1"), bytes([n])) for n in range(10)]
    for n, send in enumerate(sends):
        hop.hold(send, float(n))
    answer = frames.parse_frame(arp_reply("192.0.2.254", ROUTER_MAC, "192.0.2.1", LOCAL_MAC))
    assert hop.on_arp_reply(answer) == sends[-4:]


def test_nothing_is_asked_before_the_underlay_bridge_connects():
    hop = UnderlayNextHop(RLOC, NEXT_HOP)
    assert hop.hold(SendControl(ip_address("198.51.100.1"), b"x"), 0.0) == []
    assert hop.warm(0.0) == []


def test_a_map_notify_without_the_i_bit_still_confirms_the_registration_and_is_counted():
    """Some Map-Servers put the xTR-ID and site-ID after the records without setting the I bit
    (tcpdump's lisp_eid_notify.pcap has one): accepted, confirmed, counted as lenient."""
    xtr = make_xtr(CONFIG.replace("map_request_targets: [198.51.100.1]",
                                  "map_request_targets: [198.51.100.1]\nmap_servers: "
                                  "[{address: 203.0.113.20, key: s3cret, key_id: 1}]"))
    learn_next_hop(xtr)
    (out,) = outs(xtr.on_timer(0.0), UNDERLAY)
    f = frames.parse_frame(out.data)
    register = decode_control(out.data[f.payload_offset:])
    notify = MapNotify(register.nonce, register.records, xtr_id=7, site_id=9)
    wire = bytearray(sign(notify, "s3cret", 1).encode())
    wire[0] &= ~0x08  # clear the I bit; the HMAC covers the message as sent
    blank = bytes(wire[:16]) + bytes(20) + bytes(wire[36:])
    wire[16:36] = hmac.new(b"s3cret", blank, hashlib.sha1).digest()
    xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                     underlay_in(bytes(wire), src="203.0.113.20"), 1.0)
    assert xtr.stats.registrations_confirmed == 1 and xtr.stats.control_lenient == 1
    assert xtr.stats.control_malformed == 0
