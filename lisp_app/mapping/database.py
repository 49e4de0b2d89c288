"""The local mapping database: the site's own EID prefixes and the locators an ETR announces."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from ..protocol.addresses import EidPrefix
from ..protocol.records import Locator, MappingRecord


@dataclass(frozen=True, slots=True)
class LocalMapping:
    prefix: EidPrefix
    locators: tuple[Locator, ...]
    ttl: int = 1440  # minutes

    def record(self, probed_rloc: IPv4Address | IPv6Address | None = None) -> MappingRecord:
        """The authoritative Map-Reply record; in a reply to an RLOC-probe the probed locator
        carries the p bit."""
        locs = self.locators
        if probed_rloc is not None:
            locs = tuple(Locator(l.address, l.priority, l.weight, l.m_priority, l.m_weight,
                                 l.local, l.address == probed_rloc, l.reachable) for l in locs)
        return MappingRecord.for_prefix(self.prefix, locators=locs, ttl=self.ttl,
                                        authoritative=True)


class LocalDatabase:
    """The site's EID prefixes. Lookups answer with the local prefix covering an EID prefix."""

    def __init__(self, mappings=()):
        self._mappings: dict[EidPrefix, LocalMapping] = {}
        for m in mappings:
            self.add(m)

    def add(self, mapping: LocalMapping) -> None:
        for other in self._mappings.values():
            if other.prefix != mapping.prefix and (other.prefix.contains(mapping.prefix)
                                                   or mapping.prefix.contains(other.prefix)):
                raise ValueError(f"{mapping.prefix} overlaps local prefix {other.prefix}")
        self._mappings[mapping.prefix] = mapping

    def remove(self, prefix: EidPrefix) -> LocalMapping | None:
        return self._mappings.pop(prefix, None)

    def covering(self, wanted: EidPrefix) -> LocalMapping | None:
        """The local mapping whose prefix contains ``wanted`` (None: not ours)."""
        for m in self._mappings.values():
            if m.prefix.contains(wanted):
                return m
        return None

    def __iter__(self):
        return iter(list(self._mappings.values()))

    def __len__(self) -> int:
        return len(self._mappings)
