"""Live reload of the site configuration (SIGHUP), sans I/O, on Faucet's model.

The new file is read and validated by the code behind ``lisp-controller --check``
(:func:`lisp_app.config.load_config`, same messages): a bad file is refused, logged with the
reader's message (file, key, reason), and nothing changes. A good one is compared with the running
configuration field by field (:func:`plan`) and the differences are applied (:func:`apply`)
without touching what stays the same, so traffic to unchanged mappings never notices:

- ``eid_prefixes`` (the local database) added, removed or changed: the LISP bridge's local,
  decapsulation and delivery flows and the underlay bridge's punts (data probes, RLOC-probes to
  the prefixes' locators) follow, flow by flow; the ETR answers from the new database at once;
  the Map-Servers get a Map-Register at once; on the ALT added prefixes are announced and removed
  ones withdrawn; the ITRs that asked for a changed or removed prefix get a Solicit-Map-Request;
  hosts learned inside a removed prefix are forgotten with their delivery flows;
- ``map_servers``: new ones are registered with at once, removed ones no longer (their
  registration times out there);
- ``alt.neighbors`` (and ``alt.eid_space``, the default import filter): new neighbours get a
  session, removed ones lose theirs and their routes; a changed neighbour's session restarts;
- the ITR's ``map_resolvers``, ``map_request_targets``, ``timers``, ``buffer`` and
  ``data_probes``: in use from the next Map-Request on.

Any other difference (bridges and their datapath ids, ports, the role, RLOCs, the gateway, the
API, meters, probing, the Map-Server role, ...) needs a restart: the whole reload is then refused,
each such field named ("needs a restart: field underlay.rloc"), and the running configuration is
kept. The running state is thus always that of one whole file that passed validation, never a mix
of two that no check has seen. Static mappings are not part of the configuration (the API adds
them): a reload leaves them, and the map-cache, alone.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields, is_dataclass, replace
from ipaddress import IPv4Address, IPv6Address

from ..alt.effects import AddNeighbor, Announce, RemoveNeighbor, Withdraw
from ..alt.filters import import_filter
from ..config import (Config, ConfigError, exposure_warning, load_config, local_prefixes,
                      secret_fields)
from ..control.registration import Registrar
from ..dataplane.effects import LISP, UNDERLAY, FlowChange
from ..dataplane.flows import Flow
from ..dataplane.pipeline import UnderlayBridge
from ..mapping.database import LocalDatabase
from ..protocol.addresses import EidPrefix
from .assembly import database_of, itr_settings, lisp_bridge_of, required_lisp_ports

LOG = logging.getLogger(__name__)

#: what a reload changes live (key paths of the configuration, and everything under them)
LIVE = ("eid_prefixes", "map_servers", "map_resolvers", "map_request_targets", "timers",
        "buffer", "data_probes", "alt.neighbors", "alt.eid_space")
ITR_FIELDS = ("map_resolvers", "map_request_targets", "timers", "buffer", "data_probes")


def differences(old, new, path: str = "") -> list[str]:
    """The key paths where two configurations differ, into nested sections (not into lists)."""
    if old == new:
        return []
    if is_dataclass(old) and type(old) is type(new):
        out: list[str] = []
        for f in fields(old):
            out += differences(getattr(old, f.name), getattr(new, f.name),
                               f"{path}.{f.name}" if path else f.name)
        return out
    return [path or "(top level)"]


def _is_live(path: str) -> bool:
    return any(path == live or path.startswith(live + ".") for live in LIVE)


@dataclass(frozen=True)
class ReloadPlan:
    """What differs between the running configuration and the new one."""

    restart: tuple[str, ...] = ()  # key paths that need a restart (then nothing is applied)
    local_added: tuple[EidPrefix, ...] = ()
    local_removed: tuple[EidPrefix, ...] = ()
    local_changed: tuple[EidPrefix, ...] = ()  # locators or TTL
    local_unchanged: int = 0
    map_servers_added: tuple = ()      # addresses
    map_servers_removed: tuple = ()
    map_servers_changed: tuple = ()    # key, key_id or proxy_reply
    neighbors_added: tuple[str, ...] = ()
    neighbors_removed: tuple[str, ...] = ()
    neighbors_changed: tuple[str, ...] = ()  # their sessions restart
    itr: tuple[str, ...] = ()          # key paths of the ITR's settings

    @property
    def local(self) -> bool:
        return bool(self.local_added or self.local_removed or self.local_changed)

    @property
    def map_servers(self) -> bool:
        return bool(self.map_servers_added or self.map_servers_removed
                    or self.map_servers_changed)

    def changes(self) -> list[str]:
        """What the reload changes, one phrase each (for the log)."""
        out = [f"+local {p}" for p in self.local_added]
        out += [f"-local {p}" for p in self.local_removed]
        out += [f"~local {p} (locators or ttl)" for p in self.local_changed]
        out += [f"+map-server {a}" for a in self.map_servers_added]
        out += [f"-map-server {a}" for a in self.map_servers_removed]
        out += [f"~map-server {a}" for a in self.map_servers_changed]
        out += [f"+alt neighbour {a}" for a in self.neighbors_added]
        out += [f"-alt neighbour {a}" for a in self.neighbors_removed]
        out += [f"~alt neighbour {a} (session restarts)" for a in self.neighbors_changed]
        out += [f"~{p}" for p in self.itr]
        return out

    def __bool__(self) -> bool:
        return bool(self.changes())


def plan(old: Config, new: Config) -> ReloadPlan:
    """Compare the running configuration with a new (valid) one."""
    paths = differences(old, new)
    restart = tuple(p for p in paths if not _is_live(p))
    before = {prefix: (locs, ttl) for prefix, locs, ttl in local_prefixes(old)}
    after = {prefix: (locs, ttl) for prefix, locs, ttl in local_prefixes(new)}
    ms_before = {m.address: m for m in old.map_servers}
    ms_after = {m.address: m for m in new.map_servers}
    n_added = n_removed = n_changed = ()
    if old.alt is not None and new.alt is not None:
        nb = {str(n.address): n for n in old.alt.neighbors}
        na = {str(n.address): n for n in new.alt.neighbors}
        n_added = tuple(a for a in na if a not in nb)
        n_removed = tuple(a for a in nb if a not in na)
        n_changed = tuple(a for a in na if a in nb and (
            na[a] != nb[a] or import_filter(new.alt, na[a]) != import_filter(old.alt, nb[a])))
    return ReloadPlan(
        restart=restart,
        local_added=tuple(p for p in after if p not in before),
        local_removed=tuple(p for p in before if p not in after),
        local_changed=tuple(p for p in after if p in before and after[p] != before[p]),
        local_unchanged=sum(1 for p in after if before.get(p) == after[p]),
        map_servers_added=tuple(a for a in ms_after if a not in ms_before),
        map_servers_removed=tuple(a for a in ms_before if a not in ms_after),
        map_servers_changed=tuple(a for a in ms_after
                                  if a in ms_before and ms_after[a] != ms_before[a]),
        neighbors_added=n_added, neighbors_removed=n_removed, neighbors_changed=n_changed,
        itr=tuple(p for p in paths if p.split(".")[0] in ITR_FIELDS))


class ReloadRefused(ValueError):
    """A valid configuration that cannot be applied now (the reason says why); nothing changed."""


def apply(xtr, new: Config, p: ReloadPlan, now: float, ports: dict[str, int] | None = None,
          macs: dict[str, str] | None = None) -> list:
    """Bring the node ``xtr`` (:class:`~lisp_app.node.xtr.Xtr`) from its configuration to
    ``new`` as planned by ``p`` (which must need no restart); returns the effects: flow changes of
    exactly what differs, control messages, ALT announcements and neighbour changes. ``ports``
    and ``macs``: the LISP bridge's port numbers and MACs as read now (default: as read when it
    connected). Raises :class:`ReloadRefused`, changing nothing, when the LISP bridge lacks a
    port the new configuration names."""
    if p.restart:
        raise ValueError("a plan that needs a restart cannot be applied")
    connected = xtr.lisp_bridge is not None
    ports = dict(xtr.lisp_ports if ports is None else ports)
    macs = dict(xtr.lisp_macs if macs is None else macs)
    missing = [n for n in required_lisp_ports(new) if n not in ports]
    if connected and missing:
        raise ReloadRefused(f"the LISP bridge lacks port(s) {', '.join(missing)}: add them, "
                            "then reload again")
    wanted = {m.prefix: m for m in database_of(new)}
    for prefix in p.local_removed:
        xtr.database.remove(prefix)
    for prefix in (*p.local_changed, *p.local_added):
        xtr.database.add(wanted[prefix])
    gone_hosts = xtr.site.forget_outside_database()
    xtr.config = new
    if xtr.itr is not None and p.itr:
        xtr.itr.settings = itr_settings(new)
    effects: list = []
    if connected:
        before = xtr.lisp_bridge.base_flows()
        xtr.lisp_ports, xtr.lisp_macs = ports, macs
        bridge = lisp_bridge_of(new, xtr.database, ports, macs, xtr.ms is not None)
        xtr.lisp_bridge = bridge
        xtr.installer.attach(bridge)
        xtr.site.attach(bridge, ports)
        if xtr.alt is not None and new.alt is not None:
            xtr.alt.attach({str(n.address): ports[n.gre_port] for n in new.alt.neighbors})
        effects += flow_change(LISP, before, bridge.base_flows(), gone_hosts)
    before = xtr.underlay_bridge.base_flows()
    xtr.underlay_bridge = underlay_for(xtr.underlay_bridge, xtr.database, new, xtr.etr_role)
    effects += flow_change(UNDERLAY, before, xtr.underlay_bridge.base_flows())
    actions: list = []
    if p.map_servers and xtr.etr_role:
        registrar = Registrar(new.map_servers, xtr.database, xtr.stats, xtr.rng) \
            if new.map_servers else None
        xtr.registrar = xtr.control.registrar = registrar
    if xtr.registrar is not None and (p.local or p.map_servers):
        actions += xtr.registrar.register_now(now)
    if xtr.smr is not None and (p.local_changed or p.local_removed):
        for prefix in (*p.local_changed, *p.local_removed):
            xtr.smr.on_change(prefix, now)
        actions += xtr.smr.on_timer(now)
    effects += xtr.carry_out(actions, now)
    if new.alt is not None:
        if xtr.etr_role:
            effects += [Announce(prefix) for prefix in p.local_added]
            effects += [Withdraw(prefix) for prefix in p.local_removed]
        by_address = {str(n.address): n for n in new.alt.neighbors}
        effects += [RemoveNeighbor(a) for a in (*p.neighbors_removed, *p.neighbors_changed)]
        effects += [AddNeighbor(new.alt, by_address[a])
                    for a in (*p.neighbors_changed, *p.neighbors_added)]
    return effects


def flow_change(bridge: str, before: list[Flow], after: list[Flow],
                delete: list[Flow] = ()) -> list[FlowChange]:
    """The change from flows ``before`` to flows ``after`` (plus ``delete``): flows in both are
    left alone, a flow whose match stays but whose instructions change is re-added in place."""
    keys = {f.key for f in after}
    old = set(before)
    stale = tuple(f for f in before if f.key not in keys) + tuple(delete)
    add = tuple(f for f in after if f not in old)
    return [FlowChange(bridge, add=add, delete=stale)] if add or stale else []


def underlay_for(bridge: UnderlayBridge, database: LocalDatabase, config: Config,
                 etr_role: bool) -> UnderlayBridge:
    """The underlay bridge's compiler for the local database as it is now: data probes to its
    prefixes and RLOC-probes to its locators punted (as the ETR), its prefixes reached natively."""
    prefixes = tuple(m.prefix for m in database)
    u = config.underlay
    rlocs = (u.rloc, *((u.rloc_ipv6,) if u.rloc_ipv6 is not None else ()),
             *(loc.address for m in database for loc in m.locators
               if type(loc.address) in (IPv4Address, IPv6Address)))
    native = tuple(prefix for prefix in prefixes if prefix.instance_id == config.instance_id) \
        if bridge.native_port is not None else bridge.native_prefixes
    return replace(bridge, other_rlocs=tuple(dict.fromkeys(rlocs)) if etr_role else (),
                   data_probe_prefixes=prefixes if etr_role else (), native_prefixes=native)


@dataclass(frozen=True)
class Outcome:
    """What a reload did: ``config`` is the configuration now running (None: unchanged, the
    file was refused), ``effects`` what the shell carries out, ``message`` what was logged."""

    config: Config | None
    effects: list
    message: str


def reload_file(xtr, path: str, now: float, ports: dict[str, int] | None = None,
           macs: dict[str, str] | None = None) -> Outcome:
    """Re-read the configuration file ``path`` and apply it to ``xtr`` (see the module's
    docstring); every outcome is logged: ERROR when the file is refused, INFO when applied."""
    try:
        new = load_config(path)
    except ConfigError as exc:
        return _refused(f"reload refused: {exc}; the running configuration is kept")
    try:  # what --check and the start warn about, a reload does too
        exposed = exposure_warning(path, os.stat(path).st_mode, secret_fields(new))
    except OSError:
        exposed = None
    if exposed:
        LOG.warning("%s", exposed)
    p = plan(xtr.config, new)
    if p.restart:
        return _refused(f"reload of {path} refused: "
                        + ", ".join(f"needs a restart: field {f}" for f in p.restart)
                        + "; the running configuration is kept (nothing applied)")
    if not p:
        xtr.config = new  # equal in effect (e.g. a list in another order)
        message = f"reload of {path}: no change"
        LOG.info("%s", message)
        return Outcome(new, [], message)
    try:
        effects = apply(xtr, new, p, now, ports, macs)
    except ReloadRefused as exc:
        return _refused(f"reload of {path} refused: {exc}; the running configuration is kept")
    unchanged = f"{p.local_unchanged} local prefix(es) unchanged"
    message = f"reload of {path}: {', '.join(p.changes())}; {unchanged}"
    LOG.info("%s", message)
    return Outcome(new, effects, message)


def _refused(message: str) -> Outcome:
    LOG.error("%s", message)
    return Outcome(None, [], message)
