"""RLOC probing, sans I/O (RFC 9301 section 7.1; OpenLISP reported the same facts to its daemon as
MAPM_REACH / MAPM_BADREACH): is each remote locator the ITR encapsulates to still answering?

Every locator address of the map-cache's positive entries (Map-Reply and static ones) is probed
once per ``interval`` with a Map-Request whose P bit is set, sent to the locator itself, however
many mappings share it. A probe is answered by a Map-Reply with the P bit and the probe's nonce;
one that is not answered within ``timeout`` is a miss, and the locator is probed again at once.
After ``misses`` misses in a row the locator is *down*: the mappings that use it are recompiled
without it (their select groups modified in place), and a mapping left with no usable locator is
asked for again. A down locator is still probed every ``interval``; its first answer brings it
back *up*, and the mappings with it. Probes leave at most ``rate`` per second in all (a token
bucket); a due probe without a token waits for the next one.

A reply whose nonce is not one of ours changes nothing and is counted. Time is a parameter.
"""

from __future__ import annotations

import heapq
import logging
import random
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from ..protocol.addresses import NO_ADDRESS, EidPrefix
from ..protocol.map_reply import MapReply
from ..protocol.map_request import MapRequest
from ..protocol.records import EidRecord
from .actions import SendControl
from .mapstat import MapStat

LOG = logging.getLogger(__name__)

IPAddress = IPv4Address | IPv6Address
UP, DOWN, UNKNOWN = "up", "down", "unprobed"


@dataclass(frozen=True)
class ProbeSettings:
    """See the module docstring; the config's ``probing:`` section."""

    enabled: bool = True
    interval: float = 60.0
    timeout: float = 2.0
    misses: int = 3
    rate: float = 100.0


@dataclass(frozen=True, slots=True)
class LocatorChange:
    """A locator went down or came back up: the mappings that use it need recompiling."""

    address: IPAddress
    up: bool
    prefixes: tuple[EidPrefix, ...]


@dataclass
class LocatorState:
    """What probing knows of one locator address."""

    address: IPAddress
    state: str = UNKNOWN
    since: float | None = None       # when it entered its state
    rtt: float | None = None         # seconds, of the last answered probe
    misses: int = 0                  # probes unanswered in a row
    nonce: int | None = None         # of the outstanding probe
    sent_at: float | None = None
    due: float = 0.0                 # when the next probe goes
    users: set[EidPrefix] = field(default_factory=set)

    def view(self, now: float) -> dict:
        return {"state": self.state,
                "since": None if self.since is None else round(now - self.since, 3),
                "rtt_ms": None if self.rtt is None else round(self.rtt * 1000, 3),
                "misses": self.misses}


