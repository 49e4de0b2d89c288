"""Longest-prefix match over IP networks: one dict per prefix length, probed longest first.

A lookup costs one shift and one dict probe per distinct prefix length present, whatever the
number of prefixes, which keeps the map-cache and the ALT RIB fast at a million entries.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Generic, Iterator, TypeVar

V = TypeVar("V")
Network = IPv4Network | IPv6Network


class PrefixTable(Generic[V]):
    """Values keyed by networks of one address family."""

    __slots__ = ("bits", "by_len", "lengths")

    def __init__(self, bits: int):
        self.bits = bits
        self.by_len: dict[int, dict[int, V]] = {}
        self.lengths: list[int] = []  # prefix lengths present, longest first

    def _key(self, network: Network) -> tuple[int, int]:
        plen = network.prefixlen
        return plen, int(network.network_address) >> (self.bits - plen)

    def put(self, network: Network, value: V) -> V | None:
        plen, k = self._key(network)
        bucket = self.by_len.get(plen)
        if bucket is None:
            bucket = self.by_len[plen] = {}
            self.lengths = sorted(self.by_len, reverse=True)
        old = bucket.get(k)
        bucket[k] = value
        return old

    def get(self, network: Network) -> V | None:
        plen, k = self._key(network)
        bucket = self.by_len.get(plen)
        return None if bucket is None else bucket.get(k)

    def pop(self, network: Network) -> V | None:
        plen, k = self._key(network)
        bucket = self.by_len.get(plen)
        if bucket is None:
            return None
        old = bucket.pop(k, None)
        if not bucket:
            del self.by_len[plen]
            self.lengths = sorted(self.by_len, reverse=True)
        return old

    def lookup(self, address_int: int) -> V | None:
        """The value of the longest prefix containing the address (given as an integer)."""
        bits = self.bits
        for plen in self.lengths:
            hit = self.by_len[plen].get(address_int >> (bits - plen))
            if hit is not None:
                return hit
        return None

    def values(self) -> Iterator[V]:
        for plen in self.lengths:
            yield from list(self.by_len[plen].values())

    def __len__(self) -> int:
        return sum(len(b) for b in self.by_len.values())
