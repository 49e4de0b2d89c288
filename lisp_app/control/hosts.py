"""The site's hosts, sans I/O: who they are (learned from ARP replies and IPv6 neighbour
discovery on the site ports), their delivery flows, and the packets held while one is asked for.

The controller is the site's gateway: it answers neighbour solicitations for the gateway address,
asks for a local host whose MAC it does not know (ARP or NS, at most once a second), holds that
host's packets (a few per host) and delivers them once the host answers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from ..dataplane import frames
from ..dataplane.effects import LISP, FlowChange, PacketOut
from ..dataplane.flows import Flow
from ..dataplane.pipeline import LispBridge
from ..mapping.database import LocalDatabase
from ..protocol.addresses import EidPrefix
from ..protocol.numbers import ND_NEIGHBOR_ADVERT, ND_NEIGHBOR_SOLICIT
from .mapstat import MapStat

HOST_IDLE_TIMEOUT = 300  # seconds: a host flow unused this long is removed by the switch
RESOLVE_QUEUE = 16       # packets held per site host being resolved
ASK_INTERVAL = 1.0       # seconds between two solicitations for one host
ALL_NODES = ip_address("ff02::1")

IPAddress = IPv4Address | IPv6Address


@dataclass
class Host:
    instance_id: int
    address: IPAddress
    mac: str
    port: int


@dataclass
class _Resolving:
    packets: deque = field(default_factory=lambda: deque(maxlen=RESOLVE_QUEUE))
    asked_at: float = 0.0


@dataclass(frozen=True)
class Gateway:
    """The site gateway the controller stands for."""

    mac: str
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None


class SiteHosts:
    """Hosts behind the site ports, keyed by (instance-id, address)."""

    def __init__(self, database: LocalDatabase, stats: MapStat, gateway: Gateway,
                 port_instance_ids: dict[str, int]):
        self.database = database
        self.stats = stats
        self.gateway = gateway
        self.port_instance_ids = port_instance_ids  # site port name -> instance-id
        self.hosts: dict[tuple[int, IPAddress], Host] = {}
        self._resolving: dict[tuple[int, IPAddress], _Resolving] = {}
        self._bridge: LispBridge | None = None
        self._ports: dict[str, int] = {}

    def attach(self, bridge: LispBridge, ports: dict[str, int]) -> None:
        """The LISP bridge connected; ``ports`` maps its port names to numbers."""
        self._bridge, self._ports = bridge, dict(ports)

    def flows(self) -> list[Flow]:
        """The delivery flow of every known host."""
        return [self._flow(h) for h in self.hosts.values()]

    def _flow(self, host: Host) -> Flow:
        if self._bridge is None:
            raise RuntimeError("the LISP bridge has not connected yet")
        return self._bridge.host_flow(host.instance_id, host.address, host.mac, host.port,
                                      HOST_IDLE_TIMEOUT)

    def resolve(self, frame, data: bytes, iid: int, now: float) -> list:
        """A packet for a local host whose MAC we do not know: hold it and ask for the host."""
        if frame.ip_dst is None:
            self.stats.bad_header += 1
            return []
        state = self._resolving.setdefault((iid, frame.ip_dst), _Resolving())
        if len(state.packets) == state.packets.maxlen:
            self.stats.buffer_overflow += 1
        state.packets.append(data)
        if state.asked_at and now - state.asked_at < ASK_INTERVAL:
            return []
        state.asked_at = now
        return self._solicit(iid, frame.ip_dst)

    def _solicit(self, iid: int, target: IPAddress) -> list[PacketOut]:
        gw = self.gateway
        ports = [p for name, p in self._ports.items() if self.port_instance_ids.get(name) == iid]
        if target.version == 4 and gw.ipv4 is not None:
            data = frames.arp_request(gw.mac, gw.ipv4, target)
        elif target.version == 6 and gw.ipv6 is not None:
            data = frames.neighbor_solicitation(gw.mac, gw.ipv6, target)
        else:
            return []
        return [PacketOut(LISP, data, port) for port in ports]

    def on_neighbor(self, frame, in_port: int) -> list:
        """An ARP reply, a neighbour solicitation for the gateway or a neighbour advertisement
        from a site port."""
        name = next((n for n, p in self._ports.items() if p == in_port), None)
        if name not in self.port_instance_ids:
            return []
        iid = self.port_instance_ids[name]
        gw = self.gateway
        if frame.arp_op == 2 and frame.arp_spa is not None:
            return self._learn(iid, frame.arp_spa, frame.arp_sha, in_port)
        if frame.icmpv6_type == ND_NEIGHBOR_SOLICIT and gw.ipv6 is not None \
                and frame.nd_target == gw.ipv6:
            out = []
            known_source = not frame.ip_src.is_unspecified
            if frame.nd_lladdr and known_source:
                out.extend(self._learn(iid, frame.ip_src, frame.nd_lladdr, in_port))
            reply = frames.neighbor_advertisement(gw.mac, frame.eth_src, gw.ipv6,
                                                  frame.ip_src if known_source else ALL_NODES,
                                                  gw.ipv6, solicited=known_source)
            return out + [PacketOut(LISP, reply, in_port)]
        if frame.icmpv6_type == ND_NEIGHBOR_ADVERT and frame.nd_target is not None:
            return self._learn(iid, frame.nd_target, frame.nd_lladdr or frame.eth_src, in_port)
        return []

    def _learn(self, iid: int, address: IPAddress, mac: str | None, port: int) -> list:
        if mac is None or self.database.covering(EidPrefix(iid, ip_network(address))) is None:
            return []
        host = self.hosts[(iid, address)] = Host(iid, address, mac, port)
        out: list = [FlowChange(LISP, add=(self._flow(host),))]
        state = self._resolving.pop((iid, address), None)
        if state is not None:
            out.extend(self._to_host(host, data) for data in state.packets)
        return out

    def forget_outside_database(self) -> list[Flow]:
        """Local prefixes went away (a configuration reload): forget the hosts that no local
        prefix covers now, and the packets held for such addresses; returns the forgotten hosts'
        delivery flows, for the caller to delete."""
        def ours(iid: int, address: IPAddress) -> bool:
            return self.database.covering(EidPrefix(iid, ip_network(address))) is not None

        gone = [self.hosts.pop(key) for key in list(self.hosts) if not ours(*key)]
        for key in [k for k in self._resolving if not ours(*k)]:
            del self._resolving[key]
        return [self._flow(h) for h in gone] if self._bridge is not None else []

    def _to_host(self, host: Host, data: bytes) -> PacketOut:
        self.stats.reinjected += 1
        return PacketOut(LISP, frames.mac_to_bytes(host.mac)
                         + frames.mac_to_bytes(self.gateway.mac) + data[12:], host.port)

    def deliver(self, iid: int, address: IPAddress, data: bytes, now: float) -> list:
        """Hand a frame to a local host: straight to it when known, else after asking for it."""
        host = self.hosts.get((iid, address))
        if host is None:
            return self.resolve(frames.parse_frame(data), data, iid, now)
        return [self._to_host(host, data)]

    def expired(self, flow_match: dict) -> None:
        """A host flow idled out in the switch: forget the host (it is asked for again)."""
        for key, host in list(self.hosts.items()):
            field_name = "ipv4_dst" if host.address.version == 4 else "ipv6_dst"
            if flow_match.get(field_name) == str(host.address):
                del self.hosts[key]
