"""The xTR orchestrator, sans I/O: packet-ins and timers in, packet-outs, flow changes and ALT
announcements out.

It composes the engines of :mod:`lisp_app.control` (built by :mod:`lisp_app.node.assembly`):
it routes each packet-in by (bridge, flow kind) to the engine that handles it, and carries out
what the engines ask for through a table keyed by the action's type. Every change to the
map-cache goes out as a :class:`~lisp_app.dataplane.effects.FlowChange` at once, so cache and
flows never disagree. The os-ken application (``lisp_app.app``) only translates the effects into
OpenFlow and hands ALT announcements to the BGP speaker's adapter.
"""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address

from ..config import Config
from ..alt.effects import Announce, Withdraw
from ..control.actions import (BufferedPacket, Deliver, InstallMapping, InstallNewMappings,
                               Reinject, RemoveMapping, SendControl, SendDataProbe, SendOverAlt)
from ..control.counting import CarriedCounts, FlowCounts
from ..control.map_resolver import ForwardOverAlt
from ..control.prober import LocatorChange
from ..mapping.cache import SOURCE_REPLY
from ..dataplane import frames
from ..logs import Summary
from ..dataplane.effects import LISP, UNDERLAY, FlowChange, PacketOut
from ..dataplane.flows import OFPP_TABLE, Flow, Group, Meter
from ..dataplane.pipeline import (K_PUNT_ALT_CONTROL, K_PUNT_CONTROL, K_PUNT_DATA_PROBE,
                                  K_PUNT_MISS, K_PUNT_NEIGHBOR, K_PUNT_RESOLVE, K_PUNT_TOO_BIG,
                                  K_PUNT_UNDERLAY_ARP, K_PUNT_UNDERLAY_ND, METADATA_MASK,
                                  LispBridge, inner_mtu, kind_of)
from ..protocol import EidPrefix, Locator
from ..mapping.database import LocalMapping
from .assembly import build, lisp_bridge_of, required_lisp_ports
from .control_plane import ControlPlane, Received
from .queries import NodeQueries

LOG = logging.getLogger(__name__)
NO_FAMILY = Summary(LOG, "control messages dropped for want of an RLOC of their family")


