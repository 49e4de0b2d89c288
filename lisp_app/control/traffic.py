"""The traffic watch, sans I/O: which encapsulation flows' counters the ITR needs, and what the
counters say.

A cached Map-Reply entry is refreshed before it expires only if it carried traffic shortly
before its refresh point (ItrSettings.activity_window). Its flow's counter is watched from just
before that window opens, so that traffic inside the window shows as a counter increase; other
flows' counters are never fetched one by one (a big map-cache costs the poll nothing).
"""

from __future__ import annotations

from ..dataplane.flows import Flow
from ..dataplane.pipeline import K_ENCAP, kind_of
from ..mapping.cache import SOURCE_REPLY, MapCache
from .installer import FlowInstaller
from .itr import ItrEngine


class TrafficWatch:
    def __init__(self, cache: MapCache, installer: FlowInstaller, itr: ItrEngine | None):
        self.cache = cache
        self.installer = installer
        self.itr = itr
        self.flow_packets: dict[tuple, int] = {}  # flow key -> packet count at the last look

    def watched(self, now: float, horizon: float) -> list[Flow]:
        """The encapsulation flows of cached Map-Reply entries whose "in use" window opens
        within ``horizon`` seconds or is open."""
        if self.itr is None:
            return []
        s = self.itr.settings
        out: list[Flow] = []
        for entry in self.cache.expiring_by(now + horizon + s.refresh_before + s.activity_window):
            if entry.source == SOURCE_REPLY:
                out.extend(f for f in self.installer.flows_of(entry.prefix)
                           if kind_of(f.cookie) == K_ENCAP)
        return out

    def on_flow_stats(self, stats: list[tuple[int, int, int, tuple, int]], now: float) -> None:
        """Counters of watched flows: (cookie, table, priority, match, packet_count) each.
        Tells the ITR which mappings carried traffic since the last look. Flows no longer in
        the list are forgotten."""
        owner_of = self.installer.owner_of  # the flows are compiled again on demand: ask
        seen: dict[tuple, int] = {}
        for cookie_value, table, priority, match_key, packets in stats:
            if kind_of(cookie_value) != K_ENCAP:
                continue
            key = (table, priority, match_key)
            prefix = owner_of(key)
            if prefix is not None and packets > self.flow_packets.get(key, 0) \
                    and self.itr is not None:
                self.itr.note_traffic(prefix, now)
            seen[key] = packets
        self.flow_packets = seen
