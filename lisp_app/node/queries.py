"""The query interface of a node: JSON-able snapshots of its state for the REST API, lispctl and
the Prometheus page (the successors of OpenLISP's ``map`` and ``mapstat``). Pure: the caller
passes the time; nothing here changes the node.
"""

from __future__ import annotations

from dataclasses import asdict
from ipaddress import IPv4Address, IPv6Address
from itertools import islice

from ..config import site_port_instance_ids
from ..mapping.cache import CacheEntry, CachePosition
from ..mapping.locators import forwarding_problem
from ..protocol.addresses import EidPrefix
from ..protocol.records import Action, Locator


#: How many of the mappings that use a locator ``locators()`` names (it counts them all).
LOCATOR_USERS_SHOWN = 4


def locator_view(loc: Locator, probe: dict | None = None, ours: bool = False) -> dict:
    """A locator; ``probe`` is what RLOC probing knows of it (state up/down/unprobed, seconds
    in that state, last RTT, misses), None when it is not probed. ``local`` says whether it is
    one of this xTR's own RLOCs (``ours``: a local database locator with the L bit);
    ``l_bit`` is the L bit as the record carries it, which in a learned mapping means local to
    the ETR that sent the Map-Reply, not to us."""
    return {"rloc": str(loc.address), "priority": loc.priority, "weight": loc.weight,
            "m_priority": loc.m_priority, "m_weight": loc.m_weight, "local": ours,
            "l_bit": loc.local, "probed": loc.probed, "reachable": loc.reachable, "probe": probe}


def entry_view(entry: CacheEntry, now: float, prober=None) -> dict:
    remaining = entry.remaining(now)
    action = entry.action
    return {"eid": str(entry.prefix.network), "instance_id": entry.prefix.instance_id,
            "prefix": str(entry.prefix), "source": entry.source, "ttl": entry.ttl,
            "expires_in": None if remaining is None else round(remaining, 1),
            "negative": entry.negative,
            "action": action.name.lower().replace("_", "-") if isinstance(action, Action)
            else int(action),
            "authoritative": entry.authoritative, "map_version": entry.map_version,
            "locators": [locator_view(l, prober.view(l.address, now) if prober else None)
                         for l in entry.locators]}


def local_view(mapping) -> dict:
    return {"eid": str(mapping.prefix.network), "instance_id": mapping.prefix.instance_id,
            "prefix": str(mapping.prefix), "source": "local", "ttl": mapping.ttl,
            "expires_in": None, "negative": False, "action": "no-action",
            "authoritative": True, "map_version": 0,
            "locators": [locator_view(l, ours=l.local) for l in mapping.locators]}