class Xtr:
    """One LISP node: an xTR, or a Map-Server/Map-Resolver, as its config says."""

    def __init__(self, config: Config, rng: random.Random | None = None, alt_rib=None):
        self.config = config
        self.rng = rng or random.SystemRandom()
        e = build(config, self.rng, alt_rib)
        self.stats, self.cache, self.database = e.stats, e.cache, e.database
        self.itr, self.etr, self.ms, self.mr = e.itr, e.etr, e.ms, e.mr
        self.next_hop, self.installer, self.site, self.alt = e.next_hop, e.installer, e.site, e.alt
        self.probes, self.registrar, self.watch = e.probes, e.registrar, e.watch
        self.prober, self.smr = e.prober, e.smr
        self.underlay_bridge = e.underlay_bridge
        self.etr_role = self.etr is not None
        self.lisp_bridge: LispBridge | None = None
        self.lisp_ports: dict[str, int] = {}
        self.lisp_macs: dict[str, str] = {}
        self.queries = NodeQueries(self)  # what the API reads
        # the switch's and the classic programs' counters, monotonic, into stats' own fields
        self.flow_counts = FlowCounts(self.stats)
        self.classic_counts = CarriedCounts(self.stats)
        self._punts = self._punt_table()
        self.control = ControlPlane(self.stats, itr=self.itr, etr=self.etr,
                                    database=self.database, ms=self.ms, mr=self.mr,
                                    registrar=self.registrar, prober=self.prober)
        self._actions = {
            SendControl: self._send_control, InstallMapping: self._install,
            InstallNewMappings: self._install_new,
            RemoveMapping: self._uninstall, LocatorChange: self._locator_changed,
            Reinject: lambda a, now: [PacketOut(LISP, p.data, OFPP_TABLE, p.in_port)
                                      for p in a.packets],
            SendDataProbe: self.probes.send,
            SendOverAlt: lambda a, now: self.alt.map_request(a) if self.alt else [],
            ForwardOverAlt: lambda a, now: self.alt.forward(a) if self.alt else [],
            Deliver: lambda a, now: self.site.deliver(a.instance_id, a.address, a.frame, now),
            Announce: lambda a, now: [a], Withdraw: lambda a, now: [a]}  # for the ALT adapter

    def _punt_table(self) -> dict:
        """(bridge, flow kind) -> handler(frame, data, in_port, instance_id, now)."""
        table = {(UNDERLAY, K_PUNT_CONTROL): self._control,
                 (UNDERLAY, K_PUNT_UNDERLAY_ARP): self._underlay_arp,
                 (UNDERLAY, K_PUNT_UNDERLAY_ND): self._underlay_nd,
                 (LISP, K_PUNT_TOO_BIG): self._too_big,
                 (LISP, K_PUNT_RESOLVE): self._resolve,
                 (LISP, K_PUNT_NEIGHBOR): self._neighbor,
                 (LISP, K_PUNT_ALT_CONTROL): self._control}
        if self.etr is not None:
            table[(UNDERLAY, K_PUNT_DATA_PROBE)] = self._data_probe
        if self.etr is not None or self.ms is not None:
            table[(LISP, K_PUNT_DATA_PROBE)] = self._data_probe
        if self.itr is not None:
            table[(LISP, K_PUNT_MISS)] = self._miss
        return table

    # -- switch connection ----------------------------------------------------------------------

    def lisp_bridge_ready(self, ports: dict[str, int], macs: dict[str, str] | None = None) -> None:
        """The LISP bridge connected; ``ports`` maps port names to OpenFlow numbers, ``macs``
        port names to MAC addresses."""
        missing = [n for n in required_lisp_ports(self.config) if n not in ports]
        if missing:
            raise LookupError(f"LISP bridge lacks port(s) {', '.join(missing)}")
        self.lisp_ports, self.lisp_macs = dict(ports), dict(macs or {})  # for a reload
        self.lisp_bridge = lisp_bridge_of(self.config, self.database, ports, macs,
                                          self.ms is not None)
        self.installer.attach(self.lisp_bridge)
        self.site.attach(self.lisp_bridge, ports)
        alt = self.config.alt
        if self.alt is not None:
            self.alt.attach({str(n.address): ports[n.gre_port] for n in alt.neighbors})

    def underlay_bridge_ready(self, ports: dict[str, int], local_mac: str) -> None:
        u = self.config.underlay
        for name in (u.uplink_port, u.native_port):
            if name is not None and name not in ports:
                raise LookupError(f"underlay bridge lacks port {name}")
        self.next_hop.connected(ports[u.uplink_port], local_mac)
        if u.native_port is not None and self.config.natively_forward.mode == "native":
            native_ids = {self.config.instance_id}
            self.underlay_bridge = replace(
                self.underlay_bridge, native_port=ports[u.native_port], local_mac=local_mac,
                native_prefixes=tuple(m.prefix for m in self.database
                                      if m.prefix.instance_id in native_ids))

    def desired(self, bridge: str) -> tuple[list[Meter], list[Flow], list[Group]]:
        """Everything our flows should be on a bridge now (for reconciliation on connect)."""
        if bridge == UNDERLAY:
            return self.underlay_bridge.meters(), self.underlay_bridge.base_flows(), []
        if self.lisp_bridge is None:
            raise RuntimeError("the LISP bridge has not connected yet")
        mapping_flows, groups = self.installer.everything()
        flows = self.lisp_bridge.base_flows() + mapping_flows + self.site.flows()
        return self.lisp_bridge.meters(), flows, groups

    def avoid_group_ids(self, ids) -> None:
        """Group ids the switch holds from before: new groups take ids above them."""
        self.installer.groups.avoid(ids)

    def group_ids(self) -> dict[EidPrefix, int]:
        """The select group of each mapping that has one."""
        return self.installer.groups.owners()

    def reprogram_mappings(self) -> None:
        """Recompile every cached mapping (the LISP bridge connected or its ports changed)."""
        self.installer.reprogram(self.cache)

    def host_expired(self, flow_match: dict) -> None:
        self.site.expired(flow_match)

    # -- packet-ins -----------------------------------------------------------------------------

    def on_packet_in(self, bridge: str, cookie: int, in_port: int, metadata: int, data: bytes,
                     now: float) -> list:
        handler = self._punts.get((bridge, kind_of(cookie)))
        try:
            frame = frames.parse_frame(data)
        except frames.FrameError as exc:
            self.stats.bad_header += 1
            LOG.debug("malformed packet-in dropped: %s", exc)
            return []
        if handler is None:
            self.stats.control_unexpected += 1
            return []
        return handler(frame, data, in_port, metadata & METADATA_MASK, now)

    def _miss(self, frame, data: bytes, in_port: int, iid: int, now: float) -> list:
        if frame.ip_dst is None:
            self.stats.bad_header += 1
            return []
        packet = BufferedPacket(data, in_port, iid)
        return self.carry_out(self.itr.on_miss(iid, frame.ip_src, frame.ip_dst, packet, now), now)

    def _too_big(self, frame, data: bytes, in_port: int, iid: int, now: float) -> list:
        gw = self.config.site_gateway
        source = gw.ipv4 if frame.ip_version == 4 else gw.ipv6
        if frame.ip_version is None or source is None:
            self.stats.too_big_dropped += 1
            return []
        self.stats.too_big += 1
        # the MTU the mapping's flow enforces: IPv6 locators cost 20 bytes more than IPv4 ones
        entry = self.cache.lookup(iid, frame.ip_dst) if frame.ip_dst is not None else None
        shares = self.installer.shares(entry) if entry else ()
        rloc_version = 6 if any(s.rloc.version == 6 for s in shares) else 4
        reply = frames.icmp_too_big(data, frame, inner_mtu(self.config.underlay.mtu,
                                                           rloc_version), gw.mac, source)
        return [PacketOut(LISP, reply, in_port)]

    def _resolve(self, frame, data: bytes, in_port: int, iid: int, now: float) -> list:
        return self.site.resolve(frame, data, iid, now)

    def _neighbor(self, frame, data: bytes, in_port: int, iid: int, now: float) -> list:
        return self.site.on_neighbor(frame, in_port)

    def _underlay_arp(self, frame, data: bytes, in_port: int, iid: int, now: float) -> list:
        return self.carry_out(self.next_hop.on_arp_reply(frame), now)

    def _underlay_nd(self, frame, data: bytes, in_port: int, iid: int, now: float) -> list:
        return self.carry_out(self.next_hop.on_neighbor_advert(frame), now)

    def _data_probe(self, frame, data: bytes, in_port: int, iid: int, now: float) -> list:
        return self.carry_out(self.probes.on_probe(frame, data, now), now)

    def _control(self, frame, data: bytes, in_port: int, iid: int, now: float) -> list:
        if frame.payload_offset is None or frame.ip_src is None:
            self.stats.control_malformed += 1
            return []
        payload = data[frame.payload_offset:frame.ip_offset + frame.ip_length]
        return self.carry_out(self.control.on_payload(
            payload, Received(frame.ip_src, frame.sport, frame.ip_dst), now), now)

    # -- timers, statistics, start --------------------------------------------------------------

    def on_start(self, now: float) -> list:
        """As the ETR on the ALT, announce the site's EID prefixes."""
        if self.config.alt is None or not self.etr_role:
            return []
        return [Announce(m.prefix) for m in self.database]

    def on_timer(self, now: float) -> list:
        actions = self.itr.on_timer(now) if self.itr is not None else []
        if self.ms is not None:
            actions += self.ms.on_timer(now)
        if self.registrar is not None:
            actions += self.registrar.on_timer(now)
        if self.prober is not None:
            probes, changes = self.prober.on_timer(now)
            actions += probes + changes
        if self.smr is not None:
            actions += self.smr.on_timer(now)
        return self.carry_out(actions, now)

    def next_deadline(self) -> float | None:
        times = [t for t in (self.itr.next_deadline() if self.itr else None,
                             self.ms.next_deadline() if self.ms else None,
                             self.registrar.next_deadline() if self.registrar else None,
                             self.prober.next_deadline() if self.prober else None,
                             self.smr.next_deadline() if self.smr else None)
                 if t is not None]
        return min(times) if times else None

    def warm_underlay(self, now: float) -> list:
        return self.next_hop.warm(now)

    def retry_next_hop(self, now: float) -> list:
        return self.next_hop.retry(now)

    def traffic_watch(self, now: float, horizon: float) -> list[Flow]:
        return self.watch.watched(now, horizon)

    def on_flow_stats(self, bridge: str, stats: list, now: float) -> None:
        if bridge == LISP:
            self.watch.on_flow_stats(stats, now)

    # -- operator commands ----------------------------------------------------------------------

    def add_static(self, prefix: EidPrefix, locators: tuple[Locator, ...], now: float) -> list:
        return self.add_static_many(((prefix, locators),), now)

    def add_static_many(self, mappings, now: float) -> list:
        """Operator mappings (``(prefix, locators)`` pairs); their effects in order. The bulk
        API sends the resulting flows to the switch in one bundle."""
        if self.itr is None:
            raise ValueError("static map-cache entries need the itr or xtr role")
        return self.carry_out(self.itr.add_static_many(mappings, now), now)

    def set_local_locators(self, prefix: EidPrefix, locators: tuple[Locator, ...],
                           ttl: int | None, now: float) -> list:
        """The operator changes the locators (and TTL) of one of the site's EID prefixes: later
        Map-Replies carry them, the Map-Servers get a Map-Register at once, and the ITRs that
        asked for the prefix within the TTL of their answer get a Solicit-Map-Request."""
        if self.etr is None:
            raise ValueError("local EID prefixes need the etr or xtr role")
        old = next((m for m in self.database if m.prefix == prefix), None)
        if old is None:
            raise LookupError(f"{prefix} is not one of this site's EID prefixes")
        rloc = self.config.underlay.rloc
        locators = tuple(Locator(l.address, l.priority, l.weight, l.m_priority, l.m_weight,
                                 l.address == rloc, False, l.reachable) for l in locators)
        self.database.add(LocalMapping(prefix, locators, old.ttl if ttl is None else ttl))
        # RLOC-probes to the new locators are ours to answer: the underlay bridge punts them
        before = set(self.underlay_bridge.base_flows())
        self.underlay_bridge = replace(self.underlay_bridge, other_rlocs=tuple(dict.fromkeys(
            (*self.underlay_bridge.other_rlocs,
             *(l.address for l in locators if type(l.address) in (IPv4Address, IPv6Address))))))
        added = tuple(f for f in self.underlay_bridge.base_flows() if f not in before)
        effects = [FlowChange(UNDERLAY, add=added)] if added else []
        actions: list = []
        if self.registrar is not None:
            actions += self.registrar.register_now(now)
        if self.smr is not None:
            queued = self.smr.on_change(prefix, now)
            LOG.info("local mapping %s changed: %d SMR(s) to send", prefix, queued)
            actions += self.smr.on_timer(now)
        return effects + self.carry_out(actions, now)

    def remove_mapping(self, prefix: EidPrefix, now: float) -> list:
        if self.itr is None:
            return []
        return self.carry_out(self.itr.remove(prefix), now)

    # -- engine actions -> effects --------------------------------------------------------------

    def carry_out(self, actions: list, now: float) -> list:
        """The effects of the engines' actions, each through its handler in the table."""
        out: list = []
        for act in actions:
            out.extend(self._actions[type(act)](act, now))
        return out

    def _send_control(self, send: SendControl, now: float) -> list:
        """Out of the uplink from our RLOC of the destination's family (an IPv6 destination
        needs ``underlay.rloc_ipv6``; without it the message is counted and dropped)."""
        hop, destination = self.next_hop, send.destination
        if not hop.reaches(destination):
            self.stats.control_send_failed += 1
            NO_FAMILY(destination, "no RLOC of %s's family: control message dropped",
                      destination)
            return []
        if not hop.resolved_for(destination.version):
            return hop.hold(send, now, destination.version)
        return [hop.udp(send.source or hop.source_for(destination), destination,
                        send.source_port, send.dest_port, send.payload)]

    def _install(self, act: InstallMapping, now: float) -> list:
        if self.prober is not None:
            targets = self.installer.probe_targets
            self.prober.track(act.entry.prefix, targets(act.entry), now,
                              targets(act.replaced) if act.replaced is not None else ())
        return self.installer.install(act.entry)

    def _install_new(self, act: InstallNewMappings, now: float) -> list:
        """New mappings (a bulk load's), taken together by locators object and action (on
        which their probe targets and flows depend): probing learns each set's prefixes in one
        update, and the installer places and compiles each set once."""
        sets: dict = {}  # (id(locators), action) -> entries (which hold the locators object)
        for entry in act.entries:
            key = (id(entry.locators), entry.action)
            same = sets.get(key)
            if same is None:
                same = sets[key] = []
            same.append(entry)
        out: list = []
        for entries in sets.values():
            if self.prober is not None:
                self.prober.track_new([e.prefix for e in entries],
                                      self.installer.probe_targets(entries[0]), now)
            out += self.installer.install_new(entries)
        return out

    def _uninstall(self, act: RemoveMapping, now: float) -> list:
        if self.prober is not None:
            self.prober.untrack(act.entry.prefix, self.installer.probe_targets(act.entry))
        return self.installer.uninstall(act.entry.prefix)

    def _locator_changed(self, change: LocatorChange, now: float) -> list:
        """Probing found a locator down (or back up): recompile the mappings that use it, so
        that their traffic moves; a mapping from a Map-Reply left with no usable locator is
        asked for again."""
        out: list = []
        for prefix in change.prefixes:
            entry = self.cache.get(prefix)
            if entry is None:
                continue
            out += self.installer.install(entry)
            if (not change.up and self.itr is not None and entry.source == SOURCE_REPLY
                    and not self.installer.shares(entry)):
                out += self.carry_out(self.itr.request_again(entry, now), now)
        return out