class Prober:
    """The ITR's locator prober. ``itr_rlocs`` are our RLOCs (probes list them, those of the
    probed locator's family first); ``reaches(address)`` says whether we can send to an
    address (an RLOC of its family)."""

    def __init__(self, settings: ProbeSettings, itr_rlocs: tuple[IPAddress, ...], stats: MapStat,
                 rng: random.Random, reaches=lambda address: True):
        self.settings = settings
        self.itr_rlocs = itr_rlocs
        self.stats = stats
        self.rng = rng
        self.reaches = reaches
        self.locators: dict[IPAddress, LocatorState] = {}  # (each knows its mappings: users)
        self._by_nonce: dict[int, LocatorState] = {}
        self._heap: list[tuple[float, int, IPAddress]] = []  # (when, tie-break, address)
        self._seq = 0
        self._tokens = float(max(1.0, settings.rate))
        self._tokens_at: float | None = None

    # -- which locators --------------------------------------------------------------------------

    def track(self, prefix: EidPrefix, addresses, now: float, old_addresses=()) -> None:
        """The mapping ``prefix`` now uses ``addresses`` (its tunnel addresses) instead of
        ``old_addresses`` (those of the entry it replaced); a new address is probed at once.
        (Nothing is kept per mapping but its place in its locators' ``users``: a big map-cache
        costs probing one set entry per mapping and locator.)"""
        if not self.settings.enabled:
            return
        wanted = set(addresses)
        for address in old_addresses:
            if address not in wanted:
                self._drop_user(address, prefix)
        self._add_users(wanted, (prefix,), now)

    def track_new(self, prefixes, addresses, now: float) -> None:
        """:meth:`track` of each of ``prefixes``, new mappings that all use ``addresses``."""
        if self.settings.enabled:
            self._add_users(set(addresses), prefixes, now)

    def _add_users(self, addresses: set, prefixes, now: float) -> None:
        """``prefixes`` use each of ``addresses`` we can reach; a new one is probed at once."""
        for address in addresses:
            if not self.reaches(address):
                continue
            state = self.locators.get(address)
            if state is None:
                state = self.locators[address] = LocatorState(address, due=now)
                self._schedule(state, now)
            state.users.update(prefixes)

    def untrack(self, prefix: EidPrefix, addresses) -> None:
        """The mapping ``prefix`` (whose tunnel addresses were ``addresses``) is gone."""
        for address in addresses:
            self._drop_user(address, prefix)

    def _drop_user(self, address: IPAddress, prefix: EidPrefix) -> None:
        state = self.locators.get(address)
        if state is None:
            return
        state.users.discard(prefix)
        if not state.users:  # nobody encapsulates to it any more: forget it
            del self.locators[address]
            if state.nonce is not None:
                self._by_nonce.pop(state.nonce, None)

    def is_down(self, address: IPAddress) -> bool:
        state = self.locators.get(address)
        return state is not None and state.state == DOWN

    def view(self, address: IPAddress, now: float) -> dict | None:
        state = self.locators.get(address)
        return state.view(now) if state is not None else None

    def counts(self) -> dict[str, int]:
        out = {UP: 0, DOWN: 0, UNKNOWN: 0}
        for state in self.locators.values():
            out[state.state] += 1
        return out

    # -- time ----------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        self._prune_heap()
        return self._heap[0][0] if self._heap else None

    def on_timer(self, now: float) -> tuple[list[SendControl], list[LocatorChange]]:
        """Probes that are due (within the rate cap), and the locators whose outstanding probe
        timed out enough times to go down."""
        sends: list[SendControl] = []
        changes: list[LocatorChange] = []
        self._refill(now)
        while self._heap and self._heap[0][0] <= now:
            when, _seq, address = self._heap[0]
            state = self.locators.get(address)
            if state is None or state.due != when:
                heapq.heappop(self._heap)  # forgotten, or rescheduled since
                continue
            if state.nonce is not None:  # the outstanding probe timed out: a miss
                heapq.heappop(self._heap)
                change = self._miss(state, now)
                if change is not None:
                    changes.append(change)
                continue
            if self._tokens < 1.0:  # over the rate cap: wait for the next token
                self.stats.probes_deferred += 1
                heapq.heappop(self._heap)
                state.due = now + (1.0 - self._tokens) / self.settings.rate
                self._schedule(state, now)
                continue
            heapq.heappop(self._heap)
            self._tokens -= 1.0
            sends.append(self._probe(state, now))
        return sends, changes

    def _refill(self, now: float) -> None:
        if self._tokens_at is not None:
            cap = max(1.0, self.settings.rate)
            self._tokens = min(cap, self._tokens + (now - self._tokens_at) * self.settings.rate)
        self._tokens_at = now

    def _schedule(self, state: LocatorState, now: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (state.due, self._seq, state.address))

    def _prune_heap(self) -> None:
        while self._heap:
            when, _seq, address = self._heap[0]
            state = self.locators.get(address)
            if state is not None and state.due == when:
                return
            heapq.heappop(self._heap)

    def _probe(self, state: LocatorState, now: float) -> SendControl:
        nonce = self._nonce()
        state.nonce, state.sent_at = nonce, now
        state.due = now + self.settings.timeout
        self._by_nonce[nonce] = state
        self._schedule(state, now)
        prefix = min(state.users, key=str)  # any mapping of it: the ETR answers for the EID
        rlocs = tuple(sorted(self.itr_rlocs, key=lambda r: r.version != state.address.version))
        request = MapRequest(nonce=nonce, records=(EidRecord.for_prefix(prefix),),
                             itr_rlocs=rlocs, source_eid=NO_ADDRESS, probe=True)
        self.stats.probes_sent += 1
        return SendControl(state.address, request.encode())

    def _nonce(self) -> int:
        while True:
            nonce = self.rng.getrandbits(64)
            if nonce and nonce not in self._by_nonce:
                return nonce

    def _miss(self, state: LocatorState, now: float) -> LocatorChange | None:
        self._by_nonce.pop(state.nonce, None)
        state.nonce = None
        state.misses += 1
        self.stats.probes_unanswered += 1
        went_down = state.state != DOWN and state.misses >= self.settings.misses
        if state.state == DOWN or went_down:
            state.due = now + self.settings.interval  # a down locator: probed at the pace
        else:
            state.due = now                           # probe again at once
        self._schedule(state, now)
        if not went_down:
            return None
        state.state, state.since = DOWN, now
        self.stats.locators_went_down += 1
        LOG.warning("locator %s is down: %d probes unanswered; %d mapping(s) move off it",
                    state.address, state.misses, len(state.users))
        return LocatorChange(state.address, False, tuple(sorted(state.users, key=str)))

    # -- answers -------------------------------------------------------------------------------

    def on_probe_reply(self, reply: MapReply, source: IPAddress,
                       now: float) -> list[LocatorChange]:
        """A Map-Reply with the P bit: the answer to one of our probes, or counted and
        ignored."""
        state = self._by_nonce.pop(reply.nonce, None)
        if state is None or self.locators.get(state.address) is not state:
            self.stats.probe_replies_unknown += 1
            return []
        self.stats.probe_replies += 1
        state.rtt = now - state.sent_at
        state.nonce, state.misses = None, 0
        state.due = now + self.settings.interval * self.rng.uniform(0.9, 1.0)  # no lock-step
        self._schedule(state, now)
        if state.state == UP:
            return []
        was = state.state
        state.state, state.since = UP, now
        if was == UNKNOWN:
            return []
        self.stats.locators_came_up += 1
        LOG.warning("locator %s is up again (probe RTT %.1f ms); %d mapping(s) use it again",
                    state.address, state.rtt * 1000, len(state.users))
        return [LocatorChange(state.address, True, tuple(sorted(state.users, key=str)))]
