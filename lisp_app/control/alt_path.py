"""The ALT path, sans I/O: Map-Requests and data probes into the ALT's GRE tunnels, chosen by the
ALT RIB (the routes our BGP speaker learned).

The GRE ports are L3: frames leaving them carry a placeholder MAC (ALT_PEER_MAC) both ways.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from ..alt.rib import AltRib
from ..dataplane import frames
from ..dataplane.effects import LISP, PacketOut
from ..dataplane.pipeline import ALT_PEER_MAC
from ..protocol.numbers import LISP_CONTROL_PORT
from .actions import SendOverAlt
from .map_resolver import ForwardOverAlt
from .mapstat import MapStat


class AltPath:
    def __init__(self, rib: AltRib | None, address: IPv4Address | None, stats: MapStat):
        self.rib = rib
        self.address = address  # our address on the ALT
        self.stats = stats
        self.gre_ports: dict[str, int] = {}  # neighbour address -> its GRE port

    def attach(self, gre_ports: dict[str, int]) -> None:
        """The LISP bridge connected; ``gre_ports`` maps ALT neighbours to GRE port numbers."""
        self.gre_ports = dict(gre_ports)

    def port_for(self, eid) -> int | None:
        """The GRE port of the ALT route towards ``eid`` (counted when there is none)."""
        route = self.rib.lookup(eid) if self.rib is not None else None
        if route is None:
            self.stats.alt_no_route += 1
            return None
        return self.gre_ports.get(route.neighbor)

    def udp(self, port: int, source, destination, sport: int, dport: int,
            payload: bytes) -> PacketOut:
        return PacketOut(LISP, frames.udp_frame(ALT_PEER_MAC, ALT_PEER_MAC, source, destination,
                                                sport, dport, payload), port)

    def map_request(self, send: SendOverAlt) -> list[PacketOut]:
        """A Map-Request to the EID itself, from our ALT address."""
        port = self.port_for(send.eid)
        if port is None:
            return []
        return [self.udp(port, self.address, send.eid, send.source_port, LISP_CONTROL_PORT,
                         send.payload)]

    def forward(self, act: ForwardOverAlt) -> list[PacketOut]:
        """(Map-Resolver) a decapsulated Map-Request, on towards the EID, from its own source."""
        port = self.gre_ports.get(act.neighbor)
        if port is None:
            return []
        return [self.udp(port, act.source, act.destination, act.source_port, LISP_CONTROL_PORT,
                         act.payload)]
