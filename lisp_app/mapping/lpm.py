"""Longest-prefix match over IP networks: one dict per prefix length, probed longest first.

A lookup costs one mask and one dict probe per distinct prefix length present, whatever the
number of prefixes, which keeps the map-cache and the ALT RIB fast at a million entries.

Each bucket is keyed by the network address as an integer, which is the very ``int`` object the
network's address already holds: a million prefixes cost no extra key objects.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Generic, Iterator, TypeVar

V = TypeVar("V")
Network = IPv4Network | IPv6Network


class PrefixTable(Generic[V]):
    """Values keyed by networks of one address family."""

    __slots__ = ("bits", "by_len", "lengths", "_probes")

    def __init__(self, bits: int):
        self.bits = bits
        self.by_len: dict[int, dict[int, V]] = {}  # prefix length -> {network address: value}
        self.lengths: list[int] = []  # prefix lengths present, longest first
        self._probes: tuple[tuple[int, dict[int, V]], ...] = ()  # (netmask, bucket), same order

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

    def values(self) -> Iterator[V]:
        for plen in self.lengths:
            yield from list(self.by_len[plen].values())

    def __len__(self) -> int:
        return sum(len(b) for b in self.by_len.values())
