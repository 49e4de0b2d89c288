"""The underlay next hop, sans I/O: its MAC (learned from the ARP replies the underlay bridge
punts), the messages that wait for it, and the frames that leave through the uplink.

The controller sends its control messages with packet-outs, so it must supply the Ethernet next
hop itself (docs/architecture.rst, "Control traffic crosses the switch"). Until
the next hop's MAC is known, control messages and data probes wait in a bounded queue and the
next hop is asked for (at most once a second).
"""

from __future__ import annotations

from collections import deque
from ipaddress import IPv4Address, IPv6Address

from ..dataplane import frames
from ..dataplane.effects import UNDERLAY, PacketOut

CONTROL_QUEUE = 256  # control messages and data probes held while the next hop's MAC is resolved
ASK_INTERVAL = 1.0   # seconds between two ARP requests for the next hop


class UnderlayNextHop:
    """The uplink of the underlay bridge and the router behind it."""

    def __init__(self, rloc: IPv4Address, next_hop: IPv4Address,
                 rloc_ipv6: IPv6Address | None = None, next_hop_ipv6: IPv6Address | None = None,
                 queue_size: int = CONTROL_QUEUE):
        self.rloc, self.next_hop = rloc, next_hop
        self.rloc_ipv6, self.next_hop_ipv6 = rloc_ipv6, next_hop_ipv6
        self.local_mac: str | None = None     # the underlay bridge's LOCAL port (holds the RLOC)
        self.next_hop_mac: str | None = None
        self.uplink: int | None = None        # the uplink's OpenFlow port number
        self._waiting: deque = deque(maxlen=queue_size)
        self._asked_at: float | None = None

    def connected(self, uplink: int, local_mac: str) -> None:
        """The underlay bridge connected."""
        self.uplink, self.local_mac = uplink, local_mac

    @property
    def resolved(self) -> bool:
        return self.next_hop_mac is not None and self.local_mac is not None

    def udp(self, source, destination, sport: int, dport: int, payload: bytes) -> PacketOut:
        """A UDP datagram out of the uplink, to the next hop's MAC (which must be resolved)."""
        data = frames.udp_frame(self.local_mac, self.next_hop_mac, source, destination, sport,
                                dport, payload)
        return PacketOut(UNDERLAY, data, self.uplink)

    def hold(self, item, now: float) -> list[PacketOut]:
        """Keep ``item`` (an engine action) until the next hop is resolved; ask for it."""
        self._waiting.append(item)
        return self.ask(now)

    def ask(self, now: float) -> list[PacketOut]:
        """An ARP request for the next hop, unless one went out less than a second ago."""
        if self.local_mac is None or (self._asked_at is not None
                                      and now - self._asked_at < ASK_INTERVAL):
            return []
        self._asked_at = now
        return [PacketOut(UNDERLAY, frames.arp_request(self.local_mac, self.rloc, self.next_hop),
                          self.uplink)]

    def warm(self, now: float) -> list[PacketOut]:
        """Resolve the next hops right away (IPv4, and IPv6 when configured). OVS's native
        tunnelling learns their MACs from the replies (it snoops every ARP/ND reply its bridges
        handle), so the first encapsulated packet is not dropped while OVS resolves them."""
        self._asked_at = None
        out = self.ask(now)
        if self.rloc_ipv6 is not None and self.next_hop_ipv6 is not None and self.local_mac:
            out.append(PacketOut(UNDERLAY, frames.neighbor_solicitation(
                self.local_mac, self.rloc_ipv6, self.next_hop_ipv6), self.uplink))
        return out

    def retry(self, now: float) -> list[PacketOut]:
        """Called periodically: ask again while messages wait for the next hop."""
        if self._waiting and self.next_hop_mac is None:
            return self.ask(now)
        return []

    def on_arp_reply(self, frame) -> list:
        """An ARP reply punted by the underlay bridge. From the next hop: learn its MAC and
        return the actions that waited for it (to be carried out again)."""
        if frame.arp_spa != self.next_hop or frame.arp_sha is None:
            return []
        self.next_hop_mac = frame.arp_sha
        released = list(self._waiting)
        self._waiting.clear()
        return released
