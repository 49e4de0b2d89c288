"""JSON views of the xTR's state, shared by the REST API (pure: no I/O)."""

from __future__ import annotations

from ..mapping.cache import CacheEntry
from ..protocol.records import Action, Locator


def locator_view(loc: Locator) -> dict:
    return {"rloc": str(loc.address), "priority": loc.priority, "weight": loc.weight,
            "m_priority": loc.m_priority, "m_weight": loc.m_weight, "local": loc.local,
            "probed": loc.probed, "reachable": loc.reachable}


def entry_view(entry: CacheEntry, now: float) -> dict:
    remaining = entry.remaining(now)
    action = entry.action
    return {"eid": str(entry.prefix.network), "instance_id": entry.prefix.instance_id,
            "prefix": str(entry.prefix), "source": entry.source, "ttl": entry.ttl,
            "expires_in": None if remaining is None else round(remaining, 1),
            "negative": entry.negative,
            "action": action.name.lower().replace("_", "-") if isinstance(action, Action)
            else int(action),
            "authoritative": entry.authoritative, "map_version": entry.map_version,
            "locators": [locator_view(l) for l in entry.locators]}


def local_view(mapping) -> dict:
    return {"eid": str(mapping.prefix.network), "instance_id": mapping.prefix.instance_id,
            "prefix": str(mapping.prefix), "source": "local", "ttl": mapping.ttl,
            "expires_in": None, "negative": False, "action": "no-action",
            "authoritative": True, "map_version": 0,
            "locators": [locator_view(l) for l in mapping.locators]}
