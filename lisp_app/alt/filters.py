"""The ALT's import filters: a neighbour's configured prefix list compiled into a
:class:`~lisp_app.alt.rib.PrefixList` (pure)."""

from __future__ import annotations

from ipaddress import ip_network

from ..config import AltConfig, AltNeighborConfig
from .rib import PrefixList, PrefixListEntry


def import_filter(alt: AltConfig, neighbor: AltNeighborConfig) -> PrefixList:
    """A neighbour's import prefix list (the default: the default route and the EID space)."""
    if not neighbor.import_filter:
        return PrefixList.default_import(tuple(ip_network(t) for t in alt.eid_space))
    return PrefixList(tuple(PrefixListEntry(e.action, ip_network(e.prefix), e.ge, e.le)
                            for e in neighbor.import_filter))
