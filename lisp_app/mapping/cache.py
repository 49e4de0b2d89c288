"""The map-cache: EID-prefix -> locators, longest-prefix match per instance-id, with TTLs.

Entries come from Map-Replies (TTL in minutes, refreshed while in use), from negative Map-Replies
(no locators; the ACT field says what to do), or from the operator (static: never expire).
Time is a parameter (``now``, seconds on any monotonic clock); nothing here reads a clock.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from ..protocol.addresses import EidPrefix
from ..protocol.records import Action, Locator
from .lpm import Position, PrefixTable

SOURCE_REPLY = "map-reply"
SOURCE_STATIC = "static"

#: How many distinct values each of a MapCache's shared-value pools holds. Locator sets, TTLs and
#: instance-ids come from Map-Replies, so a pool must be bounded; a full pool starts over (the
#: entries keep what they hold, only later entries stop sharing with them).
SHARED_POOL_LIMIT = 4096


class SharedPool:
    """Equal immutable values held once: :meth:`share` returns the pooled object equal to a value
    (the value itself the first time). Bounded by ``limit`` distinct values."""

    __slots__ = ("limit", "_values", "_last")

    def __init__(self, limit: int = SHARED_POOL_LIMIT) -> None:
        self.limit = limit
        self._values: dict = {}
        # the last value asked for and its pooled object: a bulk load or a burst of replies
        # hands the same locator tuple again and again, and hashing one hashes its addresses
        self._last: tuple = (None, None)

    def __len__(self) -> int:
        return len(self._values)

    def share(self, value):
        last, found = self._last
        if value is last:
            return found
        try:
            found = self._values.get(value)
        except TypeError:  # something unhashable: keep it as it is
            return value
        if found is None:
            if len(self._values) >= self.limit:
                self._values.clear()
            self._values[value] = found = value
        self._last = (value, found)
        return found

    def share_field(self, obj, name: str, kind: type) -> None:
        """Replace ``obj.name``, when it is a non-empty ``kind``, by the pooled equal object. Set
        in place, frozen or not: the value is equal, so ``obj`` reads as it did. (Empty tuples
        and 0 are singletons already.)"""
        value = getattr(obj, name)
        if type(value) is kind and value:
            shared = self.share(value)
            if shared is not value:
                object.__setattr__(obj, name, shared)


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One mapping in the cache. ``expires_at`` is None for static entries."""

    prefix: EidPrefix
    locators: tuple[Locator, ...]
    action: Action = Action.NO_ACTION
    ttl: int = 1440
    expires_at: float | None = None
    source: str = SOURCE_REPLY
    created_at: float = 0.0
    authoritative: bool = False
    map_version: int = 0

    def __lt__(self, other: "CacheEntry") -> bool:
        """Entries order by expiry: the map-cache's expiry heap holds the entries themselves."""
        return self.expires_at < other.expires_at

    @property
    def negative(self) -> bool:
        return not self.locators

    def remaining(self, now: float) -> float | None:
        """Seconds left before expiry (None: never expires)."""
        return None if self.expires_at is None else max(0.0, self.expires_at - now)


@dataclass(frozen=True, slots=True)
class CachePosition:
    """Where a walk through a :class:`MapCache` stopped: a position in the table of one
    instance-id and address family (``at`` None: that table's start). Its text form (a cursor
    for the API) is whole numbers joined by dots: instance-id and IP version, then, unless at
    the table's start, prefix length, index, removals and network address."""

    instance_id: int
    version: int
    at: Position | None = None

    def text(self) -> str:
        a = self.at
        return f"{self.instance_id}.{self.version}" + (
            "" if a is None else f".{a.plen}.{a.index}.{a.removed}.{a.key}")

    @classmethod
    def parse(cls, text: str) -> "CachePosition":
        parts = text.split(".")
        bad = ValueError(f"{text[:80]!r} is not a map-cache position (a 'next' value)")
        if len(parts) not in (2, 6) or not all(p.isdigit() and p.isascii() and len(p) <= 40
                                               for p in parts):
            raise bad
        iid, version, *rest = map(int, parts)
        width = {4: 32, 6: 128}.get(version)
        if width is None or iid >> 32:
            raise bad
        if not rest:
            return cls(iid, version)
        plen, index, removed, key = rest
        if plen > width or key >> width:
            raise bad
        return cls(iid, version, Position(plen, index, removed, key))


@dataclass
class CacheStats:
    """Counters the cache keeps about itself (``mapstat`` shows them)."""

    lookups: int = 0
    hits: int = 0
    inserted: int = 0
    replaced: int = 0
    expired: int = 0
    removed: int = 0


