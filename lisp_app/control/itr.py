"""The ITR's mapping daemon: cache misses become Map-Requests, Map-Replies become mappings.

A miss (OpenLISP's MAPM_MISS) for an EID opens a pending request keyed by (instance-id, EID): a
Map-Request with a fresh random 64-bit nonce goes to the configured Map-Resolvers (inside an ECM) or
straight to the configured ETR addresses; it is retransmitted with exponential backoff (1 s, 2 s,
4 s ... by default) and given up after the configured retries. While it waits, punted packets are
held. A Map-Reply is accepted only with the nonce of an outstanding request (or of one given up
on, see hold-down below) and a record covering the EID asked for; its mapping enters the cache
with the record's TTL and the held packets are released. Entries expire with their TTL; one that
still carries traffic (seen within ``activity_window`` before its refresh point) is refreshed
shortly before it would expire.

Fair state. One host flooding misses to many uncached destinations must not take the state that
other hosts' lookups need. Every miss is charged to its *source*: the inner source address of the
missed packet, with its instance-id. Requests the ITR opens itself (refreshes, SMRs, locators
found down) are charged to the ITR, are bounded by the map-cache (one per entry) and are never
refused or evicted, only paced by the rate caps.

- Pending requests: a source may have at most ``pending_per_source`` open; a miss beyond that is
  refused and counted (``requests_refused_source``), not queued. In all at most ``pending_total``
  are open. When the table is full, a new request from source S takes the place of the oldest
  request of the source H holding the most, provided H holds at least two more than S, or S
  holds none (``requests_evicted``); otherwise it is refused (``requests_refused_full``). So a
  source with no request open always gets one, and a source below the fair share of the table
  cannot be refused while another holds two more than it does; sources holding about as much
  as each other (several flooding hosts) do not evict one another.
- Held packets: at most ``buffer_per_destination`` per EID, ``buffer_per_source`` per source
  (``buffer_source_full``), ``buffer_total`` in all. A packet that finds the buffer full evicts
  the oldest packet of the source holding the most packets, on the same condition
  (``buffer_evicted``); otherwise it is not held (``buffer_overflow``).
  Packets are charged to the host that sent them, whoever opened the request they wait on.
- Map-Request rate: every Map-Request or data probe sent (first or retransmission) takes a
  token from its source's bucket (``request_rate_per_source`` a second, as many at once) and
  from the ITR's (``request_rate``). One that finds no token waits in its source's queue
  (``requests_deferred``); the queues are served round-robin, one request per source in turn,
  as tokens come back, and they leave a tenth of the ITR's bucket to sources with nothing
  queued. So a flooding source spends no more than its own share, and a host with nothing
  queued sends at once even while several flooding sources together keep ``request_rate``
  busy.
- The heaviest source is found in O(1) (sources are kept in lists by count; counts move by
  one, or drop when a request closes, and the top is walked down lazily, amortized O(1)); the
  oldest request of a source is the first of its insertion-ordered dict; a source's packets
  are evicted in the order it held them (a queue whose stale entries are skipped and compacted,
  amortized O(1)). Retransmissions and hold-downs are due from heaps: O(log n) per event.

Per destination: there is one request per (instance-id, EID), however many hosts miss on it,
holding at most ``buffer_per_destination`` packets; a cached entry (positive or negative) takes
the misses of its whole prefix. There is no cap on requests per destination prefix beyond that,
on purpose: until the mapping system answers, the ITR does not know the prefix, and a cap shared
by destinations would let a flood into one prefix block other hosts' lookups in it. Sources are
told apart by address: a host forging many source addresses looks like many light sources; the
switch's per-port miss meter bounds it there.

Hold-down. An EID whose requests all went unanswered is not asked for again for a while:
``request_holddown_first`` seconds after the first give-up, doubling with each consecutive
give-up up to ``request_holddown`` (RFC 9301 rate-limits Map-Requests to one a second per
EID-prefix and asks for a longer wait, 30 s, after repeated unanswered retransmissions; a
control-plane flood that ate one round of retransmissions must not silence an EID for 30 s). The
count of give-ups is forgotten ``request_holddown`` seconds after a hold-down ends. Any valid
answer lifts the hold-down (``holddowns_lifted``): a Map-Reply that comes late for the given-up
request's nonce (accepted and cached, ``late_replies``), an accepted reply for another request
whose record covers the EID, or a Solicit-Map-Request naming a prefix that covers it (SMRs are
not authenticated, but a lifted hold-down only lets the rate caps below decide again; this is no
way around them). (Map-Notifies answer an ETR's
registrations, not an ITR's lookups, so they lift nothing.) At most one new Map-Request per EID
goes out per ``request_min_interval``; misses inside that interval are held and asked for when it
allows.
"""

