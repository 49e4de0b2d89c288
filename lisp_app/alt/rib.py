"""The ALT RIB (RFC 6836): EID prefixes learned over BGP on the ALT, and the policy that admits them.

Pure logic: the BGP speaker adapter feeds it best-path changes; the mapping daemon asks it which
ALT neighbour a Map-Request for an EID goes to, and (as a Map-Resolver) which part of the address
space no ALT route covers.

- :class:`PrefixList`: ordered permit/deny entries with ge/le, first match wins, implicit deny;
- :class:`AltRib`: per-neighbour routes, longest-prefix lookup, per-neighbour counts for the
  max-prefix limit, and the least-specific prefix that covers an EID and overlaps no route.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from ..mapping.lpm import PrefixTable
from ..mapping.space import free_block

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True)
class PrefixListEntry:
    """``permit``/``deny`` ``prefix`` [ge N] [le M], matched as FRR's prefix lists match: a route
    matches when it lies inside ``prefix`` and its length is within [ge, le] (both default to the
    entry's own length, so a bare entry matches that prefix exactly)."""

    action: str
    prefix: Network
    ge: int | None = None
    le: int | None = None

    def __post_init__(self):
        if self.action not in ("permit", "deny"):
            raise ValueError(f"prefix-list action {self.action!r} is neither permit nor deny")
        plen, width = self.prefix.prefixlen, self.prefix.max_prefixlen
        lo, hi = self.bounds()
        if not plen <= lo <= hi <= width:
            raise ValueError(f"{self.prefix}: need {plen} <= ge <= le <= {width}")

    def bounds(self) -> tuple[int, int]:
        plen = self.prefix.prefixlen
        lo = self.ge if self.ge is not None else plen
        hi = self.le if self.le is not None else (self.prefix.max_prefixlen
                                                  if self.ge is not None else plen)
        return lo, hi

    def matches(self, route: Network) -> bool:
        if route.version != self.prefix.version or not route.subnet_of(self.prefix):
            return False
        lo, hi = self.bounds()
        return lo <= route.prefixlen <= hi


@dataclass(frozen=True)
class PrefixList:
    entries: tuple[PrefixListEntry, ...]
    # the entries as integers, for permits() (called once per route received): (permit,
    # version, the entry's network shifted right by its host bits, those host bits, ge, le)
    _compiled: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        compiled = []
        for e in self.entries:
            shift = e.prefix.max_prefixlen - e.prefix.prefixlen
            lo, hi = e.bounds()
            compiled.append((e.action == "permit", e.prefix.version,
                             int(e.prefix.network_address) >> shift, shift, lo, hi))
        object.__setattr__(self, "_compiled", tuple(compiled))

    def permits(self, route: Network) -> bool:
        """As the first entry that :meth:`PrefixListEntry.matches` the route says (integer
        arithmetic: a route lies inside an entry's prefix when its length is at least the
        entry's, which ge ensures, and its address has the entry's network bits)."""
        version, plen = route.version, route.prefixlen
        value = int(route.network_address)
        for permit, v, network, shift, lo, hi in self._compiled:
            if v == version and lo <= plen <= hi and value >> shift == network:
                return permit
        return False

    @classmethod
    def default_import(cls, eid_space: tuple[Network, ...]) -> "PrefixList":
        """What the ALT accepts unless told otherwise: the default route, and prefixes inside the
        configured EID space."""
        entries = [PrefixListEntry("permit", ip_network("0.0.0.0/0")),
                   PrefixListEntry("permit", ip_network("::/0"))]
        entries += [PrefixListEntry("permit", net, ge=net.prefixlen) for net in eid_space]
        return cls(tuple(entries))


@dataclass(frozen=True, slots=True)
class AltRoute:
    prefix: Network
    neighbor: str          # the configured neighbour (its ALT address) the route came from
    next_hop: str
    as_path: tuple[int, ...] = ()


class AltRib:
    """Routes per neighbour. A lookup takes the longest prefix; when several neighbours announce
    that prefix the lexically first neighbour wins (deterministic, and os-ken's best path is per
    prefix anyway)."""

    def __init__(self) -> None:
        self._by_neighbor: dict[str, dict[Network, AltRoute]] = {}
        self._tables = {4: PrefixTable(32), 6: PrefixTable(128)}  # prefix -> {neighbor: route}
        self._starts: dict[int, list[int]] | None = None  # sorted route starts, built lazily
        #: counts the changes to the set of routed prefixes (what a memo of answers derived
        #: from them, such as the Map-Resolver's negative replies, checks)
        self.generation = 0

    def update(self, route: AltRoute) -> bool:
        """Add or replace; True when something changed."""
        table = self._by_neighbor.setdefault(route.neighbor, {})
        old = table.get(route.prefix)
        if old == route:
            return False
        table[route.prefix] = route
        per_prefix = self._tables[route.prefix.version].get(route.prefix)
        if per_prefix is None:
            per_prefix = {}
            self._tables[route.prefix.version].put(route.prefix, per_prefix)
            self._starts = None
            self.generation += 1
        per_prefix[route.neighbor] = route
        return True

    def withdraw(self, neighbor: str, prefix: Network) -> bool:
        route = self._by_neighbor.get(neighbor, {}).pop(prefix, None)
        if route is None:
            return False
        table = self._tables[prefix.version]
        per_prefix = table.get(prefix)
        per_prefix.pop(neighbor, None)
        if not per_prefix:
            table.pop(prefix)
            self._starts = None
            self.generation += 1
        return True

    def drop_neighbor(self, neighbor: str) -> int:
        """Forget every route of a neighbour (its session went down); return how many."""
        prefixes = list(self._by_neighbor.get(neighbor, {}))
        for prefix in prefixes:
            self.withdraw(neighbor, prefix)
        self._by_neighbor.pop(neighbor, None)
        return len(prefixes)

    def count(self, neighbor: str) -> int:
        return len(self._by_neighbor.get(neighbor, {}))

    def lookup(self, address: Address) -> AltRoute | None:
        per_prefix = self._tables[address.version].lookup(int(address))
        if not per_prefix:
            return None
        return per_prefix[min(per_prefix)]

    def route_count(self) -> int:
        """How many routes :meth:`all_routes` would list (without listing them)."""
        return sum(len(routes) for routes in self._by_neighbor.values())

    def all_routes(self) -> list[AltRoute]:
        return [r for n in sorted(self._by_neighbor) for r in self._by_neighbor[n].values()]

    def uncovered_prefix(self, address: Address) -> Network:
        """The least-specific prefix containing ``address`` that overlaps no route (what a
        Map-Resolver answers, natively-forward, for an EID the ALT does not cover). ValueError
        when a route covers the address."""
        if self.lookup(address) is not None:
            raise ValueError(f"{address} is covered by an ALT route")
        if self._starts is None:
            self._starts = {v: sorted(int(p.network_address) for p in
                                      (n for n in self._prefixes(v)))
                            for v in (4, 6)}
        starts = self._starts[address.version]
        value, plen = free_block(int(address), 32 if address.version == 4 else 128, starts)
        return (IPv4Network if address.version == 4 else IPv6Network)((value, plen))

    def _prefixes(self, version: int):
        for neighbor_routes in self._by_neighbor.values():
            for prefix in neighbor_routes:
                if prefix.version == version:
                    yield prefix
