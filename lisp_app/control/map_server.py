"""The Map-Server role (RFC 9301 sections 4.2 and 5.6-5.7), sans I/O.

Sites are configured with an authentication key and the EID prefixes they may register. A
Map-Register is accepted only when its HMAC (key-id 1: HMAC-SHA-1, key-id 2: HMAC-SHA-256, over
the message as received with the authentication data zeroed) verifies with the key of a site whose
allowed prefixes contain every record; anything else is counted, logged and ignored. Accepted
registrations live 3 minutes unless refreshed; a registration that asked for it (M bit) gets a
Map-Notify authenticated the same way. Registered prefixes are announced into the ALT (or the
site's configured aggregates are) and withdrawn when their last registration expires.

As the ALT's last hop, a Map-Request for a registered EID is answered by the Map-Server itself when
the registration asked for proxy replies (P bit), and otherwise forwarded in an ECM to the
registered ETR. For a configured site that has not registered, the answer is a negative Map-Reply
(natively-forward, 1 minute), as RFC 9301 suggests, for the largest part of the site's space around
the EID that no registration touches (never a prefix that would hide a registered one). Without an
ALT the co-located Map-Resolver resolves through the same registrations
(:mod:`lisp_app.control.map_resolver`).
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from ..logs import Summary
from ..mapping.lpm import PrefixTable
from ..mapping.space import WIDTH, PrefixStarts
from ..protocol.addresses import EidPrefix
from ..protocol.ecm import EncapsulatedControlMessage
from ..protocol.map_register import (KEY_ID_NONE, MapNotify, MapRegister, sign,
                                     verify_authentication)
from ..protocol.map_reply import MapReply, with_nonce
from ..protocol.map_request import MapRequest
from ..protocol.records import Action, MappingRecord
from ..alt.effects import Announce, Withdraw
from .actions import SendControl

LOG = logging.getLogger(__name__)
REFUSED = Summary(LOG, "refused Map-Registers", logging.WARNING)
IPAddress = IPv4Address | IPv6Address

REGISTRATION_LIFETIME = 180.0  # RFC 9301: 3 minutes without a refresh
UNREGISTERED_TTL = 1           # minutes, for the negative reply to a configured, unregistered site


@dataclass(frozen=True)
class MsSite:
    name: str
    key: str
    eid_prefixes: tuple[EidPrefix, ...]
    announce: tuple[EidPrefix, ...] = ()  # aggregates to announce instead of each registration


@dataclass(frozen=True)
class Registration:
    site: str
    record: MappingRecord
    etr: IPAddress
    proxy_reply: bool
    expires_at: float


@dataclass
class MapServerStats:
    registers_accepted: int = 0
    registers_bad_auth: int = 0
    registers_bad_prefix: int = 0
    notifies_sent: int = 0
    registrations_expired: int = 0
    requests_forwarded: int = 0
    proxy_replies: int = 0
    negative_replies: int = 0
    requests_unknown: int = 0


class MapServerEngine:
    """Registrations are kept in a longest-prefix-match table per (instance-id, address family),
    with an expiry heap and, per announced prefix, a count of the registrations under it, so that
    a Map-Register, a Map-Request and a timer tick cost the same with 100,000 registrations as
    with one."""

    def __init__(self, sites: tuple[MsSite, ...]):
        self.sites = tuple(sites)
        self.stats = MapServerStats()
        self.registrations: dict[EidPrefix, Registration] = {}
        # per (instance-id, family): registered network -> its _Slot (prefix, registration, and
        # the registration's proxy Map-Reply)
        self._tables: dict[tuple[int, int], PrefixTable[_Slot]] = {}
        self._expiry: list[tuple[float, int, EidPrefix]] = []  # (expires_at, tie, prefix), lazy
        self._tie = 0
        self._announced: dict[EidPrefix, int] = {}  # announced prefix -> registrations under it
        self._site_of = {s.name: s for s in self.sites}
        # the starts of the registered and of the configured prefixes, per (instance-id, family):
        # the free space around an EID, for negative replies
        self._registered: dict[tuple[int, int], PrefixStarts] = {}
        self._configured_starts: dict[tuple[int, int], PrefixStarts] = {}
        for site in self.sites:
            for allowed in site.eid_prefixes:
                _starts(self._configured_starts, allowed).add(allowed.network)

    # -- registration ---------------------------------------------------------------------------

    def on_map_register(self, raw: bytes, msg: MapRegister, source: IPAddress,
                        source_port: int, now: float) -> list:
        """``raw`` is the message as received (the HMAC covers those bytes)."""
        try:
            prefixes = [r.prefix for r in msg.records]
        except ValueError as exc:
            self.stats.registers_bad_prefix += 1
            REFUSED(source, "Map-Register from %s refused: %s", source, exc)
            return []
        site = self._site_for(prefixes)
        if site is None:
            self.stats.registers_bad_prefix += 1
            REFUSED(source, "Map-Register from %s refused: %s not allowed for any site", source,
                    ", ".join(map(str, prefixes)) or "no records")
            return []
        if msg.key_id == KEY_ID_NONE or not verify_authentication(raw, site.key):
            self.stats.registers_bad_auth += 1
            REFUSED(source, "Map-Register from %s for site %s refused: authentication failed "
                    "(key-id %d, %d bytes of authentication data)", source, site.name,
                    msg.key_id, len(msg.auth_data))
            return []
        self.stats.registers_accepted += 1
        actions: list = []
        expires_at = now + REGISTRATION_LIFETIME
        for record, prefix in zip(msg.records, prefixes):
            if prefix not in self.registrations:
                actions.extend(self._added(prefix, site))
            reg = self.registrations[prefix] = Registration(site.name, record, source,
                                                            msg.proxy_reply, expires_at)
            slot = self._tables[(prefix.instance_id, prefix.network.version)].get(prefix.network)
            slot.registration, slot.proxy_reply = reg, None  # a new registration: a new answer
            self._tie += 1
            heapq.heappush(self._expiry, (expires_at, self._tie, prefix))
        actions.sort(key=lambda a: str(a.prefix))
        if msg.want_map_notify:
            notify = sign(MapNotify(msg.nonce, msg.records, xtr_id=msg.xtr_id,
                                    site_id=msg.site_id), site.key, msg.key_id,
                          truncated=len(msg.auth_data) in (12, 16))
            actions.append(SendControl(source, notify.encode(), dest_port=source_port))
            self.stats.notifies_sent += 1
        return actions

    def on_timer(self, now: float) -> list:
        withdrawn = []
        while self._expiry and self._expiry[0][0] <= now:
            _at, _tie, prefix = heapq.heappop(self._expiry)
            reg = self.registrations.get(prefix)
            if reg is None or reg.expires_at > now:
                continue  # refreshed since (a later heap entry stands for it) or gone
            del self.registrations[prefix]
            withdrawn.extend(self._removed(prefix, reg))
            self.stats.registrations_expired += 1
            LOG.info("registration of %s by %s expired", prefix, reg.etr)
        return sorted(withdrawn, key=lambda a: str(a.prefix))

    def next_deadline(self) -> float | None:
        while self._expiry:  # drop the heap entries of refreshed or removed registrations
            at, _tie, prefix = self._expiry[0]
            reg = self.registrations.get(prefix)
            if reg is not None and reg.expires_at == at:
                return at
            heapq.heappop(self._expiry)
        return None

    def _added(self, prefix: EidPrefix, site: MsSite) -> list:
        key = (prefix.instance_id, prefix.network.version)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = PrefixTable(WIDTH[prefix.network.version])
        table.put(prefix.network, _Slot(prefix))
        _starts(self._registered, prefix).add(prefix.network)
        announced = self._announced_as(prefix, site)
        n = self._announced.get(announced, 0)
        self._announced[announced] = n + 1
        return [Announce(announced)] if n == 0 else []

    def _removed(self, prefix: EidPrefix, reg: Registration) -> list:
        self._tables[(prefix.instance_id, prefix.network.version)].pop(prefix.network)
        _starts(self._registered, prefix).discard(prefix.network)
        announced = self._announced_as(prefix, self._site_of[reg.site])
        n = self._announced.pop(announced) - 1
        if n:
            self._announced[announced] = n
            return []
        return [Withdraw(announced)]

    @staticmethod
    def _announced_as(prefix: EidPrefix, site: MsSite) -> EidPrefix:
        """What goes into the ALT for a registration: the site's aggregate that covers it, or
        the registered prefix itself."""
        return next((a for a in site.announce if a.contains(prefix)), prefix)

    def _site_for(self, prefixes: list[EidPrefix]) -> MsSite | None:
        if not prefixes:
            return None
        for site in self.sites:
            if all(any(allowed.contains(p) for allowed in site.eid_prefixes) for p in prefixes):
                return site
        return None

    def _configured(self, wanted: EidPrefix) -> EidPrefix | None:
        """The configured site prefix that contains ``wanted``."""
        for site in self.sites:
            for allowed in site.eid_prefixes:
                if allowed.contains(wanted):
                    return allowed
        return None

    # -- resolution: as the ALT's last hop, or for the co-located Map-Resolver ----------------

    def registration_for(self, wanted: EidPrefix, now: float
                         ) -> tuple[EidPrefix | None, Registration | None]:
        """The live registration with the longest prefix covering ``wanted``, and its prefix."""
        slot = self._slot_for(wanted, now)
        return (None, None) if slot is None else (slot.prefix, slot.registration)

    def _slot_for(self, wanted: EidPrefix, now: float) -> _Slot | None:
        table = self._tables.get((wanted.instance_id, wanted.network.version))
        if table is None:
            return None
        net = wanted.network
        address, plen = int(net.network_address), net.prefixlen
        slot = table.lookup(address)  # the longest: usually the one
        if slot is None:
            return None
        if slot.prefixlen <= plen and slot.registration.expires_at > now:
            return slot
        for slot in table.matches(address):  # longest first
            if slot.prefixlen <= plen and slot.registration.expires_at > now:
                return slot
        return None

    def knows(self, wanted: EidPrefix) -> bool:
        """Whether ``wanted`` lies in a configured site's EID prefixes."""
        return self._configured(wanted) is not None

    def free_space(self, wanted: EidPrefix) -> EidPrefix:
        """The least-specific prefix containing ``wanted``'s address that overlaps no configured
        or registered prefix: what a negative Map-Reply may cover for an EID outside every
        configured site. ValueError when a configured prefix covers it."""
        if self.knows(wanted):
            raise ValueError(f"{wanted} lies in a configured site's EID prefixes")
        eid = wanted.network.network_address
        free = max((_starts(starts, wanted).free_around(eid)
                    for starts in (self._configured_starts, self._registered)),
                   key=lambda net: net.prefixlen)  # both contain the EID: the longer is in both
        return EidPrefix(wanted.instance_id, free)

    def on_map_request(self, request: MapRequest, reply_port: int,
                       inner_source: IPAddress | None, now: float,
                       wanted: EidPrefix | None = None) -> list:
        """A Map-Request that reached us (over the ALT, or in an ECM from a Map-Resolver).
        ``wanted``: its first record's prefix when the caller has it already (then ``request``
        may be a FastMapRequest, see :meth:`answer`)."""
        if wanted is None:
            try:
                wanted = request.records[0].prefix
            except ValueError:
                self.stats.requests_unknown += 1
                return []
        actions = self.answer(request, wanted, reply_port, inner_source, now)
        if actions is None:
            self.stats.requests_unknown += 1
            return []
        return actions

    def answer(self, request: MapRequest, wanted: EidPrefix, reply_port: int,
               inner_source: IPAddress | None, now: float) -> list | None:
        """The answer to a Map-Request for ``wanted``, or None when ``wanted`` is neither
        registered nor inside a configured site (nor answerable: no usable ITR-RLOC).
        ``request``: a MapRequest, or a FastMapRequest (:mod:`lisp_app.protocol.fast_request`)
        of the same message: only its ``nonce``, ``itr_rlocs`` and ``encode()`` are used."""
        slot = self._slot_for(wanted, now)
        reg = None if slot is None else slot.registration
        itr = None
        for rloc in request.itr_rlocs:
            if type(rloc) is IPv4Address or type(rloc) is IPv6Address:
                itr = rloc
                break
        if reg is None:
            allowed = self._configured(wanted)
            if allowed is None or itr is None:
                return None
            self.stats.negative_replies += 1
            # the largest part of the site's space around the EID that no registration touches
            free = _starts(self._registered, wanted).free_around(
                wanted.network.network_address, floor=allowed.network.prefixlen)
            record = MappingRecord.for_prefix(EidPrefix(wanted.instance_id, free),
                                              ttl=UNREGISTERED_TTL,
                                              action=Action.NATIVELY_FORWARD)
            return [SendControl(itr, MapReply(request.nonce, (record,)).encode(),
                                dest_port=reply_port)]
        if reg.proxy_reply:
            if itr is None:
                return None
            self.stats.proxy_replies += 1
            # answers differ only in the nonce: the records are encoded once per registration
            encoded = slot.proxy_reply
            if encoded is None:
                record = MappingRecord(reg.record.eid, reg.record.mask_len, reg.record.locators,
                                       reg.record.ttl, reg.record.action, False,
                                       reg.record.map_version)
                encoded = slot.proxy_reply = MapReply(0, (record,)).encode()
            return [SendControl(itr, with_nonce(encoded, request.nonce), dest_port=reply_port)]
        self.stats.requests_forwarded += 1
        eid = wanted.network.network_address
        source = inner_source if inner_source is not None and \
            inner_source.version == eid.version else _unspecified(eid)
        ecm = EncapsulatedControlMessage(source, eid, request, source_port=reply_port,
                                         to_etr=True)
        return [SendControl(reg.etr, ecm.encode())]


class _Slot:
    """A registered prefix in the Map-Server's longest-prefix tables: its live registration
    (replaced at each Map-Register) and that registration's proxy Map-Reply, encoded with nonce 0
    when first asked for (None again whenever the registration is replaced)."""

    __slots__ = ("prefix", "prefixlen", "registration", "proxy_reply")

    def __init__(self, prefix: EidPrefix):
        self.prefix, self.prefixlen = prefix, prefix.network.prefixlen
        self.registration: Registration | None = None
        self.proxy_reply: bytes | None = None


def _starts(table: dict, prefix: EidPrefix) -> PrefixStarts:
    """The set of starts for ``prefix``'s instance-id and family in ``table`` (made if new)."""
    key = (prefix.instance_id, prefix.network.version)
    starts = table.get(key)
    if starts is None:
        starts = table[key] = PrefixStarts(prefix.network.version)
    return starts


def _unspecified(eid):
    return IPv4Address(0) if eid.version == 4 else IPv6Address(0)
