"""Building a node's engines from its configuration (the only place that reads the config's
engine settings), so that the orchestrator only composes them."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from ..config import Config, local_prefixes, local_rlocs, site_port_instance_ids
from ..control.alt_path import AltPath
from ..control.etr import EtrEngine
from ..control.hosts import Gateway, SiteHosts
from ..control.installer import FlowInstaller
from ..control.itr import ItrEngine, ItrSettings
from ..control.map_resolver import MapResolverEngine
from ..control.map_server import MapServerEngine, MsSite
from ..control.mapstat import MapStat
from ..control.next_hop import UnderlayNextHop
from ..control.prober import Prober, ProbeSettings
from ..control.probes import DataProbes
from ..control.registration import Registrar
from ..control.smr import SmrSender
from ..control.traffic import TrafficWatch
from ..dataplane.pipeline import LispBridge, UnderlayBridge
from ..mapping.cache import MapCache
from ..mapping.database import LocalDatabase, LocalMapping
from ..protocol.records import Locator

LOG = logging.getLogger(__name__)


@dataclass
class Engines:
    """Everything a node is made of; None where its role does not need the part."""

    stats: MapStat
    cache: MapCache
    database: LocalDatabase
    itr: ItrEngine | None
    etr: EtrEngine | None
    ms: MapServerEngine | None
    mr: MapResolverEngine | None
    next_hop: UnderlayNextHop
    installer: FlowInstaller
    site: SiteHosts
    alt: AltPath | None
    probes: DataProbes
    prober: Prober | None
    smr: SmrSender | None
    registrar: Registrar | None
    watch: TrafficWatch
    underlay_bridge: UnderlayBridge


def database_of(config: Config) -> LocalDatabase:
    return LocalDatabase(
        LocalMapping(prefix, tuple(Locator(l.rloc, l.priority, l.weight,
                                           local=l.rloc == config.underlay.rloc) for l in locs),
                     ttl)
        for prefix, locs, ttl in local_prefixes(config))


def itr_settings(config: Config) -> ItrSettings:
    t, b = config.timers, config.buffer
    return ItrSettings(
        itr_rlocs=tuple(r for r in (config.underlay.rloc, config.underlay.rloc_ipv6)
                        if r is not None), map_resolvers=config.map_resolvers,
        map_request_targets=config.map_request_targets, request_timeout=t.request_timeout,
        request_retries=t.request_retries, request_min_interval=t.request_min_interval,
        request_holddown=t.request_holddown, refresh_before=t.refresh_before,
        request_holddown_first=t.request_holddown_first, request_rate=t.request_rate,
        request_rate_per_source=t.request_rate_per_source,
        buffer_per_destination=b.per_destination, buffer_total=b.total,
        buffer_per_source=b.per_source, pending_per_source=b.requests_per_source,
        pending_total=b.requests_total,
        data_probes=config.data_probes, use_alt=config.alt is not None)


def build(config: Config, rng: random.Random, alt_rib=None) -> Engines:
    itr_role, etr_role = config.role in ("itr", "xtr"), config.role in ("etr", "xtr")
    stats, cache, database = MapStat(), MapCache(), database_of(config)
    u = config.underlay
    itr = ItrEngine(itr_settings(config), cache, stats, rng) if itr_role else None
    ms = map_server_of(config)
    mr = map_resolver_of(config, ms, alt_rib)
    next_hop = UnderlayNextHop(u.rloc, u.next_hop, u.rloc_ipv6, u.next_hop_ipv6)
    families = (4, 6) if u.rloc_ipv6 is not None else (4,)  # of our RLOCs
    prober = prober_of(config, stats, rng, next_hop) if itr_role else None
    nf = config.natively_forward
    installer = FlowInstaller(families, prober.is_down if prober is not None else None,
                              petrs=tuple(Locator(p, 1, 100) for p in nf.petrs)
                              if nf.mode == "petr" else ())
    if itr_role and nf.mode == "native" and config.lisp_bridge.native_port is None:
        LOG.warning("natively-forward mappings will drop their traffic: no native path "
                    "(lisp_bridge.native_port and underlay.native_port); say "
                    "natively_forward: {mode: drop} to mean it, or mode: petr")
    smr = SmrSender(itr_settings(config).itr_rlocs, stats, rng,
                    reaches=next_hop.reaches) if etr_role else None
    gw = config.site_gateway
    alt = AltPath(alt_rib, config.alt.address, stats) if config.alt is not None else None
    return Engines(
        stats=stats, cache=cache, database=database, itr=itr,
        etr=EtrEngine(database, stats, families, smr) if etr_role else None, ms=ms, mr=mr,
        next_hop=next_hop, installer=installer,
        site=SiteHosts(database, stats, Gateway(gw.mac, gw.ipv4, gw.ipv6),
                       site_port_instance_ids(config)),
        alt=alt,
        probes=DataProbes(u.rloc, stats, next_hop, alt, database if etr_role else None, ms,
                          config.instance_id),
        prober=prober, smr=smr,
        registrar=Registrar(config.map_servers, database, stats, rng)
        if config.map_servers and etr_role else None,
        watch=TrafficWatch(cache, installer, itr),
        underlay_bridge=UnderlayBridge(
            u.rloc, control_rate_pps=config.control_rate, **control_punting(config),
            rloc_ipv6=u.rloc_ipv6,
            other_rlocs=local_rlocs(config) if etr_role else (),
            data_probe_prefixes=tuple(m.prefix for m in database) if etr_role else ()))


def prober_of(config: Config, stats, rng, next_hop) -> Prober | None:
    p = config.probing
    if not p.enabled:
        return None
    return Prober(ProbeSettings(True, p.interval, p.timeout, p.misses, p.rate),
                  itr_settings(config).itr_rlocs, stats, rng, reaches=next_hop.reaches)


def map_server_of(config: Config) -> MapServerEngine | None:
    if config.map_server is None:
        return None
    return MapServerEngine(tuple(MsSite(s.name, s.key, s.eid_prefixes, s.announce)
                                 for s in config.map_server.sites))


def map_resolver_of(config: Config, ms: MapServerEngine | None,
                    alt_rib=None) -> MapResolverEngine | None:
    """On the ALT the Map-Resolver resolves over it; without, through the co-located
    Map-Server's registrations."""
    if not config.map_resolver:
        return None
    if config.alt is not None:
        return MapResolverEngine(rib=alt_rib) if alt_rib is not None else None
    return MapResolverEngine(map_server=ms)