from __future__ import annotations

import heapq
import itertools
import random
from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_network

from ..mapping.cache import SOURCE_REPLY, SOURCE_STATIC, CacheEntry, MapCache
from ..protocol.addresses import NO_ADDRESS, EidPrefix
from ..protocol.ecm import EncapsulatedControlMessage
from ..protocol.map_reply import MapReply
from ..protocol.map_request import MapRequest
from ..protocol.records import Action, EidRecord, Locator
from .actions import (BufferedPacket, InstallMapping, InstallNewMappings, Reinject,
                      RemoveMapping, SendControl, SendDataProbe, SendOverAlt)
from .mapstat import MapStat

IPAddress = IPv4Address | IPv6Address
LAST_SENT_SWEEP = 1024  # request times kept before the first sweep of stale ones
SOURCE_SWEEP = 1024     # sources kept before the first sweep of idle ones


@dataclass(frozen=True)
class ItrSettings:
    itr_rlocs: tuple[IPAddress, ...]
    map_resolvers: tuple[IPAddress, ...] = ()
    map_request_targets: tuple[IPAddress, ...] = ()
    request_timeout: float = 1.0
    request_retries: int = 2
    request_min_interval: float = 1.0
    request_holddown: float = 30.0  # the longest hold-down, after consecutive give-ups on an EID
    request_holddown_first: float = 1.0  # the first one; it doubles with each give-up in a row
    request_rate: float = 400.0     # Map-Requests (and data probes) sent per second, in all
    request_rate_per_source: float = 100.0  # ... charged to one source host
    refresh_before: float = 60.0
    activity_window: float = 30.0  # traffic this long before the refresh point counts as "in use"
    buffer_per_destination: int = 16
    buffer_per_source: int = 64
    buffer_total: int = 1024
    pending_per_source: int = 64   # requests opened by one source host's misses, at once
    pending_total: int = 1024      # requests opened by misses, at once, in all
    data_probes: bool = False  # first packet of a miss goes as a data probe, not a Map-Request
    use_alt: bool = False      # Map-Requests travel the ALT (to the EID) instead


@dataclass(eq=False)
class PendingRequest:
    key: tuple[int, IPAddress]
    prefix: EidPrefix  # what the Map-Request asks for (the EID, or the entry being refreshed)
    nonce: int
    source_eid: IPAddress | None
    sent_at: float
    next_retry: float
    attempts: int = 1    # Map-Requests (or the data probe) sent so far; 0: none yet
    probe: bool = False  # opened by a data probe: no Map-Request has gone out yet
    smr_invoked: bool = False  # asked because an SMR said the mapping changed (s bit)
    packets: list[BufferedPacket] = field(default_factory=list)
    holders: list = field(default_factory=list, repr=False)  # the source of each held packet
    owner: _Source | None = field(default=None, repr=False)  # whose miss opened it (None: ours)
    waiting: bool = False  # in its source's queue for a token of the request rate caps
    closed: bool = False


class _Bucket:
    """A token bucket: ``rate`` tokens a second, at most ``rate`` (one second's worth) saved."""

    __slots__ = ("rate", "burst", "tokens", "at")

    def __init__(self, rate: float):
        self.rate = rate
        self.burst = max(1.0, rate)
        self.tokens = self.burst
        self.at: float | None = None

    def ready(self, now: float) -> bool:
        if self.at is None or now > self.at:
            if self.at is not None:
                self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
        return self.tokens >= 1

    def take(self) -> None:
        self.tokens -= 1

    def ready_above(self, now: float, reserve: float) -> bool:
        """Holds a token besides ``reserve``."""
        self.ready(now)
        return self.tokens >= 1 + reserve

    def ready_at(self, reserve: float = 0.0) -> float:
        """When it next holds a token besides ``reserve`` (as of its last look)."""
        at = self.at if self.at is not None else 0.0
        missing = 1 + reserve - self.tokens
        return at if missing <= 0 else at + missing / self.rate

    def retune(self, rate: float) -> None:
        """A new rate (a reload): the tokens saved so far are kept, within the new burst."""
        self.rate = rate
        self.burst = max(1.0, rate)
        self.tokens = min(self.tokens, self.burst)

    def full(self, now: float) -> bool:
        self.ready(now)
        return self.tokens >= self.burst


