"""The underlay next hops, sans I/O: their MACs (learned from the ARP replies and Neighbor
Advertisements the underlay bridge punts), the messages that wait for them, and the frames that
leave through the uplink.

The controller sends its control messages with packet-outs, so it must supply the Ethernet next
hop itself (docs/architecture.rst, "Control traffic crosses the switch"). There is one next hop
per address family: the IPv4 one (``underlay.next_hop``) and, with an IPv6 RLOC, the IPv6 one
(``underlay.next_hop_ipv6``). A message to an IPv6 address leaves from the IPv6 RLOC through the
IPv6 next hop, and likewise for IPv4. Until a family's next hop is known, its control messages and
data probes wait in a bounded queue and the next hop is asked for (ARP or Neighbor Solicitation,
at most once a second).
"""

from __future__ import annotations

from collections import deque
from ipaddress import IPv4Address, IPv6Address

from ..dataplane import frames
from ..dataplane.effects import UNDERLAY, PacketOut

CONTROL_QUEUE = 256  # control messages and data probes held (per family) while a next hop resolves
ASK_INTERVAL = 1.0   # seconds between two ARP requests (or NS) for a next hop

IPAddress = IPv4Address | IPv6Address


class _Family:
    """One address family's RLOC, next hop, its MAC and the messages waiting for it."""

    def __init__(self, rloc: IPAddress, next_hop: IPAddress, queue_size: int):
        self.rloc, self.next_hop = rloc, next_hop
        self.mac: str | None = None
        self.waiting: deque = deque(maxlen=queue_size)
        self.asked_at: float | None = None


class UnderlayNextHop:
    """The uplink of the underlay bridge and the routers behind it."""

    def __init__(self, rloc: IPv4Address, next_hop: IPv4Address,
                 rloc_ipv6: IPv6Address | None = None, next_hop_ipv6: IPv6Address | None = None,
                 queue_size: int = CONTROL_QUEUE):
        self.rloc, self.next_hop = rloc, next_hop
        self.rloc_ipv6, self.next_hop_ipv6 = rloc_ipv6, next_hop_ipv6
        self._families = {4: _Family(rloc, next_hop, queue_size)}
        if rloc_ipv6 is not None and next_hop_ipv6 is not None:
            self._families[6] = _Family(rloc_ipv6, next_hop_ipv6, queue_size)
        self.local_mac: str | None = None     # the underlay bridge's LOCAL port (holds the RLOCs)
        self.uplink: int | None = None        # the uplink's OpenFlow port number

    def connected(self, uplink: int, local_mac: str) -> None:
        """The underlay bridge connected."""
        self.uplink, self.local_mac = uplink, local_mac

    @property
    def next_hop_mac(self) -> str | None:
        """The IPv4 next hop's MAC, once known."""
        return self._families[4].mac

    @property
    def next_hop_ipv6_mac(self) -> str | None:
        """The IPv6 next hop's MAC, once known (None without an IPv6 RLOC)."""
        family = self._families.get(6)
        return family.mac if family else None

    def reaches(self, destination: IPAddress) -> bool:
        """Whether we have an RLOC (and a next hop) of ``destination``'s family."""
        return destination.version in self._families

    def source_for(self, destination: IPAddress) -> IPAddress:
        """Our RLOC of ``destination``'s family (which :meth:`reaches` must have confirmed)."""
        return self._families[destination.version].rloc

    @property
    def resolved(self) -> bool:
        """The IPv4 next hop is resolved (see :meth:`resolved_for`)."""
        return self.resolved_for(4)

    def resolved_for(self, version: int) -> bool:
        family = self._families.get(version)
        return family is not None and family.mac is not None and self.local_mac is not None

    def udp(self, source, destination, sport: int, dport: int, payload: bytes) -> PacketOut:
        """A UDP datagram out of the uplink, to the MAC of the next hop of ``destination``'s
        family (which must be resolved)."""
        data = frames.udp_frame(self.local_mac, self._families[destination.version].mac, source,
                                destination, sport, dport, payload)
        return PacketOut(UNDERLAY, data, self.uplink)

    def hold(self, item, now: float, version: int = 4) -> list[PacketOut]:
        """Keep ``item`` (an engine action) until the next hop of family ``version`` is
        resolved; ask for it."""
        self._families[version].waiting.append(item)
        return self.ask(now, version)

    def ask(self, now: float, version: int = 4) -> list[PacketOut]:
        """An ARP request (IPv4) or a Neighbor Solicitation (IPv6) for the next hop, unless one
        went out less than a second ago."""
        family = self._families.get(version)
        if family is None or self.local_mac is None or (
                family.asked_at is not None and now - family.asked_at < ASK_INTERVAL):
            return []
        family.asked_at = now
        if version == 4:
            frame = frames.arp_request(self.local_mac, family.rloc, family.next_hop)
        else:
            frame = frames.neighbor_solicitation(self.local_mac, family.rloc, family.next_hop)
        return [PacketOut(UNDERLAY, frame, self.uplink)]

    def warm(self, now: float) -> list[PacketOut]:
        """Resolve the next hops right away (IPv4, and IPv6 when configured). OVS's native
        tunnelling learns their MACs from the replies (it snoops every ARP/ND reply its bridges
        handle), so the first encapsulated packet is not dropped while OVS resolves them."""
        out = []
        for version, family in self._families.items():
            family.asked_at = None
            out += self.ask(now, version)
        return out

    def retry(self, now: float) -> list[PacketOut]:
        """Called periodically: ask again while messages wait for a next hop."""
        out = []
        for version, family in self._families.items():
            if family.waiting and family.mac is None:
                out += self.ask(now, version)
        return out

    def on_arp_reply(self, frame) -> list:
        """An ARP reply punted by the underlay bridge. From the next hop: learn its MAC and
        return the actions that waited for it (to be carried out again)."""
        return self._learn(4, frame.arp_spa, frame.arp_sha)

    def on_neighbor_advert(self, frame) -> list:
        """A Neighbor Advertisement punted by the underlay bridge. For the IPv6 next hop: learn
        its MAC (the target link-layer address option) and return the actions that waited."""
        return self._learn(6, frame.nd_target, frame.nd_lladdr or frame.eth_src)

    def _learn(self, version: int, address, mac: str | None) -> list:
        family = self._families.get(version)
        if family is None or address != family.next_hop or mac is None:
            return []
        family.mac = mac
        released = list(family.waiting)
        family.waiting.clear()
        return released
