"""Longest-prefix match over IP networks: one dict per prefix length, probed longest first.

A lookup costs one mask and one dict probe per distinct prefix length present, whatever the
number of prefixes, which keeps the map-cache and the ALT RIB fast at a million entries.

Each bucket is keyed by the network address as an integer, which is the very ``int`` object the
network's address already holds: a million prefixes cost no extra key objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from itertools import islice
from operator import indexOf
from typing import Generic, Iterator, TypeVar

V = TypeVar("V")
Network = IPv4Network | IPv6Network


@dataclass(frozen=True, slots=True)
class Position:
    """Where a walk through a :class:`PrefixTable` stopped: after the prefix ``key`` (network
    address as an integer), which was entry number ``index`` - 1 of prefix length ``plen``, in
    the order its prefixes were first put, when that length had seen ``removed`` removals."""

    plen: int
    index: int
    removed: int
    key: int


class PrefixTable(Generic[V]):
    """Values keyed by networks of one address family."""

    __slots__ = ("bits", "by_len", "lengths", "_probes", "removed")

    def __init__(self, bits: int):
        self.bits = bits
        self.by_len: dict[int, dict[int, V]] = {}  # prefix length -> {network address: value}
        self.lengths: list[int] = []  # prefix lengths present, longest first
        self._probes: tuple[tuple[int, dict[int, V]], ...] = ()  # (netmask, bucket), same order
        self.removed: dict[int, int] = {}  # prefix length -> removals ever (kept when emptied)

    def _reindex(self) -> None:
        self.lengths = sorted(self.by_len, reverse=True)
        full = (1 << self.bits) - 1
        self._probes = tuple((full ^ (full >> plen), self.by_len[plen]) for plen in self.lengths)

    def put(self, network: Network, value: V) -> V | None:
        plen = network.prefixlen
        bucket = self.by_len.get(plen)
        if bucket is None:
            bucket = self.by_len[plen] = {}
            self._reindex()
        k = int(network.network_address)
        old = bucket.get(k)
        bucket[k] = value
        return old

    def get(self, network: Network) -> V | None:
        bucket = self.by_len.get(network.prefixlen)
        return None if bucket is None else bucket.get(int(network.network_address))

    def pop(self, network: Network) -> V | None:
        plen = network.prefixlen
        bucket = self.by_len.get(plen)
        if bucket is None:
            return None
        old = bucket.pop(int(network.network_address), None)
        if old is not None:
            self.removed[plen] = self.removed.get(plen, 0) + 1
        if not bucket:
            del self.by_len[plen]
            self._reindex()
        return old

    def lookup(self, address_int: int) -> V | None:
        """The value of the longest prefix containing the address (given as an integer)."""
        for mask, bucket in self._probes:
            hit = bucket.get(address_int & mask)
            if hit is not None:
                return hit
        return None

    def matches(self, address_int: int) -> Iterator[V]:
        """The values of every prefix containing the address, longest first."""
        for mask, bucket in self._probes:
            hit = bucket.get(address_int & mask)
            if hit is not None:
                yield hit

    def walk(self, after: Position | None, limit: int) -> tuple[list[V], Position | None]:
        """Up to ``limit`` values in the table's order (prefix lengths longest first, each
        length's prefixes in the order they were first put), starting after ``after`` (None:
        from the start); and where the walk stopped (None: nothing is left after it).

        Resuming costs no sorting: while a length has seen no removal since ``after`` was
        made, its prefixes kept their places (a new prefix goes last, a replaced one keeps its
        place), so the walk goes on at ``after.index``. Otherwise it goes on after
        ``after.key`` if that prefix is still there (found by one scan of that length, in C),
        else ``removed since`` places earlier, so that no prefix present throughout is skipped
        (a few may then be given twice)."""
        out: list[V] = []
        if limit < 1:
            raise ValueError("limit must be at least 1")
        lengths = self.lengths
        for n, plen in enumerate(lengths):
            if after is not None and plen > after.plen:
                continue
            bucket = self.by_len[plen]
            start = self._resume(bucket, after) if after is not None and plen == after.plen \
                else 0
            taken, key = 0, None
            # (skipping keys is about 4 times cheaper than skipping items: 5 ms per million)
            for key in islice(bucket, start, start + limit - len(out)):
                out.append(bucket[key])
                taken += 1
            if len(out) == limit:
                if start + taken < len(bucket) or n + 1 < len(lengths):
                    return out, Position(plen, start + taken, self.removed.get(plen, 0), key)
                return out, None
        return out, None

    def _resume(self, bucket: dict[int, V], after: Position) -> int:
        since = self.removed.get(after.plen, 0) - after.removed
        if since == 0:
            return after.index
        if after.key in bucket:
            return indexOf(bucket, after.key) + 1
        return max(0, after.index - since) if since > 0 else 0  # (< 0: not a position of ours)

    def values(self) -> Iterator[V]:
        for plen in self.lengths:
            yield from list(self.by_len[plen].values())

    def __len__(self) -> int:
        return sum(len(b) for b in self.by_len.values())
