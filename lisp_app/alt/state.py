"""What the ALT side of the controller knows and wants, sans I/O.

- the routes each neighbour sent (its Adj-RIB-In as the BGP speaker reports it), passed through the
  neighbour's import prefix list into the :class:`~lisp_app.alt.rib.AltRib`;
- the max-prefix limit: a neighbour whose accepted routes exceed it is to be shut down, until the
  operator clears it (``lispctl bgp clear``);
- each session's BGP FSM state (RFC 4271's Idle, Connect, Active, OpenSent, OpenConfirm,
  Established) and message counts as the speaker reports them, and when it last came up or went
  down (time is a parameter);
- the prefixes we mean to announce, kept apart from what the speaker has applied, so that a
  reconciliation can repair what the speaker dropped (os-ken drops a ``prefix_del`` that arrives
  before it has processed the matching ``prefix_add``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network

from .rib import AltRib, AltRoute, PrefixList

LOG = logging.getLogger(__name__)

IDLE, ESTABLISHED, MAX_PREFIX_EXCEEDED = "idle", "established", "max-prefix-exceeded"
# RFC 4271's FSM states, spelled as os-ken and FRR spell them
FSM_STATES = ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established")
FSM_IDLE, FSM_ESTABLISHED = "Idle", "Established"


@dataclass
class NeighborState:
    address: str
    remote_as: int
    import_filter: PrefixList
    max_prefix: int = 0
    state: str = IDLE
    rejected: int = 0  # routes refused by the import filter
    accepted: set = field(default_factory=set)
    fsm: str = FSM_IDLE  # the BGP FSM state the speaker last reported
    since: float | None = None  # when the session last came up or went down (None: not yet)
    counters: dict = field(default_factory=dict)  # the speaker's message counts (see observe)
    cut_offs: int = 0  # times max-prefix shut the session down


@dataclass(frozen=True)
class RestartNeighbor:
    """Give the neighbour back to the speaker (it was cut off) or reset its session."""

    address: str


@dataclass(frozen=True)
class ShutDownNeighbor:
    address: str
    reason: str


class AltState:
    def __init__(self, neighbors: list[NeighborState]):
        self.rib = AltRib()
        self.neighbors = {n.address: n for n in neighbors}
        self.intended: set[str] = set()
        self.applied: set[str] = set()

    # -- routes in ------------------------------------------------------------------------------

    def route_event(self, neighbor: str, prefix: str, next_hop: str, as_path: tuple[int, ...],
                    withdraw: bool, now: float | None = None) -> list:
        """One change of a neighbour's Adj-RIB-In. Idempotent: updates may arrive twice."""
        n = self.neighbors.get(neighbor)
        if n is None or n.state == MAX_PREFIX_EXCEEDED:
            return []
        try:
            network: IPv4Network | IPv6Network = ip_network(prefix)
        except ValueError:
            LOG.warning("ALT neighbour %s sent an unreadable prefix %r", neighbor, prefix)
            return []
        if withdraw:
            n.accepted.discard(network)
            self.rib.withdraw(neighbor, network)
            return []
        if not n.import_filter.permits(network):
            if network not in n.accepted:
                n.rejected += 1
            return []
        n.accepted.add(network)
        if n.state == IDLE:
            n.state = ESTABLISHED  # routes only come over an established session
            n.fsm = FSM_ESTABLISHED
        self.rib.update(AltRoute(network, neighbor, next_hop, tuple(as_path)))
        if n.max_prefix and len(n.accepted) > n.max_prefix:
            n.state, n.fsm, n.since = MAX_PREFIX_EXCEEDED, FSM_IDLE, now
            n.cut_offs += 1
            dropped = self.rib.drop_neighbor(neighbor)
            n.accepted.clear()
            reason = (f"sent more than {n.max_prefix} accepted routes; session shut down and "
                      f"its {dropped} routes dropped (lispctl bgp clear {neighbor} brings it "
                      "back)")
            LOG.error("ALT neighbour %s (AS %d) %s", neighbor, n.remote_as, reason)
            return [ShutDownNeighbor(neighbor, reason)]
        return []

    def session_down(self, neighbor: str, now: float | None = None) -> None:
        n = self.neighbors.get(neighbor)
        if n is None:
            return
        if n.state != MAX_PREFIX_EXCEEDED:
            if n.state == ESTABLISHED and now is not None:
                n.since = now
            n.state, n.fsm = IDLE, FSM_IDLE
        n.accepted.clear()
        self.rib.drop_neighbor(neighbor)

    def add_neighbor(self, neighbor: NeighborState) -> None:
        """A neighbour the configuration now lists (replacing one of the same address)."""
        self.remove_neighbor(neighbor.address)
        self.neighbors[neighbor.address] = neighbor

    def remove_neighbor(self, address: str) -> int:
        """Forget a neighbour and the routes it sent; returns how many routes went."""
        self.neighbors.pop(address, None)
        return self.rib.drop_neighbor(address)

    def session_up(self, neighbor: str) -> None:
        n = self.neighbors.get(neighbor)
        if n is not None and n.state != MAX_PREFIX_EXCEEDED:
            n.state = ESTABLISHED

    def observe(self, neighbor: str, fsm: str, counters: dict, now: float,
                uptime: float | None = None) -> str | None:
        """What the speaker reports of a session: its FSM state (``fsm``), its message counts
        and, when Established, for how long (``uptime``, seconds). Returns "up" or "down" when
        the session came up or went down (None: no change). A neighbour cut off by max-prefix
        stays cut off (the speaker no longer has it) until :meth:`clear`."""
        n = self.neighbors.get(neighbor)
        if n is None or n.state == MAX_PREFIX_EXCEEDED:
            return None
        n.fsm = fsm if fsm in FSM_STATES else FSM_IDLE
        n.counters = dict(counters)
        if n.fsm == FSM_ESTABLISHED:
            if uptime is not None and uptime >= 0:
                n.since = now - uptime
            elif n.since is None or n.state != ESTABLISHED:
                n.since = now
            if n.state != ESTABLISHED:
                n.state = ESTABLISHED
                return "up"
        elif n.state == ESTABLISHED:
            self.session_down(neighbor, now)
            n.fsm = fsm if fsm in FSM_STATES else FSM_IDLE
            return "down"
        return None

    def clear(self, neighbor: str, now: float) -> list:
        """The operator's ``clear``: a neighbour cut off by max-prefix is given back to the
        speaker, any other's session is reset; its routes are dropped and its counts start
        over. Raises KeyError for a neighbour that is not configured."""
        n = self.neighbors[neighbor]
        self.rib.drop_neighbor(neighbor)
        n.state, n.fsm, n.since = IDLE, FSM_IDLE, now
        n.accepted.clear()
        n.rejected = 0
        n.counters = {}
        return [RestartNeighbor(neighbor)]

    # -- announcements out ----------------------------------------------------------------------

    def announce(self, prefix: str) -> None:
        self.intended.add(str(ip_network(prefix)))

    def withdraw(self, prefix: str) -> None:
        self.intended.discard(str(ip_network(prefix)))

    def mark_applied(self, prefix: str) -> None:
        """The speaker now announces ``prefix``."""
        self.applied.add(prefix)

    def mark_withdrawn(self, prefix: str) -> None:
        """The speaker no longer announces ``prefix``."""
        self.applied.discard(prefix)

    def to_apply(self) -> tuple[list[str], list[str]]:
        """(prefixes to add, prefixes to delete) to bring the speaker to what we intend."""
        return sorted(self.intended - self.applied), sorted(self.applied - self.intended)