class _Source:
    """A source host (instance-id, inner source address), or the ITR itself (key None)."""

    __slots__ = ("key", "pending", "held", "bucket", "waiting", "queued")

    def __init__(self, key, bucket: _Bucket):
        self.key = key
        self.pending: OrderedDict[tuple[int, IPAddress], PendingRequest] = OrderedDict()
        self.held: deque[PendingRequest] = deque()  # the request of each packet it holds
        self.bucket = bucket
        self.waiting: deque[PendingRequest] = deque()  # requests waiting for a token
        self.queued = False  # in the round-robin of sources with waiting requests


class _Tally:
    """Counts per member, the largest found in O(1): members are kept in insertion-ordered
    groups by count (the one longest at the top count comes first); a count moves by one, or
    drops by several at once, and the top is walked down lazily (amortized O(1))."""

    def __init__(self):
        self.count: dict = {}
        self._at: dict[int, dict] = {}
        self._top = 0

    def of(self, member) -> int:
        return self.count.get(member, 0)

    def add(self, member, k: int) -> None:
        old = self.count.get(member, 0)
        new = old + k
        if old:
            group = self._at[old]
            del group[member]
            if not group:
                del self._at[old]
        if new > 0:
            self._at.setdefault(new, {})[member] = None
            self.count[member] = new
            self._top = max(self._top, new)
        else:
            self.count.pop(member, None)
        while self._top and self._top not in self._at:
            self._top -= 1

    def heaviest(self):
        return next(iter(self._at[self._top])) if self._top else None


class _EidIndex:
    """(instance-id, EID) keys sorted by (instance-id, family) and address, so that those inside
    a prefix are found in O(log n + k)."""

    def __init__(self):
        self._sorted: dict[tuple[int, int], list[int]] = {}

    def add(self, key: tuple[int, IPAddress]) -> None:
        iid, eid = key
        insort(self._sorted.setdefault((iid, eid.version), []), int(eid))

    def discard(self, key: tuple[int, IPAddress]) -> None:
        iid, eid = key
        values = self._sorted.get((iid, eid.version))
        if values:
            i = bisect_left(values, int(eid))
            if i < len(values) and values[i] == int(eid):
                del values[i]

    def within(self, prefix: EidPrefix) -> list[tuple[int, IPAddress]]:
        network = prefix.network
        values = self._sorted.get((prefix.instance_id, network.version))
        if not values:
            return []
        lo = bisect_left(values, int(network.network_address))
        hi = bisect_right(values, int(network.broadcast_address))
        kind = IPv4Address if network.version == 4 else IPv6Address
        return [(prefix.instance_id, kind(v)) for v in values[lo:hi]]


@dataclass
class HoldDown:
    """An EID given up on: not asked for until ``until``; ``strikes`` give-ups in a row, forgotten
    at ``forget_at``; a late answer to the last request (``nonce``, for ``prefix``) still counts."""

    until: float
    strikes: int
    forget_at: float
    nonce: int
    prefix: EidPrefix


