"""The ITR's mapping daemon: cache misses become Map-Requests, Map-Replies become mappings.

A miss (OpenLISP's MAPM_MISS) for an EID opens a pending request keyed by (instance-id, EID): a
Map-Request with a fresh random 64-bit nonce goes to the configured Map-Resolvers (inside an ECM) or
straight to the configured ETR addresses; it is retransmitted with exponential backoff (1 s, 2 s,
4 s ... by default) and given up after the configured retries. While it waits, punted packets are
held, bounded per destination and in total. An EID whose requests all went unanswered is not asked
for again until ``request_holddown`` has passed (RFC 9301 asks for a 30 s wait after unanswered
retransmissions). A Map-Reply is accepted only with the nonce of an
outstanding request and a record covering the EID asked for; its mapping enters the cache with the
record's TTL and the held packets are released. Entries expire with their TTL; one that still
carries traffic (seen within ``activity_window`` before its refresh point) is refreshed shortly
before it would expire.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_network

from ..mapping.cache import SOURCE_REPLY, SOURCE_STATIC, CacheEntry, MapCache
from ..protocol.addresses import NO_ADDRESS, EidPrefix
from ..protocol.ecm import EncapsulatedControlMessage
from ..protocol.map_reply import MapReply
from ..protocol.map_request import MapRequest
from ..protocol.records import Action, EidRecord, Locator
from .actions import (BufferedPacket, InstallMapping, Reinject, RemoveMapping, SendControl,
                      SendDataProbe, SendOverAlt)
from .mapstat import MapStat

IPAddress = IPv4Address | IPv6Address
LAST_SENT_SWEEP = 1024  # request times kept before the first sweep of stale ones


@dataclass(frozen=True)
class ItrSettings:
    itr_rlocs: tuple[IPAddress, ...]
    map_resolvers: tuple[IPAddress, ...] = ()
    map_request_targets: tuple[IPAddress, ...] = ()
    request_timeout: float = 1.0
    request_retries: int = 2
    request_min_interval: float = 1.0
    request_holddown: float = 30.0  # after giving up on an EID, wait this long before asking again
    refresh_before: float = 60.0
    activity_window: float = 30.0  # traffic this long before the refresh point counts as "in use"
    buffer_per_destination: int = 16
    buffer_total: int = 1024
    data_probes: bool = False  # first packet of a miss goes as a data probe, not a Map-Request
    use_alt: bool = False      # Map-Requests travel the ALT (to the EID) instead


@dataclass
class PendingRequest:
    key: tuple[int, IPAddress]
    prefix: EidPrefix  # what the Map-Request asks for (the EID, or the entry being refreshed)
    nonce: int
    source_eid: IPAddress | None
    sent_at: float
    next_retry: float
    attempts: int = 1    # Map-Requests (or the data probe) sent so far; 0: deferred by rate limit
    probe: bool = False  # opened by a data probe: no Map-Request has gone out yet
    smr_invoked: bool = False  # asked because an SMR said the mapping changed (s bit)
    packets: list[BufferedPacket] = field(default_factory=list)


class ItrEngine:
    def __init__(self, settings: ItrSettings, cache: MapCache, stats: MapStat,
                 rng: random.Random | None = None):
        if not settings.itr_rlocs:
            raise ValueError("an ITR needs at least one RLOC to put in its Map-Requests")
        if not (settings.map_resolvers or settings.map_request_targets or settings.use_alt):
            raise ValueError("an ITR needs map-resolvers, map-request targets or the ALT")
        self.settings = settings
        self.cache = cache
        self.stats = stats
        self.rng = rng or random.SystemRandom()
        self.pending: dict[tuple[int, IPAddress], PendingRequest] = {}
        self.by_nonce: dict[int, PendingRequest] = {}
        self.last_sent: dict[tuple[int, IPAddress], float] = {}
        self._sweep_last_sent_at = LAST_SENT_SWEEP  # size that triggers the next sweep
        self.last_traffic: dict[EidPrefix, float] = {}
        self.holddown: dict[tuple[int, IPAddress], float] = {}
        self._held = 0

    # -- events ---------------------------------------------------------------------------------

    def on_miss(self, instance_id: int, source: IPAddress | None, destination: IPAddress,
                packet: BufferedPacket | None, now: float) -> list:
        """A packet for ``destination`` found no flow. Hold it and ask for the mapping."""
        self.stats.misses += 1
        entry = self.cache.lookup(instance_id, destination)
        if entry is not None and not (entry.negative
                                      and entry.action == Action.SEND_MAP_REQUEST):
            # the flow is being installed (or was refused): let the pipeline decide again
            return [Reinject((packet,))] if packet is not None else []
        key = (instance_id, destination)
        pending = self.pending.get(key)
        if pending is not None:
            self._hold(pending, packet)
            return []
        if self.holddown.get(key, now) > now:
            if packet is not None:
                self.stats.buffer_dropped += 1  # held down after unanswered requests
            return []
        last = self.last_sent.get(key)
        if last is not None and now - last < self.settings.request_min_interval:
            # rate-limited: hold the packet, and ask as soon as the limit allows
            pending = PendingRequest(key, EidPrefix(instance_id, ip_network(destination)),
                                     self._nonce(), source, now,
                                     last + self.settings.request_min_interval, attempts=0)
            self.pending[key] = pending
            self.by_nonce[pending.nonce] = pending
            self._hold(pending, packet)
            return []
        probe = self.settings.data_probes and packet is not None and destination.version == 4
        pending = PendingRequest(key, EidPrefix(instance_id, ip_network(destination)),
                                 self._nonce(24 if probe else 64), source, now,
                                 now + self.settings.request_timeout, probe=probe)
        self.pending[key] = pending
        self.by_nonce[pending.nonce] = pending
        if probe:
            # the packet itself asks: the ETR owning the EID answers it with a Map-Reply; a
            # Map-Request follows only if that answer does not come (retransmission)
            self._note_sent(key, now)
            self.stats.data_probes_sent += 1
            return [SendDataProbe(packet, pending.nonce)]
        self._hold(pending, packet)
        return self._send(pending, now)

    def on_map_reply(self, reply: MapReply, now: float) -> list:
        """A Map-Reply arrived (over the underlay). Check it, cache it, release held packets."""
        pending = self.by_nonce.get(reply.nonce)
        if pending is None:
            self.stats.replies_rejected += 1
            return []
        wanted = pending.prefix
        record = next((r for r in reply.records if _covers(r, wanted)), None)
        if record is None:
            self.stats.replies_rejected += 1
            return []
        self._close(pending)
        self.stats.requests_answered += 1
        entry = CacheEntry(record.prefix, record.locators, _action(record.action), record.ttl,
                           now + record.ttl * 60, SOURCE_REPLY, now, record.authoritative,
                           record.map_version)
        if entry.negative:
            self.stats.negative_replies += 1
        actions: list = [InstallMapping(entry, self.cache.insert(entry))]
        if pending.packets:
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

    def remove(self, prefix: EidPrefix) -> list:
        entry = self.cache.remove(prefix)
        self.last_traffic.pop(prefix, None)
        return [RemoveMapping(entry)] if entry is not None else []

    def on_timer(self, now: float) -> list:
        """Retransmit, give up, expire and refresh whatever is due at ``now``."""
        actions: list = []
        for pending in [p for p in self.pending.values() if p.next_retry <= now]:
            if pending.attempts > self.settings.request_retries:
                self._close(pending)
                self.holddown[pending.key] = now + self.settings.request_holddown
                self.stats.requests_timed_out += 1
                self.stats.buffer_dropped += len(pending.packets)
                continue
            pending.attempts += 1
            pending.next_retry = now + self.settings.request_timeout * 2 ** (pending.attempts - 1)
            first_request = pending.attempts == 1 or (pending.probe and pending.attempts == 2)
            if not first_request:
                self.stats.requests_retransmitted += 1
            actions.extend(self._send(pending, now, retransmission=not first_request))
        for key in [k for k, until in self.holddown.items() if until <= now]:
            del self.holddown[key]
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
        and changes nothing."""
        self.stats.smrs_received += 1
        entry = None
        try:
            wanted = EidPrefix.from_wire(smr.source_eid, _host_length(smr.source_eid))
        except (ValueError, TypeError, AttributeError):
            wanted = None
        if wanted is not None:
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
        answer replaces it."""
        eid = entry.prefix.network.network_address
        key = (entry.prefix.instance_id, eid)
        if key in self.pending:
            return []
        pending = PendingRequest(key, entry.prefix, self._nonce(), None, now,
                                 now + self.settings.request_timeout, smr_invoked=smr_invoked)
        self.pending[key] = pending
        self.by_nonce[pending.nonce] = pending
        return self._send(pending, now)

    def next_deadline(self) -> float | None:
        """When ``on_timer`` next has work (None: nothing scheduled)."""
        times = [p.next_retry for p in self.pending.values()]
        expiry = self.cache.next_expiry()
        if expiry is not None:
            times.append(expiry)
        times.extend(e.expires_at - self.settings.refresh_before
                     for e in self._refreshable())
        return min(times) if times else None

    # -- internals ------------------------------------------------------------------------------

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
            if nonce and nonce not in self.by_nonce:
                return nonce

    def _hold(self, pending: PendingRequest, packet: BufferedPacket | None) -> None:
        if packet is None:
            return
        if (len(pending.packets) >= self.settings.buffer_per_destination
                or self._held >= self.settings.buffer_total):
            self.stats.buffer_overflow += 1
            return
        pending.packets.append(packet)
        self._held += 1
        self.stats.buffered += 1

    def _close(self, pending: PendingRequest) -> None:
        self.pending.pop(pending.key, None)
        self.by_nonce.pop(pending.nonce, None)
        self._held -= len(pending.packets)

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
