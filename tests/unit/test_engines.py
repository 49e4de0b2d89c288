"""The small engines the orchestrator composes, on their own: the underlay next-hop queue and
the site hosts."""

from __future__ import annotations

from ipaddress import ip_address

from lisp_app.control.actions import SendControl
from lisp_app.control.next_hop import UnderlayNextHop
from lisp_app.dataplane import frames
from lisp_app.dataplane.effects import UNDERLAY
from tests.xtrkit import LOCAL_MAC, ROUTER_MAC, UPLINK, arp_reply

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