class NodeQueries:
    """Read-only views of one :class:`~lisp_app.node.xtr.Xtr`."""

    def __init__(self, node):
        self._node = node

    def mappings(self, now: float, limit: int, after: str | None = None) -> dict:
        """One page of the map-cache: up to ``limit`` entries after the position ``after``
        (a ``next`` of an earlier page; None: the first page, which also holds the local
        database), and ``next``, where the following page starts (None: this was the last).
        Raises ValueError for an ``after`` that is no position of this map-cache."""
        n = self._node
        entries, stop = n.cache.walk(None if after is None else CachePosition.parse(after),
                                     limit)
        out = {"cache": [entry_view(e, now, n.prober) for e in entries],
               "next": None if stop is None else stop.text()}
        if after is None:
            out["database"] = [local_view(m) for m in n.database]
        return out

    def lookup(self, instance_id: int, address: IPv4Address | IPv6Address,
               now: float) -> dict | None:
        """The mapping covering an EID: the local database first, then the map-cache."""
        n = self._node
        for mapping in n.database:
            if mapping.prefix.instance_id == instance_id and address in mapping.prefix.network:
                return local_view(mapping)
        entry = n.cache.lookup(instance_id, address)
        return None if entry is None else entry_view(entry, now, n.prober)

    def static_problem(self, prefix: EidPrefix, locators) -> str | None:
        """Why an operator's mapping could never forward here (None: it can, or this node has
        no data plane to ask about): see :func:`~lisp_app.mapping.locators.forwarding_problem`."""
        config = getattr(self._node, "config", None)
        if config is None or config.lisp_bridge is None or config.underlay is None:
            return None
        u = config.underlay
        return forwarding_problem(
            prefix.instance_id, locators, (4, 6) if u.rloc_ipv6 is not None else (4,),
            frozenset(a for a in (u.rloc, u.rloc_ipv6) if a is not None),
            frozenset(site_port_instance_ids(config).values()))

    def is_cached(self, prefix: EidPrefix) -> bool:
        return self._node.cache.get(prefix) is not None

    def mapstat(self, now: float) -> dict:
        """The counters and sizes, and how old the data-plane counts are; the Map-Server's
        registrations and both servers' counters when the node has those roles."""
        n = self._node
        counters = n.stats.as_dict()
        counters["dropped"] = n.stats.dropped  # the drop counters' sum, for older scripts
        flow_counts = getattr(n, "flow_counts", None)  # (a switchless server has none)
        read_at = flow_counts.read_at() if flow_counts is not None else None
        out = {"counters": counters, "cache_entries": len(n.cache),
               "pending_requests": len(n.itr.pending) if n.itr else 0,
               # how long ago the switch's flow counters (sent, received, ...) were read
               "counts_age_seconds": None if read_at is None else round(now - read_at, 3)}
        if n.ms is not None:
            out["map_server"] = asdict(n.ms.stats)
            out["registrations"] = [
                {"prefix": str(p), "site": r.site, "etr": str(r.etr), "proxy_reply": r.proxy_reply,
                 "expires_in": round(r.expires_at - now, 1)}
                for p, r in sorted(n.ms.registrations.items(), key=lambda i: str(i[0]))]
        if n.mr is not None:
            out["map_resolver"] = asdict(n.mr.stats)
        return out

    def counters(self) -> dict[str, int]:
        """Every counter, the Map-Server's and Map-Resolver's prefixed ``ms_`` and ``mr_``."""
        n = self._node
        counters = dict(n.stats.as_dict())
        for role, engine in (("ms", n.ms), ("mr", n.mr)):
            if engine is not None:
                counters.update({f"{role}_{k}": v for k, v in asdict(engine.stats).items()})
        return counters

    def gauges(self) -> dict[str, int]:
        n = self._node
        out = {"map_cache_entries": len(n.cache),
               "pending_map_requests": len(n.itr.pending) if n.itr else 0,
               "site_hosts": len(n.site.hosts) if n.site is not None else 0}
        if n.prober is not None:
            out.update({f"locators_{state}": count
                        for state, count in n.prober.counts().items()})
        return out

    def smrs_pending(self) -> int:
        """SMRs queued behind the rate cap."""
        smr = getattr(self._node, "smr", None)
        return smr.queued() if smr is not None else 0

    def locators(self, now: float) -> list[dict]:
        """Every probed locator: its address, state, seconds in it, last RTT, how many mappings
        use it and up to ``LOCATOR_USERS_SHOWN`` of them (any; sorted). Listing all would cost
        a string and a sort place per mapping: seconds of the controller's loop at a million."""
        prober = self._node.prober
        if prober is None:
            return []
        return [{"rloc": str(s.address), **s.view(now), "mapping_count": len(s.users),
                 "mappings": sorted(str(p) for p in islice(s.users, LOCATOR_USERS_SHOWN))}
                for s in sorted(prober.locators.values(), key=lambda s: str(s.address))]

    def group_owners(self) -> dict[int, str]:
        """Select group id -> the mapping (prefix) it serves."""
        return {gid: str(prefix) for prefix, gid in self._node.group_ids().items()}
