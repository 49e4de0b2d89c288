"""Solicit-Map-Requests (SMR, RFC 9301 section 6.1), sans I/O: both sides.

ETR side (:class:`SmrSender`): every Map-Request the ETR answers for a local prefix leaves a note
of the asking ITR (its first ITR-RLOC, the request's source EID) until the answer's TTL runs out:
those ITRs may hold the mapping in their caches. When the prefix's mapping changes, each of them
gets an SMR: a Map-Request with the S bit, the changed prefix's address as source EID and the
ITR's EID as record, sent to the ITR's RLOC. SMRs leave at most ``rate`` per second (a token
bucket; the rest wait in a bounded queue); the notes are bounded too (the oldest go first).

ITR side: an SMR whose source EID a cached mapping covers makes the ITR ask for that mapping again
through the mapping system, with the smr-invoked bit (:meth:`ItrEngine.request_again`); the
cached mapping stays in use until the answer replaces it, in place. An SMR for a mapping the ITR
does not hold is counted and ignored (that is :mod:`lisp_app.node.control_plane`'s job).
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from ipaddress import IPv4Address, IPv6Address

from ..protocol.addresses import EidPrefix, InstanceIdAddress
from ..protocol.map_request import MapRequest
from ..protocol.records import EidRecord
from .actions import SendControl
from .mapstat import MapStat

IPAddress = IPv4Address | IPv6Address
MAX_NOTES = 100_000   # (prefix, ITR) pairs remembered, in all
MAX_QUEUE = 100_000   # SMRs waiting for the rate cap


class SmrSender:
    """The ETR's memory of who asked, and the SMRs a change sends them."""

    def __init__(self, itr_rlocs: tuple[IPAddress, ...], stats: MapStat, rng: random.Random,
                 rate: float = 100.0, reaches=lambda address: True):
        self.itr_rlocs = itr_rlocs
        self.stats = stats
        self.rng = rng
        self.rate = rate
        self.reaches = reaches
        # (local prefix, ITR RLOC) -> (expires_at, the EID the ITR asked for), oldest first
        self._notes: OrderedDict[tuple[EidPrefix, IPAddress], tuple[float, object]] = \
            OrderedDict()
        self._queue: deque = deque()
        self._tokens = max(1.0, rate)
        self._tokens_at: float | None = None

    def __len__(self) -> int:
        return len(self._notes)

    def queued(self) -> int:
        return len(self._queue)

    def note_request(self, prefix: EidPrefix, request: MapRequest, ttl_minutes: int,
                     now: float) -> None:
        """The ETR answered ``request`` for the local ``prefix`` with this TTL."""
        if request.probe or request.smr:
            return  # probes and SMRs do not fill caches
        itr = next((r for r in request.itr_rlocs
                    if type(r) in (IPv4Address, IPv6Address) and self.reaches(r)), None)
        if itr is None:
            return
        key = (prefix, itr)
        self._notes.pop(key, None)
        self._notes[key] = (now + ttl_minutes * 60.0, _asker_eid(prefix, request.source_eid))
        while len(self._notes) > MAX_NOTES:
            self._notes.popitem(last=False)

    def on_change(self, prefix: EidPrefix, now: float) -> int:
        """The local mapping ``prefix`` changed: queue an SMR for each ITR that may cache it;
        returns how many."""
        queued = 0
        for (p, itr), (until, eid) in list(self._notes.items()):
            if until <= now:
                del self._notes[(p, itr)]
                continue
            if p != prefix:
                continue
            if len(self._queue) >= MAX_QUEUE:
                self.stats.smrs_dropped += 1
                continue
            self._queue.append((prefix, itr, eid))
            queued += 1
        return queued

    def next_deadline(self) -> float | None:
        if not self._queue:
            return None
        if self._tokens >= 1.0 or self._tokens_at is None:
            return self._tokens_at or 0.0
        return self._tokens_at + (1.0 - self._tokens) / self.rate

    def on_timer(self, now: float) -> list[SendControl]:
        if self._tokens_at is not None:
            self._tokens = min(max(1.0, self.rate),
                               self._tokens + (now - self._tokens_at) * self.rate)
        self._tokens_at = now
        out = []
        while self._queue and self._tokens >= 1.0:
            prefix, itr, eid = self._queue.popleft()
            self._tokens -= 1.0
            out.append(self._smr(prefix, itr, eid))
        return out

    def _smr(self, prefix: EidPrefix, itr: IPAddress, eid) -> SendControl:
        rlocs = tuple(sorted(self.itr_rlocs, key=lambda r: r.version != itr.version))
        record = EidRecord.for_prefix(eid) if isinstance(eid, EidPrefix) else \
            EidRecord.for_prefix(prefix)
        request = MapRequest(nonce=self.rng.getrandbits(64) or 1, records=(record,),
                             itr_rlocs=rlocs, source_eid=_source_eid(prefix), smr=True)
        self.stats.smrs_sent += 1
        return SendControl(itr, request.encode())


def _asker_eid(prefix: EidPrefix, source_eid) -> EidPrefix | None:
    """The EID behind the asking ITR (its Map-Request's source EID, in the prefix's
    instance-id), which an SMR names in its record; None when the request named none."""
    if type(source_eid) is InstanceIdAddress:
        source_eid = source_eid.address
    if type(source_eid) not in (IPv4Address, IPv6Address):
        return None
    return EidPrefix.from_wire(InstanceIdAddress(prefix.instance_id, source_eid)
                               if prefix.instance_id else source_eid, source_eid.max_prefixlen)


def _source_eid(prefix: EidPrefix):
    """The changed prefix's address, with its instance-id when it has one (LCAF)."""
    address = prefix.network.network_address
    if prefix.instance_id:
        return InstanceIdAddress(prefix.instance_id, address, prefix.network.prefixlen)
    return address