class MapCache:
    """EID-prefix -> :class:`CacheEntry`, longest-prefix match per instance-id and family.

    The entries it holds share equal locator tuples, TTLs and instance-ids (pools of at most
    ``shared_pool_limit`` values each): most of a big map-cache points at a few thousand xTRs in
    a few instance-ids, so this saves the Locator, address, tuple and int objects of nearly every
    entry. An inserted entry (and its prefix) is given the pooled objects equal to its own."""

    def __init__(self, shared_pool_limit: int = SHARED_POOL_LIMIT) -> None:
        self._tables: dict[tuple[int, int], PrefixTable[CacheEntry]] = {}
        self._expiry: list[CacheEntry] = []  # heap by expires_at; superseded entries skipped
        self._count = 0
        self.stats = CacheStats()
        self._locators = SharedPool(shared_pool_limit)
        self._ttls = SharedPool(shared_pool_limit)
        self._instance_ids = SharedPool(shared_pool_limit)

    def __len__(self) -> int:
        return self._count

    def __iter__(self):
        for table in list(self._tables.values()):
            yield from table.values()

    def walk(self, after: CachePosition | None,
             limit: int) -> tuple[list[CacheEntry], CachePosition | None]:
        """Up to ``limit`` entries, in the order iteration gives them, starting after ``after``
        (None: from the first); and where the walk stopped (None: at the end). The cost is
        that of the entries given (plus, only when entries were removed since ``after``, one
        scan of a prefix length in C): paging through a million entries sorts nothing.
        Entries present from the first page to the last are each given (one may come twice
        when entries were removed in between); entries added or removed meanwhile may or may
        not be. Raises ValueError for a position of no table of this cache."""
        keys = list(self._tables)
        first = 0
        if after is not None:
            try:
                first = keys.index((after.instance_id, after.version))
            except ValueError:
                raise ValueError("no such map-cache position (a 'next' value)") from None
        out: list[CacheEntry] = []
        for n in range(first, len(keys)):
            table = self._tables[keys[n]]
            at = after.at if after is not None and n == first else None
            got, stop = table.walk(at, limit - len(out))
            out.extend(got)
            if stop is not None:
                return out, CachePosition(*keys[n], stop)
            if len(out) == limit:  # this table is done: go on at the next one holding entries
                rest = [k for k in keys[n + 1:] if self._tables[k].by_len]
                return out, CachePosition(*rest[0]) if rest else None
        return out, None

    def _table(self, iid: int, version: int, create: bool) -> PrefixTable[CacheEntry] | None:
        table = self._tables.get((iid, version))
        if table is None and create:
            table = self._tables[(iid, version)] = PrefixTable(32 if version == 4 else 128)
        return table

    def insert(self, entry: CacheEntry) -> CacheEntry | None:
        """Add or replace the entry for ``entry.prefix``; return the entry it replaced."""
        self._share(entry)
        prefix = entry.prefix
        old = self._table(prefix.instance_id, prefix.network.version, True).put(prefix.network,
                                                                                entry)
        if old is None:
            self._count += 1
            self.stats.inserted += 1
        else:
            self.stats.replaced += 1
        if entry.expires_at is not None:
            heapq.heappush(self._expiry, entry)
        return old

    def _share(self, entry: CacheEntry) -> None:
        """Give ``entry`` the pooled objects equal to its locators, TTL and instance-id."""
        self._locators.share_field(entry, "locators", tuple)
        self._ttls.share_field(entry, "ttl", int)
        self._instance_ids.share_field(entry.prefix, "instance_id", int)

    def get(self, prefix: EidPrefix) -> CacheEntry | None:
        """The entry for exactly this prefix."""
        table = self._table(prefix.instance_id, prefix.network.version, False)
        return None if table is None else table.get(prefix.network)

    def remove(self, prefix: EidPrefix) -> CacheEntry | None:
        """Remove the entry for exactly this prefix; return it (None if there was none)."""
        old = self._pop(prefix)
        if old is not None:
            self.stats.removed += 1
        return old

    def _pop(self, prefix: EidPrefix) -> CacheEntry | None:
        table = self._table(prefix.instance_id, prefix.network.version, False)
        old = None if table is None else table.pop(prefix.network)
        if old is not None:
            self._count -= 1
        return old

    def lookup(self, instance_id: int, address: IPv4Address | IPv6Address) -> CacheEntry | None:
        """Longest-prefix match of an EID in one instance-id."""
        self.stats.lookups += 1
        table = self._tables.get((instance_id, address.version))
        hit = None if table is None else table.lookup(int(address))
        if hit is not None:
            self.stats.hits += 1
        return hit

    def next_expiry(self) -> float | None:
        """When the earliest entry expires (None: nothing will)."""
        while self._expiry:
            due = self._expiry[0]
            current = self.get(due.prefix)
            if current is not None and current.expires_at == due.expires_at:
                return due.expires_at
            heapq.heappop(self._expiry)
        return None

    def expiring_by(self, when: float) -> list[CacheEntry]:
        """The entries that expire at or before ``when`` (none removed). Walks only the part of
        the expiry heap at or before ``when``: a heap node's children expire no earlier than it,
        so the cost follows the answer, not the size of the cache."""
        heap, found, todo = self._expiry, [], [0] if self._expiry else []
        while todo:
            i = todo.pop()
            entry = heap[i]
            if entry.expires_at > when:
                continue
            if self.get(entry.prefix) is entry:  # superseded heap items are skipped
                found.append(entry)
            todo.extend(c for c in (2 * i + 1, 2 * i + 2) if c < len(heap))
        return found

    def expire(self, now: float) -> list[CacheEntry]:
        """Remove and return every entry whose lifetime ended at or before ``now``."""
        gone = []
        while self._expiry and self._expiry[0].expires_at <= now:
            due = heapq.heappop(self._expiry)
            current = self.get(due.prefix)
            if current is not None and current.expires_at == due.expires_at:
                self._pop(due.prefix)
                self.stats.expired += 1
                gone.append(current)
        return gone