def lisp_bridge_of(config: Config, database: LocalDatabase, ports: dict[str, int],
                   macs: dict[str, str] | None, with_map_server: bool) -> LispBridge:
    """The LISP bridge's compiler, once the bridge has told us its port numbers."""
    c, alt = config, config.alt
    itr_role, etr_role = c.role in ("itr", "xtr"), c.role in ("etr", "xtr")
    site = site_port_instance_ids(c)
    return LispBridge(
        site_ports=tuple((ports[name], iid) for name, iid in site.items()),
        gpe_port=ports.get(c.lisp_bridge.gpe_port),
        local_prefixes=tuple(m.prefix for m in database),
        gateway_mac=c.site_gateway.mac, gateway_ipv4=c.site_gateway.ipv4,
        gateway_ipv6=c.site_gateway.ipv6, underlay_mtu=c.underlay.mtu,
        itr=itr_role, etr=etr_role, miss_rate_pps=c.miss_rate, **miss_punting(c),
        native_port=native_port_of(c, ports), native_instance_id=c.instance_id,
        **({} if alt is None else dict(
            alt_port=ports[alt.port], alt_mac=(macs or {}).get(alt.port),
            alt_address=alt.address,
            alt_peers=tuple((n.address, ports[n.gre_port]) for n in alt.neighbors),
            alt_last_hop=with_map_server)))


def miss_punting(config: Config) -> dict:
    """The LISP bridge's fair-punting rates (config.punting; the per-port rate's default is the
    whole miss_rate on a one-port site, half of it with more ports)."""
    p = config.punting
    per_port = p.miss_per_port
    if per_port is None:
        ports = len(config.lisp_bridge.site_ports)
        per_port = config.miss_rate if ports <= 1 else max(1, config.miss_rate // 2)
    return dict(miss_port_rate_pps=per_port, miss_source_rate_pps=p.miss_per_source,
                miss_source_buckets=p.source_buckets)


def control_punting(config: Config) -> dict:
    """The underlay bridge's per-source control rate (config.punting; default: a quarter of
    control_rate)."""
    p = config.punting
    per_source = p.control_per_source
    if per_source is None:
        per_source = max(1, config.control_rate // 4)
    return dict(control_source_rate_pps=per_source, control_source_buckets=p.source_buckets)


def native_port_of(config: Config, ports: dict[str, int]) -> int | None:
    """The LISP bridge's patch port for natively-forwarded traffic (mode native only)."""
    name = config.lisp_bridge.native_port
    if name is None or config.natively_forward.mode != "native":
        return None
    return ports[name]


def required_lisp_ports(config: Config) -> list[str]:
    """The port names the LISP bridge must have."""
    wanted = list(site_port_instance_ids(config))
    if config.role in ("itr", "etr", "xtr"):
        wanted.append(config.lisp_bridge.gpe_port)
    if config.lisp_bridge.native_port is not None:
        wanted.append(config.lisp_bridge.native_port)
    if config.alt is not None:
        wanted += [config.alt.port, *(n.gre_port for n in config.alt.neighbors)]
    return wanted
