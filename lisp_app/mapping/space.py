"""Free address space: the least-specific prefix around an address that overlaps none of a set of
prefixes (what a Map-Resolver answers, natively-forward, for an EID no mapping system covers).

Prefixes are either nested or disjoint, so when no prefix of the set covers an address, every
prefix of the set that overlaps a block around the address lies inside that block; the block
``address/len`` is free when it is longer than the address's common prefix with the nearest
start of a set prefix on either side. The set keeps its prefixes' start addresses sorted (with a
count, as nested prefixes can share a start), so a query is a binary search.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

Network = IPv4Network | IPv6Network
WIDTH = {4: 32, 6: 128}


def free_block(value: int, width: int, starts: list[int], floor: int = 0) -> tuple[int, int]:
    """(network address, length) of the least-specific block containing ``value`` that holds
    no element of ``starts`` (sorted), at least ``floor`` bits long. The caller makes sure no
    prefix of the set covers ``value``."""
    i = bisect_left(starts, value)
    plen = floor
    for start in starts[max(i - 1, 0):i + 1]:
        plen = max(plen, width - (value ^ start).bit_length() + 1)
    if plen > width:
        raise ValueError("a prefix of the set starts at the address: it is covered")
    return value >> (width - plen) << (width - plen), plen


class PrefixStarts:
    """The start addresses of a changing set of prefixes of one address family."""

    __slots__ = ("version", "width", "_starts", "_counts")

    def __init__(self, version: int):
        self.version, self.width = version, WIDTH[version]
        self._starts: list[int] = []
        self._counts: dict[int, int] = {}

    def add(self, network: Network) -> None:
        start = int(network.network_address)
        n = self._counts.get(start, 0)
        if n == 0:
            insort(self._starts, start)
        self._counts[start] = n + 1

    def discard(self, network: Network) -> None:
        start = int(network.network_address)
        n = self._counts.get(start, 0)
        if n == 1:
            del self._counts[start]
            del self._starts[bisect_left(self._starts, start)]
        elif n > 1:
            self._counts[start] = n - 1

    def free_around(self, address: IPv4Address | IPv6Address, floor: int = 0) -> Network:
        """The least-specific prefix (at least ``floor`` long) containing ``address`` that
        holds no start of the set."""
        value, plen = free_block(int(address), self.width, self._starts, floor)
        return (IPv4Network if self.version == 4 else IPv6Network)((value, plen))
