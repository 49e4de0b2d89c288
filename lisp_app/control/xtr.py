"""The xTR, sans I/O: packet-ins and timers in, packet-outs and flow changes out.

It owns the map-cache, the local database, the ITR and ETR engines, the site hosts it has learned
and the underlay next hop's MAC, and keeps the switch's flows in step with them: every change to
the map-cache goes out as a :class:`FlowChange` at once, so cache and flows never disagree. The
os-ken application (``lisp_app.app``) only translates these effects into OpenFlow.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from ..config import Config, local_prefixes, site_port_instance_ids
from ..dataplane import frames
from ..dataplane.effects import LISP, UNDERLAY, FlowChange, PacketOut
from ..dataplane.flows import OFPP_TABLE, Flow, Group, Meter
from ..dataplane.pipeline import (ALT_PEER_MAC, K_ENCAP,
                                  K_PUNT_ALT_CONTROL, K_PUNT_CONTROL, K_PUNT_DATA_PROBE,
                                  K_PUNT_MISS, K_PUNT_NEIGHBOR, K_PUNT_RESOLVE, K_PUNT_TOO_BIG,
                                  K_PUNT_UNDERLAY_ARP, LispBridge, UnderlayBridge, inner_mtu,
                                  kind_of)
from ..mapping.cache import SOURCE_REPLY, CacheEntry, MapCache
from ..mapping.database import LocalDatabase, LocalMapping
from ..mapping.locators import select_shares
from ..protocol import (DataHeader, DecodeError, EidPrefix, EidRecord, EncapsulatedControlMessage,
                        Locator,
                        MapNotify, MapRegister, MapReply, MapRequest, decode_control,
                        decode_data_header, sign, verify_authentication)
from ..protocol.data import LISP_DATA_PORT
from .actions import (BufferedPacket, InstallMapping, Reinject, RemoveMapping, SendControl,
                      SendDataProbe, SendOverAlt)
from .etr import EtrEngine
from .itr import ItrEngine, ItrSettings
from .map_resolver import ForwardOverAlt, MapResolverEngine
from .map_server import Announce, MapServerEngine, MsSite, Withdraw
from .mapstat import MapStat

LOG = logging.getLogger(__name__)

ETH_IPV4, ETH_IPV6, ETH_ARP = 0x0800, 0x86DD, 0x0806
FIRST_GROUP_ID = 1
LAST_GROUP_ID = 0xFFFFFF00  # OFPG_MAX
CONTROL_QUEUE = 256        # control messages and data probes held while the next hop's MAC
#                            is resolved
RESOLVE_QUEUE = 16         # packets held per site host being resolved
HOST_IDLE_TIMEOUT = 300
REGISTER_INTERVAL = 60.0   # RFC 9301: ETRs re-register every 60 s
REGISTER_RETRY = 5.0       # ... and sooner while a Map-Server has not confirmed (Map-Notify)


@dataclass
class Host:
    instance_id: int
    address: IPv4Address | IPv6Address
    mac: str
    port: int


@dataclass
class _Resolving:
    packets: deque = field(default_factory=lambda: deque(maxlen=RESOLVE_QUEUE))
    asked_at: float = 0.0


class Xtr:
    """One LISP site's xTR."""

    def __init__(self, config: Config, rng: random.Random | None = None, alt_rib=None):
        self.config = config
        self.alt_rib = alt_rib  # lisp_app.alt.rib.AltRib (read only) when on the ALT
        self.rng = rng or random.SystemRandom()
        self.stats = MapStat()
        self.cache = MapCache()
        self.database = LocalDatabase(
            LocalMapping(prefix, tuple(Locator(l.rloc, l.priority, l.weight,
                                               local=l.rloc == config.underlay.rloc)
                                       for l in locs), ttl)
            for prefix, locs, ttl in local_prefixes(config))
        self.itr_role = config.role in ("itr", "xtr")
        self.etr_role = config.role in ("etr", "xtr")
        self.itr = ItrEngine(ItrSettings(
            itr_rlocs=(config.underlay.rloc,),
            map_resolvers=config.map_resolvers,
            map_request_targets=config.map_request_targets,
            request_timeout=config.timers.request_timeout,
            request_retries=config.timers.request_retries,
            request_min_interval=config.timers.request_min_interval,
            request_holddown=config.timers.request_holddown,
            refresh_before=config.timers.refresh_before,
            buffer_per_destination=config.buffer.per_destination,
            buffer_total=config.buffer.total,
            data_probes=config.data_probes,
            use_alt=config.alt is not None), self.cache, self.stats, rng) \
            if self.itr_role else None
        self.etr = EtrEngine(self.database, self.stats) if self.etr_role else None
        self.ms = MapServerEngine(tuple(MsSite(s.name, s.key, s.eid_prefixes, s.announce)
                                        for s in config.map_server.sites)) \
            if config.map_server is not None else None
        self.mr = MapResolverEngine(self.alt_rib) \
            if config.map_resolver and self.alt_rib is not None else None
        self._next_register = 0.0  # (ETR) when to register with the Map-Servers next
        self._confirmed: set = set()  # Map-Servers that answered with a valid Map-Notify
        self._last_register = 0.0
        self.port_instance_ids = site_port_instance_ids(config)
        self.rloc_families = (4, 6) if config.underlay.rloc_ipv6 is not None else (4,)
        # learned from the switches when they connect
        self.lisp_ports: dict[str, int] = {}
        self.underlay_ports: dict[str, int] = {}
        self.underlay_mac: str | None = None
        self.next_hop_mac: str | None = None
        self.lisp_bridge: LispBridge | None = None
        self.alt_gre_ports: dict[str, int] = {}
        self.underlay_bridge = UnderlayBridge(
            config.underlay.rloc, control_rate_pps=config.control_rate, data_probe_prefixes=tuple(m.prefix for m in self.database)
            if self.etr_role else ())
        # state the flows mirror
        self.hosts: dict[tuple[int, IPv4Address | IPv6Address], Host] = {}
        self.installed: dict[EidPrefix, tuple[tuple[Flow, ...], Group | None]] = {}
        self._group_ids: dict[EidPrefix, int] = {}
        self._groups_in_use: set[int] = set()
        self._next_group = FIRST_GROUP_ID
        self._control_queue: deque = deque(maxlen=CONTROL_QUEUE)
        self._resolving: dict[tuple[int, IPv4Address | IPv6Address], _Resolving] = {}
        self._arp_asked_at: float | None = None
        self._flow_packets: dict[tuple, int] = {}

    # -- switch connection ----------------------------------------------------------------------

    def lisp_bridge_ready(self, ports: dict[str, int], macs: dict[str, str] | None = None) -> None:
        """The LISP bridge connected; ``ports`` maps port names to OpenFlow numbers, ``macs``
        port names to MAC addresses."""
        alt = self.config.alt
        wanted = list(self.port_instance_ids)
        if self.itr_role or self.etr_role:
            wanted.append(self.config.lisp_bridge.gpe_port)
        if alt is not None:
            wanted += [alt.port, *(n.gre_port for n in alt.neighbors)]
        missing = [n for n in wanted if n not in ports]
        if missing:
            raise LookupError(f"LISP bridge lacks port(s) {', '.join(missing)}")
        self.lisp_ports = dict(ports)
        c = self.config
        self.lisp_bridge = LispBridge(
            site_ports=tuple((ports[name], iid) for name, iid in self.port_instance_ids.items()),
            gpe_port=ports.get(c.lisp_bridge.gpe_port),
            local_prefixes=tuple(m.prefix for m in self.database),
            gateway_mac=c.site_gateway.mac, gateway_ipv4=c.site_gateway.ipv4,
            gateway_ipv6=c.site_gateway.ipv6, underlay_mtu=c.underlay.mtu,
            itr=self.itr_role, etr=self.etr_role, miss_rate_pps=c.miss_rate,
            **({} if alt is None else dict(
                alt_port=ports[alt.port], alt_mac=(macs or {}).get(alt.port),
                alt_address=alt.address,
                alt_peers=tuple((n.address, ports[n.gre_port]) for n in alt.neighbors),
                alt_last_hop=self.ms is not None)))
        self.alt_gre_ports = {} if alt is None else {
            str(n.address): ports[n.gre_port] for n in alt.neighbors}

    def underlay_bridge_ready(self, ports: dict[str, int], local_mac: str) -> None:
        if self.config.underlay.uplink_port not in ports:
            raise LookupError(f"underlay bridge lacks port {self.config.underlay.uplink_port}")
        self.underlay_ports = dict(ports)
        self.underlay_mac = local_mac

    def desired(self, bridge: str) -> tuple[list[Meter], list[Flow], list[Group]]:
        """Everything our flows should be on a bridge now (for reconciliation on connect)."""
        if bridge == UNDERLAY:
            return self.underlay_bridge.meters(), self.underlay_bridge.base_flows(), []
        b = self._lisp()
        flows = b.base_flows()
        groups = []
        for mflows, group in self.installed.values():
            flows.extend(mflows)
            if group is not None:
                groups.append(group)
        flows.extend(b.host_flow(h.instance_id, h.address, h.mac, h.port, HOST_IDLE_TIMEOUT)
                     for h in self.hosts.values())
        return b.meters(), flows, groups

    def _lisp(self) -> LispBridge:
        if self.lisp_bridge is None:
            raise RuntimeError("the LISP bridge has not connected yet")
        return self.lisp_bridge

    # -- packet-ins -----------------------------------------------------------------------------

    def on_packet_in(self, bridge: str, cookie: int, in_port: int, metadata: int, data: bytes,
                     now: float) -> list:
        kind = kind_of(cookie)
        try:
            frame = frames.parse_frame(data)
        except frames.FrameError as exc:
            self.stats.bad_header += 1
            LOG.debug("malformed packet-in dropped: %s", exc)
            return []
        if bridge == UNDERLAY:
            if kind == K_PUNT_CONTROL:
                return self._control(frame, data, now)
            if kind == K_PUNT_UNDERLAY_ARP:
                return self._underlay_arp(frame)
            if kind == K_PUNT_DATA_PROBE and self.etr is not None:
                return self._data_probe(frame, data, now)
        elif kind == K_PUNT_MISS and self.itr is not None:
            return self._miss(frame, data, in_port, metadata & 0xFFFFFF, now)
        elif kind == K_PUNT_TOO_BIG:
            return self._too_big(frame, data, in_port, metadata & 0xFFFFFF)
        elif kind == K_PUNT_RESOLVE:
            return self._resolve(frame, data, metadata & 0xFFFFFF, now)
        elif kind == K_PUNT_NEIGHBOR:
            return self._neighbor(frame, in_port)
        elif kind == K_PUNT_ALT_CONTROL:
            return self._control(frame, data, now)
        elif kind == K_PUNT_DATA_PROBE and (self.etr is not None or self.ms is not None):
            return self._data_probe(frame, data, now)
        self.stats.control_unexpected += 1
        return []

    def _miss(self, frame, data: bytes, in_port: int, iid: int, now: float) -> list:
        if frame.ip_dst is None:
            self.stats.bad_header += 1
            return []
        packet = BufferedPacket(data, in_port, iid)
        return self._carry_out(self.itr.on_miss(iid, frame.ip_src, frame.ip_dst, packet, now), now)

    def _too_big(self, frame, data: bytes, in_port: int, iid: int) -> list:
        gw = self.config.site_gateway
        source = gw.ipv4 if frame.ip_version == 4 else gw.ipv6
        if frame.ip_version is None or source is None:
            self.stats.dropped += 1
            return []
        self.stats.too_big += 1
        # the MTU the mapping's flow enforces: IPv6 locators cost 20 bytes more than IPv4 ones
        entry = self.cache.lookup(iid, frame.ip_dst) if frame.ip_dst is not None else None
        shares = select_shares(entry.locators, families=self.rloc_families) if entry else ()
        rloc_version = 6 if any(s.rloc.version == 6 for s in shares) else 4
        reply = frames.icmp_too_big(data, frame, inner_mtu(self.config.underlay.mtu,
                                                           rloc_version), gw.mac, source)
        return [PacketOut(LISP, reply, in_port)]

    def _resolve(self, frame, data: bytes, iid: int, now: float) -> list:
        """A packet for a local host whose MAC we do not know: hold it and ask for the host."""
        if frame.ip_dst is None:
            self.stats.bad_header += 1
            return []
        key = (iid, frame.ip_dst)
        state = self._resolving.setdefault(key, _Resolving())
        if len(state.packets) == state.packets.maxlen:
            self.stats.buffer_overflow += 1
        state.packets.append(data)
        if state.asked_at and now - state.asked_at < 1.0:
            return []
        state.asked_at = now
        return self._solicit(iid, frame.ip_dst)

    def _solicit(self, iid: int, target) -> list:
        gw = self.config.site_gateway
        ports = [p for name, p in self.lisp_ports.items()
                 if self.port_instance_ids.get(name) == iid]
        if target.version == 4 and gw.ipv4 is not None:
            data = frames.arp_request(gw.mac, gw.ipv4, target)
        elif target.version == 6 and gw.ipv6 is not None:
            data = frames.neighbor_solicitation(gw.mac, gw.ipv6, target)
        else:
            return []
        return [PacketOut(LISP, data, port) for port in ports]

    def _neighbor(self, frame, in_port: int) -> list:
        name = next((n for n, p in self.lisp_ports.items() if p == in_port), None)
        if name not in self.port_instance_ids:
            return []
        iid = self.port_instance_ids[name]
        gw = self.config.site_gateway
        if frame.arp_op == 2 and frame.arp_spa is not None:
            return self._learn_host(iid, frame.arp_spa, frame.arp_sha, in_port)
        if frame.icmpv6_type == 135 and gw.ipv6 is not None and frame.nd_target == gw.ipv6:
            out = []
            if frame.nd_lladdr and not frame.ip_src.is_unspecified:
                out.extend(self._learn_host(iid, frame.ip_src, frame.nd_lladdr, in_port))
            dst_ip = frame.ip_src if not frame.ip_src.is_unspecified else ip_address("ff02::1")
            reply = frames.neighbor_advertisement(gw.mac, frame.eth_src, gw.ipv6, dst_ip, gw.ipv6,
                                                  solicited=not frame.ip_src.is_unspecified)
            return out + [PacketOut(LISP, reply, in_port)]
        if frame.icmpv6_type == 136 and frame.nd_target is not None:
            return self._learn_host(iid, frame.nd_target, frame.nd_lladdr or frame.eth_src,
                                    in_port)
        return []

    def _learn_host(self, iid: int, address, mac: str | None, port: int) -> list:
        if mac is None or self.database.covering(EidPrefix(iid, ip_network(address))) is None:
            return []
        host = Host(iid, address, mac, port)
        self.hosts[(iid, address)] = host
        flow = self._lisp().host_flow(iid, address, mac, port, HOST_IDLE_TIMEOUT)
        out: list = [FlowChange(LISP, add=(flow,))]
        state = self._resolving.pop((iid, address), None)
        if state is not None:
            gw_mac = self.config.site_gateway.mac
            for data in state.packets:
                self.stats.reinjected += 1
                out.append(PacketOut(LISP, frames.mac_to_bytes(mac) + frames.mac_to_bytes(gw_mac)
                                     + data[12:], port))
        return out

    def host_expired(self, flow_match: dict) -> None:
        """A host flow idled out in the switch: forget the host (it is asked for again)."""
        for key, host in list(self.hosts.items()):
            field_name = "ipv4_dst" if host.address.version == 4 else "ipv6_dst"
            if flow_match.get(field_name) == str(host.address):
                del self.hosts[key]

    def _underlay_arp(self, frame) -> list:
        if frame.arp_spa != self.config.underlay.next_hop or frame.arp_sha is None:
            return []
        self.next_hop_mac = frame.arp_sha
        queued = list(self._control_queue)
        self._control_queue.clear()
        out = []
        for send in queued:
            if isinstance(send, SendDataProbe):
                out.extend(self._send_data_probe(send, 0.0))
            else:
                out.append(self._underlay_frame(send))
        return out

    def _control(self, frame, data: bytes, now: float) -> list:
        if frame.payload_offset is None or frame.ip_src is None:
            self.stats.control_malformed += 1
            return []
        payload = data[frame.payload_offset:frame.ip_offset + frame.ip_length]
        try:
            message = decode_control(payload)
        except DecodeError as exc:
            self.stats.control_malformed += 1
            LOG.info("malformed LISP control message from %s dropped: %s", frame.ip_src, exc)
            return []
        if isinstance(message, MapReply):
            if self.itr is None:
                self.stats.control_unexpected += 1
                return []
            return self._carry_out(self.itr.on_map_reply(message, now), now)
        if isinstance(message, MapRequest):
            return self._map_request(message, frame.sport, frame.ip_src, frame.ip_dst, now)
        if isinstance(message, EncapsulatedControlMessage) and isinstance(message.message,
                                                                          MapRequest):
            if self.mr is not None and not message.to_etr:
                return self._carry_out(self.mr.on_ecm(message), now)
            return self._map_request(message.message, message.source_port, message.source, None,
                                     now)
        if isinstance(message, MapRegister) and self.ms is not None:
            return self._carry_out(self.ms.on_map_register(payload, message, frame.ip_src,
                                                           frame.sport, now), now)
        if isinstance(message, MapNotify) and self.config.map_servers:
            return self._map_notify(payload, frame.ip_src)
        self.stats.control_unexpected += 1
        return []

    def _map_request(self, request: MapRequest, reply_port: int, source, probed, now: float):
        """A Map-Request: ours to answer as the ETR, or (as the ALT's last hop) the Map-Server's."""
        if self.etr is not None:
            try:
                ours = self.database.covering(request.records[0].prefix) is not None
            except ValueError:
                ours = False
            if ours or self.ms is None:
                return self._carry_out(self.etr.on_map_request(request, reply_port, probed), now)
        if self.ms is not None:
            return self._carry_out(self.ms.on_map_request(request, reply_port, source, now), now)
        self.stats.control_unexpected += 1
        return []

    def _map_notify(self, payload: bytes, source) -> list:
        target = next((m for m in self.config.map_servers if m.address == source), None)
        if target is not None and verify_authentication(payload, target.key):
            self.stats.registrations_confirmed += 1
            self._confirmed.add(target.address)
            if {m.address for m in self.config.map_servers} <= self._confirmed:
                self._next_register = max(self._next_register,
                                          self._last_register + REGISTER_INTERVAL)
        else:
            self.stats.control_unexpected += 1
            LOG.warning("Map-Notify from %s does not authenticate with our key", source)
        return []

    def _data_probe(self, frame, data: bytes, now: float) -> list:
        """A LISP data packet addressed to one of our EIDs: answer it as a Map-Request would be
        answered (the Map-Reply carries the probe's nonce) and deliver its inner packet."""
        try:
            header, inner_at = decode_data_header(data, frame.payload_offset)
            inner = frames.parse_frame(b"\0" * 12 + b"\x08\x00" + data[inner_at:])
        except (DecodeError, frames.FrameError, TypeError) as exc:
            self.stats.bad_header += 1
            LOG.info("malformed data probe from %s dropped: %s", frame.ip_src, exc)
            return []
        iid = header.instance_id if header.instance_id is not None else self.config.instance_id
        if inner.ip_dst != frame.ip_dst:
            self.stats.bad_header += 1  # not a data probe: outer and inner destinations differ
            return []
        wanted = EidPrefix(iid, ip_network(inner.ip_dst))
        local = self.database.covering(wanted) if self.etr is not None else None
        if local is None and self.ms is not None:
            # the ALT's last hop for a registered site: ask its ETR on the prober's behalf (the
            # inner packet cannot be delivered from here)
            self.stats.data_probes_relayed += 1
            request = MapRequest(header.nonce or 0, (EidRecord.for_prefix(wanted),),
                                 (frame.ip_src,), source_eid=inner.ip_src)
            return self._carry_out(self.ms.on_map_request(request, 4342, inner.ip_src, now), now)
        if local is None:
            self.stats.requests_not_ours += 1
            return []
        self.stats.data_probes_received += 1
        self.stats.replies_sent += 1
        reply = MapReply(nonce=header.nonce or 0, records=(local.record(),))
        effects = self._send_control(SendControl(frame.ip_src, reply.encode()), now)
        inner_frame = b"\0" * 12 + b"\x08\x00" + data[inner_at:inner_at + inner.ip_length]
        return effects + self._deliver(iid, inner.ip_dst, inner_frame, now)

    def _deliver(self, iid: int, address, data: bytes, now: float) -> list:
        """Hand a packet to a local host: straight to it when known, else after asking for it."""
        host = self.hosts.get((iid, address))
        if host is None:
            return self._resolve(frames.parse_frame(data), data, iid, now)
        self.stats.reinjected += 1
        return [PacketOut(LISP, frames.mac_to_bytes(host.mac)
                          + frames.mac_to_bytes(self.config.site_gateway.mac) + data[12:],
                          host.port)]

    def on_start(self, now: float) -> list:
        """What to do when the controller starts: as the ETR on the ALT, announce the site's
        EID prefixes."""
        if self.config.alt is None or not self.etr_role:
            return []
        return [Announce(m.prefix) for m in self.database]

    # -- timers and statistics ------------------------------------------------------------------

    def on_timer(self, now: float) -> list:
        actions = self.itr.on_timer(now) if self.itr is not None else []
        if self.ms is not None:
            actions += self.ms.on_timer(now)
        if self.config.map_servers and self.etr is not None and now >= self._next_register:
            everyone = {m.address for m in self.config.map_servers} <= self._confirmed
            self._next_register = now + (REGISTER_INTERVAL if everyone else REGISTER_RETRY)
            self._last_register = now
            actions += self._registrations()
        return self._carry_out(actions, now)

    def next_deadline(self) -> float | None:
        times = [t for t in (self.itr.next_deadline() if self.itr else None,
                             self.ms.next_deadline() if self.ms else None,
                             self._next_register if self.config.map_servers else None)
                 if t is not None]
        return min(times) if times else None

    def _registrations(self) -> list:
        """(ETR) A Map-Register of every local mapping for each configured Map-Server."""
        records = tuple(m.record() for m in self.database)
        out = []
        for ms in self.config.map_servers:
            msg = sign(MapRegister(self.rng.getrandbits(64), records,
                                   proxy_reply=ms.proxy_reply, want_map_notify=True),
                       ms.key, ms.key_id)
            out.append(SendControl(ms.address, msg.encode()))
            self.stats.registers_sent += 1
        return out

    def traffic_watch(self, now: float, horizon: float) -> list[Flow]:
        """The encapsulation flows whose counters the ITR needs: those of cached Map-Reply
        entries whose "in use" window (``activity_window`` before the refresh point) opens
        within ``horizon`` seconds or is open. Watching them starts just before the window
        opens, so that traffic inside it shows as a counter increase; other flows' counters
        are never fetched one by one (a big map-cache costs the poll nothing)."""
        if self.itr is None:
            return []
        s = self.itr.settings
        out: list[Flow] = []
        for entry in self.cache.expiring_by(now + horizon + s.refresh_before + s.activity_window):
            if entry.source == SOURCE_REPLY:
                flows, _group = self.installed.get(entry.prefix, ((), None))
                out.extend(f for f in flows if kind_of(f.cookie) == K_ENCAP)
        return out

    def on_flow_stats(self, bridge: str, stats: list[tuple[int, int, int, tuple, int]],
                      now: float) -> None:
        """Counters of watched flows: (cookie, table, priority, match, packet_count) each.
        Tells the ITR which mappings carried traffic since the last look. Flows no longer in
        the list are forgotten."""
        if bridge != LISP:
            return
        by_key = {}
        for prefix, (flows, _group) in self.installed.items():
            for f in flows:
                by_key[f.key] = prefix
        seen: dict[tuple, int] = {}
        for cookie_value, table, priority, match_key, packets in stats:
            if kind_of(cookie_value) != K_ENCAP:
                continue
            key = (table, priority, match_key)
            prefix = by_key.get(key)
            if prefix is not None and packets > self._flow_packets.get(key, 0):
                if self.itr is not None:
                    self.itr.note_traffic(prefix, now)
            seen[key] = packets
        self._flow_packets = seen

    def on_counters(self, sent: int, delivered: int, dropped: int, received: int = 0) -> None:
        """The switch's packet counts over all encapsulation, delivery, negative and
        decapsulation flows."""
        self.stats.sent, self.stats.delivered, self.stats.dropped = sent, delivered, dropped
        self.stats.received = received

    # -- operator commands ----------------------------------------------------------------------

    def add_static(self, prefix: EidPrefix, locators: tuple[Locator, ...], now: float) -> list:
        if self.itr is None:
            raise ValueError("static map-cache entries need the itr or xtr role")
        return self._carry_out(self.itr.add_static(prefix, locators, now), now)

    def add_static_many(self, mappings, now: float) -> list:
        """Many operator mappings at once (``(prefix, locators)`` pairs); their effects in order.
        The bulk API sends the resulting flows to the switch in one bundle."""
        if self.itr is None:
            raise ValueError("static map-cache entries need the itr or xtr role")
        actions: list = []
        for prefix, locators in mappings:
            actions.extend(self.itr.add_static(prefix, locators, now))
        return self._carry_out(actions, now)

    def remove_mapping(self, prefix: EidPrefix, now: float) -> list:
        if self.itr is None:
            return []
        return self._carry_out(self.itr.remove(prefix), now)

    # -- engine actions -> effects --------------------------------------------------------------

    def _carry_out(self, actions: list, now: float) -> list:
        out: list = []
        for act in actions:
            if isinstance(act, SendControl):
                out.extend(self._send_control(act, now))
            elif isinstance(act, InstallMapping):
                out.extend(self._install(act.entry))
            elif isinstance(act, RemoveMapping):
                out.extend(self._uninstall(act.entry.prefix))
            elif isinstance(act, Reinject):
                out.extend(PacketOut(LISP, p.data, OFPP_TABLE, p.in_port) for p in act.packets)
            elif isinstance(act, SendDataProbe):
                out.extend(self._send_data_probe(act, now))
            elif isinstance(act, SendOverAlt):
                out.extend(self._send_over_alt(act))
            elif isinstance(act, ForwardOverAlt):
                port = self.alt_gre_ports.get(act.neighbor)
                if port is not None:
                    out.append(PacketOut(LISP, frames.udp_frame(
                        ALT_PEER_MAC, ALT_PEER_MAC, act.source, act.destination, act.source_port,
                        4342, act.payload), port))
            elif isinstance(act, (Announce, Withdraw)):
                out.append(act)  # the shell hands it to the ALT adapter
        return out

    def _send_control(self, send: SendControl, now: float) -> list:
        if send.destination.version != 4:
            self.stats.control_unexpected += 1
            return []
        if self.next_hop_mac is None or self.underlay_mac is None:
            self._control_queue.append(send)
            return self._ask_next_hop(now)
        return [self._underlay_frame(send)]

    def _alt_port_for(self, eid) -> int | None:
        route = self.alt_rib.lookup(eid) if self.alt_rib is not None else None
        if route is None:
            self.stats.alt_no_route += 1
            return None
        return self.alt_gre_ports.get(route.neighbor)

    def _send_over_alt(self, send: SendOverAlt) -> list:
        port = self._alt_port_for(send.eid)
        if port is None:
            return []
        data = frames.udp_frame(ALT_PEER_MAC, ALT_PEER_MAC, self.config.alt.address, send.eid,
                                send.source_port, 4342, send.payload)
        return [PacketOut(LISP, data, port)]

    def _send_data_probe(self, probe: SendDataProbe, now: float) -> list:
        """The held packet, LISP-encapsulated with outer destination = inner destination."""
        try:
            f = frames.parse_frame(probe.packet.data)
        except frames.FrameError:
            return []
        inner = probe.packet.data[f.ip_offset:f.ip_offset + f.ip_length]
        header = DataHeader(instance_id=probe.packet.instance_id, nonce=probe.nonce).encode()
        sport = 0xC000 | (hash((f.ip_src, f.ip_dst, f.sport, f.dport)) & 0x3FFF)
        u = self.config.underlay
        if self.config.alt is not None:  # over the ALT; the ETR answers our RLOC, the source
            port = self._alt_port_for(f.ip_dst)
            if port is None:
                return []
            return [PacketOut(LISP, frames.udp_frame(ALT_PEER_MAC, ALT_PEER_MAC, u.rloc,
                                                     f.ip_dst, sport, LISP_DATA_PORT,
                                                     header + inner), port)]
        if self.next_hop_mac is None or self.underlay_mac is None:
            self._control_queue.append(probe)
            return self._ask_next_hop(now)
        data = frames.udp_frame(self.underlay_mac, self.next_hop_mac, u.rloc, f.ip_dst, sport,
                                LISP_DATA_PORT, header + inner)
        return [PacketOut(UNDERLAY, data, self.underlay_ports[u.uplink_port])]

    def _ask_next_hop(self, now: float) -> list:
        if self.underlay_mac is None or (self._arp_asked_at is not None
                                         and now - self._arp_asked_at < 1.0):
            return []
        self._arp_asked_at = now
        u = self.config.underlay
        return [PacketOut(UNDERLAY, frames.arp_request(self.underlay_mac, u.rloc, u.next_hop),
                          self.underlay_ports[u.uplink_port])]

    def warm_underlay(self, now: float) -> list:
        """Resolve the underlay next hops right away. OVS's native tunnelling learns their MACs
        from the replies (it snoops every ARP/ND reply its bridges handle), so the first
        encapsulated packet is not dropped while OVS resolves the next hop itself."""
        self._arp_asked_at = None
        out = self._ask_next_hop(now)
        u = self.config.underlay
        if u.rloc_ipv6 is not None and u.next_hop_ipv6 is not None and self.underlay_mac:
            out.append(PacketOut(UNDERLAY, frames.neighbor_solicitation(
                self.underlay_mac, u.rloc_ipv6, u.next_hop_ipv6), self.underlay_ports[u.uplink_port]))
        return out

    def retry_next_hop(self, now: float) -> list:
        """Called periodically: ask again while control messages wait for the next hop."""
        if self._control_queue and self.next_hop_mac is None:
            return self._ask_next_hop(now)
        return []

    def _underlay_frame(self, send: SendControl) -> PacketOut:
        u = self.config.underlay
        data = frames.udp_frame(self.underlay_mac, self.next_hop_mac, u.rloc, send.destination,
                                send.source_port, send.dest_port, send.payload)
        return PacketOut(UNDERLAY, data, self.underlay_ports[u.uplink_port])

    def _install(self, entry: CacheEntry) -> list:
        if self.lisp_bridge is None:
            return []  # programmed with everything else when the bridge connects
        shares = select_shares(entry.locators, families=self.rloc_families)
        group_id = self._group_for(entry.prefix) if len(shares) > 1 else None
        flows, group = self.lisp_bridge.mapping_flows(entry, shares, group_id)
        old_flows, old_group = self.installed.get(entry.prefix, ((), None))
        self.installed[entry.prefix] = (tuple(flows), group)
        new_keys = {f.key for f in flows}
        stale = tuple(f for f in old_flows if f.key not in new_keys)
        drop_group = ()
        if old_group is not None and group is None:
            drop_group = (self._release_group(entry.prefix),)
        return [FlowChange(LISP, add=tuple(flows), delete=stale,
                           groups=(group,) if group else (), delete_groups=drop_group)]

    def _uninstall(self, prefix: EidPrefix) -> list:
        old_flows, old_group = self.installed.pop(prefix, ((), None))
        drop_group = (self._release_group(prefix),) if old_group is not None else ()
        if not old_flows and not drop_group:
            return []
        return [FlowChange(LISP, delete=old_flows, delete_groups=drop_group)]

    def _group_for(self, prefix: EidPrefix) -> int:
        """The mapping's select group id. Ids are handed out in a rising sequence and not reused
        until it wraps: OVS loses a packet-out sent through a group re-added under the id of
        one just deleted (measured: the held packet re-injected after a Map-Reply, in 3 of 5
        tries right after a controller restart)."""
        gid = self._group_ids.get(prefix)
        if gid is None:
            gid = self._next_group
            while gid in self._groups_in_use:
                gid = gid + 1 if gid < LAST_GROUP_ID else FIRST_GROUP_ID
            self._next_group = gid + 1 if gid < LAST_GROUP_ID else FIRST_GROUP_ID
            self._group_ids[prefix] = gid
            self._groups_in_use.add(gid)
        return gid

    def avoid_group_ids(self, ids) -> None:
        """Group ids the switch holds from before (a previous controller's): new groups take
        ids above them, so that none is deleted and re-added under the same id."""
        top = max((i for i in ids if FIRST_GROUP_ID <= i <= LAST_GROUP_ID), default=None)
        if top is not None and top >= self._next_group:
            self._next_group = top + 1 if top < LAST_GROUP_ID else FIRST_GROUP_ID

    def group_ids(self) -> dict[EidPrefix, int]:
        """The select group of each mapping that has one."""
        return dict(self._group_ids)

    def _release_group(self, prefix: EidPrefix) -> int:
        gid = self._group_ids.pop(prefix)
        self._groups_in_use.discard(gid)
        return gid

    def reprogram_mappings(self) -> None:
        """Recompile every cached mapping (the LISP bridge connected or its ports changed).
        Mappings keep their group ids, so a reconnect modifies those groups in place."""
        self.installed.clear()
        for entry in self.cache:
            self._install(entry)
        for prefix in [p for p in self._group_ids if self.installed.get(p, ((), None))[1] is None]:
            self._release_group(prefix)