class ItrEngine:
    def __init__(self, settings: ItrSettings, cache: MapCache, stats: MapStat,
                 rng: random.Random | None = None):
        if not settings.itr_rlocs:
            raise ValueError("an ITR needs at least one RLOC to put in its Map-Requests")
        if not (settings.map_resolvers or settings.map_request_targets or settings.use_alt):
            raise ValueError("an ITR needs map-resolvers, map-request targets or the ALT")
        self._settings = settings
        self.cache = cache
        self.stats = stats
        self.rng = rng or random.SystemRandom()
        self.pending: dict[tuple[int, IPAddress], PendingRequest] = {}
        self.by_nonce: dict[int, PendingRequest] = {}
        self.last_sent: dict[tuple[int, IPAddress], float] = {}
        self._sweep_last_sent_at = LAST_SENT_SWEEP  # size that triggers the next sweep
        self.last_traffic: dict[EidPrefix, float] = {}
        self.holddown: dict[tuple[int, IPAddress], HoldDown] = {}
        self._held_down = _EidIndex()        # the keys of self.holddown, by prefix
        self._late: dict[int, tuple[int, IPAddress]] = {}  # given-up nonce -> its EID
        self._forget: list = []              # heap: (forget_at, seq, key) of hold-downs
        self._timers: list = []              # heap: (next_retry, seq, request)
        self._seq = itertools.count()
        self.sources: dict[tuple, _Source] = {}
        self._sweep_sources_at = SOURCE_SWEEP
        self._self = _Source(None, _Bucket(settings.request_rate_per_source))  # our own asks
        self._opened = _Tally()   # sources by requests their misses opened
        self._holding = _Tally()  # sources by packets they have held
        self._bucket = _Bucket(settings.request_rate)
        self._reserve = 0.0
        self.settings = settings  # (the property sets the rates)
        self._ready: deque[_Source] = deque()  # sources with waiting requests, round-robin
        self._opened_total = 0    # requests open that misses opened (pending_total bounds it)
        self._held = 0

    @property
    def settings(self) -> ItrSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: ItrSettings) -> None:
        """New settings (a reload): the caps apply from the next miss on, the rates at once;
        state already above a lowered cap drains as its requests close."""
        self._settings = settings
        self._bucket.retune(settings.request_rate)
        # tokens of the ITR's bucket that queued requests leave to sources with none queued
        self._reserve = min(int(settings.request_rate // 10), int(self._bucket.burst) - 1)
        for src in (self._self, *self.sources.values()):
            src.bucket.retune(settings.request_rate_per_source)

    # -- events ---------------------------------------------------------------------------------

    def on_miss(self, instance_id: int, source: IPAddress | None, destination: IPAddress,
                packet: BufferedPacket | None, now: float) -> list:
        """A packet from ``source`` for ``destination`` found no flow. Hold it and ask for the
        mapping, within the source's share (module docstring)."""
        s = self.settings
        self.stats.misses += 1
        entry = self.cache.lookup(instance_id, destination)
        if entry is not None and not (entry.negative
                                      and entry.action == Action.SEND_MAP_REQUEST):
            # the flow is being installed (or was refused): let the pipeline decide again
            return [Reinject((packet,))] if packet is not None else []
        key = (instance_id, destination)
        src = self._source((instance_id, source), now)
        pending = self.pending.get(key)
        if pending is not None:
            self._hold(pending, packet, src)
            return []
        held_down = self.holddown.get(key)
        if held_down is not None and held_down.until > now:
            self.stats.misses_held_down += 1
            if packet is not None:
                self.stats.buffer_dropped += 1
            return []
        if self._opened.of(src) >= s.pending_per_source:
            self.stats.requests_refused_source += 1
            return []
        if self._opened_total >= s.pending_total and not self._evict_request_for(src):
            self.stats.requests_refused_full += 1
            return []
        prefix = EidPrefix(instance_id, ip_network(destination))
        last = self.last_sent.get(key)
        if last is not None and now - last < s.request_min_interval:
            # rate-limited: hold the packet, and ask as soon as the limit allows
            pending = self._open(key, prefix, source, src, now)
            self._schedule(pending, last + s.request_min_interval)
            self._hold(pending, packet, src)
            return []
        probe = s.data_probes and packet is not None and destination.version == 4
        pending = self._open(key, prefix, source, src, now, bits=24 if probe else 64)
        if probe and not src.waiting and self._take(src, now):
            # the packet itself asks: the ETR owning the EID answers it with a Map-Reply; a
            # Map-Request follows only if that answer does not come (retransmission)
            pending.probe, pending.attempts = True, 1
            self._schedule(pending, now + s.request_timeout)
            self._note_sent(key, now)
            self.stats.data_probes_sent += 1
            return [SendDataProbe(packet, pending.nonce)]
        self._hold(pending, packet, src)
        return self._transmit(pending, now)

    def on_map_reply(self, reply: MapReply, now: float) -> list:
        """A Map-Reply arrived (over the underlay). Check it, cache it, release held packets."""
        pending = self.by_nonce.get(reply.nonce)
        late = self._late.get(reply.nonce) if pending is None else None
        if pending is not None:
            wanted = pending.prefix
        elif late is not None:
            wanted = self.holddown[late].prefix
        else:
            self.stats.replies_rejected += 1
            return []
        record = next((r for r in reply.records if _covers(r, wanted)), None)
        if record is None:
            self.stats.replies_rejected += 1
            return []
        if late is not None:
            # the answer to a request given up on: as good as an early one
            self.stats.late_replies += 1
            pending = self.pending.get(late)  # asked again since: this answers it too
        else:
            self.stats.requests_answered += 1
        if pending is not None:
            self._close(pending)
        self._lift(record.prefix, now)
        entry = CacheEntry(record.prefix, record.locators, _action(record.action), record.ttl,
                           now + record.ttl * 60, SOURCE_REPLY, now, record.authoritative,
                           record.map_version)
        if entry.negative:
            self.stats.negative_replies += 1
        actions: list = [InstallMapping(entry, self.cache.insert(entry))]
        if pending is not None and pending.packets:
            if entry.negative and entry.action != Action.NATIVELY_FORWARD:
                self.stats.buffer_dropped += len(pending.packets)
            else:
                self.stats.reinjected += len(pending.packets)
                actions.append(Reinject(tuple(pending.packets)))
        return actions

    def note_traffic(self, prefix: EidPrefix, now: float) -> None:
        """The switch reports packets through this entry's flow since the last look."""
        self.last_traffic[prefix] = now

    def add_static(self, prefix: EidPrefix, locators: tuple[Locator, ...], now: float,
                   action: Action = Action.NO_ACTION) -> list:
        """An operator's mapping: cached until removed."""
        entry = CacheEntry(prefix, locators, action, 0, None, SOURCE_STATIC, now, True)
        return [InstallMapping(entry, self.cache.insert(entry))]

    def add_static_many(self, mappings, now: float) -> list:
        """Operator mappings, ``(prefix, locators)`` pairs, as :meth:`add_static` adds each, in
        order: the new prefixes' in :class:`InstallNewMappings` runs (a bulk load compiles those
        together), a replaced one's in its own :class:`InstallMapping`."""
        actions: list = []
        fresh: list = []
        insert = self.cache.insert
        for prefix, locators in mappings:
            entry = CacheEntry(prefix, locators, Action.NO_ACTION, 0, None, SOURCE_STATIC, now,
                               True)
            old = insert(entry)
            if old is None:
                fresh.append(entry)
                continue
            if fresh:
                actions.append(InstallNewMappings(fresh))
                fresh = []
            actions.append(InstallMapping(entry, old))
        if fresh:
            actions.append(InstallNewMappings(fresh))
        return actions

    def remove(self, prefix: EidPrefix) -> list:
        entry = self.cache.remove(prefix)
        self.last_traffic.pop(prefix, None)
        return [RemoveMapping(entry)] if entry is not None else []

    def on_timer(self, now: float) -> list:
        """Retransmit, give up, send what the rate caps held back, expire and refresh whatever
        is due at ``now``."""
        actions: list = self._drain(now)  # the requests waiting longest go first
        timers = self._timers
        while timers and timers[0][0] <= now:
            due, _seq, pending = heapq.heappop(timers)
            if pending.closed or pending.waiting or pending.next_retry != due:
                continue  # answered, evicted, queued or rescheduled since
            if pending.attempts > self.settings.request_retries:
                dropped = len(pending.packets)
                self._close(pending)
                self._hold_down(pending, now)
                self.stats.requests_timed_out += 1
                self.stats.buffer_dropped += dropped
                continue
            actions.extend(self._transmit(pending, now))
        forget = self._forget
        while forget and forget[0][0] <= now:
            at, _seq, key = heapq.heappop(forget)
            record = self.holddown.get(key)
            if record is not None and record.forget_at == at:
                self._unhold(key)
        for entry in self.cache.expire(now):
            self.last_traffic.pop(entry.prefix, None)
            actions.append(RemoveMapping(entry))
        for entry in self._due_for_refresh(now):
            actions.extend(self.request_again(entry, now))
        return actions

    def on_smr(self, smr: MapRequest, now: float) -> list:
        """A Solicit-Map-Request: its source EID names a mapping that changed at its ETR. Ask
        for a cached mapping covering it again (smr-invoked); an SMR for a mapping we do not
        hold, or one for a mapping asked for less than request_min_interval ago, is counted
        and changes nothing (but it lifts the hold-downs inside the prefix it names)."""
        self.stats.smrs_received += 1
        entry = None
        try:
            wanted = EidPrefix.from_wire(smr.source_eid, _host_length(smr.source_eid))
            named = EidPrefix.from_wire(smr.source_eid, _named_length(smr.source_eid))
        except (ValueError, TypeError, AttributeError):
            wanted = named = None
        if wanted is not None:
            self._lift(named, now)  # the ETR of the prefix it names is alive and answering
            entry = self.cache.lookup(wanted.instance_id, wanted.network.network_address)
        if entry is None or entry.negative:
            self.stats.smrs_ignored += 1
            return []
        key = (entry.prefix.instance_id, entry.prefix.network.network_address)
        last = self.last_sent.get(key)
        if last is not None and now - last < self.settings.request_min_interval:
            self.stats.smrs_ignored += 1
            return []
        return self.request_again(entry, now, smr_invoked=True)

    def request_again(self, entry: CacheEntry, now: float, smr_invoked: bool = False) -> list:
        """Ask for a cached mapping again (before it expires, because probing found all its
        locators down, or because an SMR said it changed); the entry stays in use until the
        answer replaces it. Charged to the ITR itself: never refused, only paced."""
        eid = entry.prefix.network.network_address
        key = (entry.prefix.instance_id, eid)
        if key in self.pending:
            return []
        pending = self._open(key, entry.prefix, None, None, now, smr_invoked=smr_invoked)
        return self._transmit(pending, now)

    def next_deadline(self) -> float | None:
        """When ``on_timer`` next has work (None: nothing scheduled)."""
        timers = self._timers
        while timers and _stale(timers[0]):
            heapq.heappop(timers)
        times = [timers[0][0]] if timers else []
        if self._ready:
            times.append(max(self._bucket.ready_at(self._reserve),
                             min(src.bucket.ready_at() for src in self._ready)))
        expiry = self.cache.next_expiry()
        if expiry is not None:
            times.append(expiry)
        times.extend(e.expires_at - self.settings.refresh_before
                     for e in self._refreshable())
        return min(times) if times else None

    # -- internals: fair state ------------------------------------------------------------------

    def _source(self, key: tuple, now: float) -> _Source:
        src = self.sources.get(key)
        if src is None:
            if len(self.sources) >= self._sweep_sources_at:
                self._sweep_sources(now)
            src = self.sources[key] = _Source(key, _Bucket(self.settings.request_rate_per_source))
        return src

    def _sweep_sources(self, now: float) -> None:
        """Forget the sources with nothing open, held or waiting whose bucket has filled up
        again (forgetting one earlier would hand it a fresh bucket): amortized O(1), the table
        having doubled since the last sweep."""
        self.sources = {k: src for k, src in self.sources.items()
                        if src.pending or self._holding.of(src) or src.queued
                        or not src.bucket.full(now)}
        self._sweep_sources_at = max(SOURCE_SWEEP, 2 * len(self.sources))

    def _open(self, key, prefix: EidPrefix, source_eid, owner: _Source | None, now: float,
              bits: int = 64, smr_invoked: bool = False) -> PendingRequest:
        pending = PendingRequest(key, prefix, self._nonce(bits), source_eid, now, now,
                                 attempts=0, smr_invoked=smr_invoked, owner=owner)
        self.pending[key] = pending
        self.by_nonce[pending.nonce] = pending
        if owner is not None:
            owner.pending[key] = pending
            self._opened.add(owner, 1)
            self._opened_total += 1
        return pending

    def _close(self, pending: PendingRequest) -> None:
        if self.pending.get(pending.key) is pending:
            del self.pending[pending.key]
        self.by_nonce.pop(pending.nonce, None)
        pending.closed = True
        owner = pending.owner
        if owner is not None:
            del owner.pending[pending.key]
            self._opened.add(owner, -1)
            self._opened_total -= 1
        for holder in pending.holders:
            self._holding.add(holder, -1)
        self._held -= len(pending.packets)

    def _evict_request_for(self, src: _Source) -> bool:
        """The table is full: close the oldest request of the source holding the most, if it
        holds clearly more than ``src`` (:func:`_heavier`)."""
        if not _heavier(self._opened, src):
            return False
        heavy = self._opened.heaviest()
        victim = next(iter(heavy.pending.values()))
        dropped = len(victim.packets)
        self._close(victim)
        self.stats.requests_evicted += 1
        self.stats.buffer_dropped += dropped
        return True

    def _hold(self, pending: PendingRequest, packet: BufferedPacket | None,
              src: _Source) -> None:
        if packet is None:
            return
        s = self.settings
        if len(pending.packets) >= s.buffer_per_destination:
            self.stats.buffer_overflow += 1
            return
        holding = self._holding.of(src)
        if holding >= s.buffer_per_source:
            self.stats.buffer_source_full += 1
            return
        if self._held >= s.buffer_total and not self._evict_packet_for(src):
            self.stats.buffer_overflow += 1
            return
        pending.packets.append(packet)
        pending.holders.append(src)
        src.held.append(pending)
        if len(src.held) > 2 * holding + 32:  # mostly requests closed since: compact
            src.held = deque(p for p in src.held if not p.closed)
        self._holding.add(src, 1)
        self._held += 1
        self.stats.buffered += 1

    def _evict_packet_for(self, src: _Source) -> bool:
        """The buffer is full: drop the oldest packet of the source holding the most, if it
        holds clearly more than ``src`` (:func:`_heavier`)."""
        if not _heavier(self._holding, src):
            return False
        heavy = self._holding.heaviest()
        while heavy.held:
            pending = heavy.held.popleft()
            if pending.closed:
                continue
            i = next(i for i, h in enumerate(pending.holders) if h is heavy)
            del pending.packets[i], pending.holders[i]
            self._holding.add(heavy, -1)
            self._held -= 1
            self.stats.buffer_evicted += 1
            return True
        return False

    def _take(self, src: _Source, now: float) -> bool:
        """A token from the source's bucket and the ITR's, if both have one."""
        if src.bucket.ready(now) and self._bucket.ready(now):
            src.bucket.take()
            self._bucket.take()
            return True
        return False

    def _transmit(self, pending: PendingRequest, now: float) -> list:
        """Send the request's next Map-Request now if the rate caps allow, else queue it."""
        src = pending.owner or self._self
        if not src.waiting and self._take(src, now):
            return self._send_now(pending, now)
        pending.waiting = True
        src.waiting.append(pending)
        self.stats.requests_deferred += 1
        if not src.queued:
            src.queued = True
            self._ready.append(src)
        return []

    def _drain(self, now: float) -> list:
        """Send waiting requests as tokens allow, one per source in turn."""
        actions: list = []
        ready = self._ready
        while ready and self._bucket.ready_above(now, self._reserve):
            sent = False
            for _ in range(len(ready)):
                src = ready.popleft()
                waiting = src.waiting
                while waiting and waiting[0].closed:
                    waiting.popleft()
                if waiting and src.bucket.ready(now):
                    src.bucket.take()
                    self._bucket.take()
                    pending = waiting.popleft()
                    pending.waiting = False
                    actions.extend(self._send_now(pending, now))
                    sent = True
                while waiting and waiting[0].closed:
                    waiting.popleft()
                if waiting:
                    ready.append(src)
                else:
                    src.queued = False
                if not self._bucket.ready_above(now, self._reserve):
                    break
            if not sent:
                break
        return actions

    def _send_now(self, pending: PendingRequest, now: float) -> list:
        pending.attempts += 1
        pending.next_retry = now + self.settings.request_timeout * 2 ** (pending.attempts - 1)
        self._schedule(pending, pending.next_retry)
        first_request = pending.attempts == 1 or (pending.probe and pending.attempts == 2)
        if not first_request:
            self.stats.requests_retransmitted += 1
        return self._send(pending, now, retransmission=not first_request)

    def _schedule(self, pending: PendingRequest, at: float) -> None:
        pending.next_retry = at
        heapq.heappush(self._timers, (at, next(self._seq), pending))

    def _hold_down(self, pending: PendingRequest, now: float) -> None:
        """Given up on ``pending``: hold its EID down, longer with each give-up in a row."""
        s, key = self.settings, pending.key
        previous = self.holddown.get(key)
        strikes = previous.strikes + 1 if previous is not None else 1
        if previous is not None:
            self._late.pop(previous.nonce, None)
        else:
            self._held_down.add(key)
        until = now + min(s.request_holddown,
                          s.request_holddown_first * 2 ** min(strikes - 1, 32))
        record = HoldDown(until, strikes, until + s.request_holddown, pending.nonce,
                          pending.prefix)
        self.holddown[key] = record
        self._late[pending.nonce] = key
        heapq.heappush(self._forget, (record.forget_at, next(self._seq), key))

    def _unhold(self, key: tuple[int, IPAddress]) -> None:
        record = self.holddown.pop(key)
        self._held_down.discard(key)
        if self._late.get(record.nonce) == key:
            del self._late[record.nonce]

    def _lift(self, prefix: EidPrefix, now: float) -> None:
        """A valid answer covers ``prefix``: the EIDs in it are no longer held down, nor is the
        count of their give-ups kept."""
        try:
            keys = self._held_down.within(prefix)
        except (AttributeError, ValueError):  # not an IP EID
            return
        for key in keys:
            if self.holddown[key].until > now:
                self.stats.holddowns_lifted += 1
            self._unhold(key)

    # -- internals: requests -------------------------------------------------------------------

    def _refreshable(self):
        """Entries still in use: traffic seen shortly before their refresh point."""
        s = self.settings
        # only entries that carried traffic qualify: walk those, not the whole cache
        for prefix, seen in list(self.last_traffic.items()):
            entry = self.cache.get(prefix)
            if entry is None or entry.source != SOURCE_REPLY or entry.expires_at is None:
                continue
            refresh_at = entry.expires_at - s.refresh_before
            if seen is not None and seen >= max(entry.created_at,
                                                refresh_at - s.activity_window):
                yield entry

    def _due_for_refresh(self, now: float) -> list[CacheEntry]:
        return [e for e in self._refreshable()
                if e.expires_at - self.settings.refresh_before <= now]

    def _note_sent(self, key: tuple[int, IPAddress], now: float) -> None:
        """Remember when we last asked for an EID (the rate limit). Times older than
        ``request_min_interval`` no longer limit anything: they are swept out once the table has
        doubled since the last sweep, so it holds the recently asked EIDs, not every EID ever
        asked for (amortized O(1) per request)."""
        self.last_sent[key] = now
        if len(self.last_sent) > self._sweep_last_sent_at:
            horizon = now - self.settings.request_min_interval
            self.last_sent = {k: t for k, t in self.last_sent.items() if t > horizon}
            self._sweep_last_sent_at = max(LAST_SENT_SWEEP, 2 * len(self.last_sent))

    def _nonce(self, bits: int = 64) -> int:
        while True:
            nonce = self.rng.getrandbits(bits)
            if nonce and nonce not in self.by_nonce and nonce not in self._late:
                return nonce

    def _send(self, pending: PendingRequest, now: float, retransmission: bool = False) -> list:
        iid, eid = pending.key
        self._note_sent(pending.key, now)
        if not retransmission:
            self.stats.requests_sent += 1
        if self.settings.use_alt:
            return [SendOverAlt(eid, self._request(pending, self.settings.itr_rlocs).encode())]
        by_family: dict[int, bytes] = {}  # the message as sent to destinations of each family

        def message(destination: IPAddress) -> bytes:
            version = destination.version
            if version not in by_family:
                rlocs = self._rlocs_first(version)
                request = self._request(pending, rlocs)
                by_family[version] = EncapsulatedControlMessage(
                    _inner_source(pending.source_eid, eid, rlocs), eid, request).encode() \
                    if self.settings.map_resolvers else request.encode()
            return by_family[version]

        targets = self.settings.map_resolvers or self.settings.map_request_targets
        return [SendControl(target, message(target)) for target in targets]

    def _request(self, pending: PendingRequest, rlocs: tuple[IPAddress, ...]) -> MapRequest:
        return MapRequest(
            nonce=pending.nonce,
            records=(EidRecord.for_prefix(pending.prefix),),
            itr_rlocs=rlocs,
            source_eid=pending.source_eid if pending.source_eid is not None else NO_ADDRESS,
            smr_invoked=pending.smr_invoked)

    def _rlocs_first(self, version: int) -> tuple[IPAddress, ...]:
        """Our ITR-RLOCs, those of family ``version`` first: a request sent over IPv6 asks for
        its reply over IPv6 (ETRs answer the first ITR-RLOC they can reach)."""
        rlocs = self.settings.itr_rlocs
        return tuple(sorted(rlocs, key=lambda r: r.version != version))


def _host_length(address) -> int:
    """An SMR's source EID names an address: its host prefix length."""
    inner = getattr(address, "address", address)
    return 32 if inner.version == 4 else 128


def _named_length(address) -> int:
    """The prefix length an SMR's source EID names: the Instance-ID LCAF's mask-len when it
    carries one (as deployed implementations write it), else the host's."""
    host = _host_length(address)
    mask = getattr(address, "mask_len", 0)
    return mask if 0 < mask <= host else host


def _covers(record, wanted: EidPrefix) -> bool:
    try:
        return record.prefix.contains(wanted)
    except ValueError:  # not an IP EID
        return False


def _action(value) -> Action:
    return value if isinstance(value, Action) else Action.NO_ACTION


def _inner_source(source_eid, eid: IPAddress, rlocs) -> IPAddress:
    """An ECM's inner source must be of the EID's family: the source EID, else one of our RLOCs,
    else the unspecified address (the reply goes to the ITR-RLOCs, not to this source)."""
    if source_eid is not None and source_eid.version == eid.version:
        return source_eid
    same = [r for r in rlocs if r.version == eid.version]
    if same:
        return same[0]
    return IPv4Address(0) if eid.version == 4 else IPv6Address(0)


def _heavier(tally: _Tally, src: _Source) -> bool:
    """Whether the heaviest source should give way to ``src``: it holds at least two more (so
    that the order between them stays, and sources holding as much do not churn), or ``src``
    holds nothing at all."""
    heavy = tally.heaviest()
    if heavy is None or heavy is src:
        return False
    mine = tally.of(src)
    return tally.of(heavy) >= mine + 2 or (mine == 0 and tally.of(heavy) >= 1)


def _stale(timer) -> bool:
    """A retransmission timer whose request was answered, evicted, queued or rescheduled."""
    due, _seq, pending = timer
    return pending.closed or pending.waiting or pending.next_retry != due
