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
(natively-forward, 1 minute), as RFC 9301 suggests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

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


@dataclass
class MapServerEngine:
    sites: tuple[MsSite, ...]
    stats: MapServerStats = field(default_factory=MapServerStats)
    registrations: dict[EidPrefix, Registration] = field(default_factory=dict)
    # prefix -> (registration, its proxy Map-Reply encoded with nonce 0): answers differ only in
    # the nonce, so the records are encoded once per registration
    _proxy_replies: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # -- registration ---------------------------------------------------------------------------

    def on_map_register(self, raw: bytes, msg: MapRegister, source: IPAddress,
                        source_port: int, now: float) -> list:
        """``raw`` is the message as received (the HMAC covers those bytes)."""
        try:
            prefixes = [r.prefix for r in msg.records]
        except ValueError as exc:
            self.stats.registers_bad_prefix += 1
            LOG.warning("Map-Register from %s refused: %s", source, exc)
            return []
        site = self._site_for(prefixes)
        if site is None:
            self.stats.registers_bad_prefix += 1
            LOG.warning("Map-Register from %s refused: %s not allowed for any site", source,
                        ", ".join(map(str, prefixes)) or "no records")
            return []
        if msg.key_id == KEY_ID_NONE or not verify_authentication(raw, site.key):
            self.stats.registers_bad_auth += 1
            LOG.warning("Map-Register from %s for site %s refused: authentication failed "
                        "(key-id %d, %d bytes of authentication data)", source, site.name,
                        msg.key_id, len(msg.auth_data))
            return []
        self.stats.registers_accepted += 1
        announced_before = self._announced()
        for record, prefix in zip(msg.records, prefixes):
            self.registrations[prefix] = Registration(site.name, record, source, msg.proxy_reply,
                                                      now + REGISTRATION_LIFETIME)
        actions: list = [Announce(p) for p in sorted(self._announced() - announced_before,
                                                      key=str)]
        if msg.want_map_notify:
            notify = sign(MapNotify(msg.nonce, msg.records, xtr_id=msg.xtr_id,
                                    site_id=msg.site_id), site.key, msg.key_id,
                          truncated=len(msg.auth_data) in (12, 16))
            actions.append(SendControl(source, notify.encode(), dest_port=source_port))
            self.stats.notifies_sent += 1
        return actions

    def on_timer(self, now: float) -> list:
        before = self._announced()
        for prefix, reg in list(self.registrations.items()):
            if reg.expires_at <= now:
                del self.registrations[prefix]
                self._proxy_replies.pop(prefix, None)
                self.stats.registrations_expired += 1
                LOG.info("registration of %s by %s expired", prefix, reg.etr)
        return [Withdraw(p) for p in sorted(before - self._announced(), key=str)]

    def next_deadline(self) -> float | None:
        return min((r.expires_at for r in self.registrations.values()), default=None)

    def _site_for(self, prefixes: list[EidPrefix]) -> MsSite | None:
        if not prefixes:
            return None
        for site in self.sites:
            if all(any(allowed.contains(p) for allowed in site.eid_prefixes) for p in prefixes):
                return site
        return None

    def _announced(self) -> set[EidPrefix]:
        out: set[EidPrefix] = set()
        for prefix, reg in self.registrations.items():
            site = next(s for s in self.sites if s.name == reg.site)
            aggregate = [a for a in site.announce if a.contains(prefix)]
            out.update(aggregate or [prefix])
        return out

    # -- the ALT's last hop ---------------------------------------------------------------------

    def on_map_request(self, request: MapRequest, reply_port: int,
                       inner_source: IPAddress | None, now: float) -> list:
        """A Map-Request that reached us (over the ALT, or in an ECM from a Map-Resolver)."""
        try:
            wanted = request.records[0].prefix
        except ValueError:
            self.stats.requests_unknown += 1
            return []
        registered, reg = self._registration_for(wanted, now)
        itr = None
        for rloc in request.itr_rlocs:
            if type(rloc) is IPv4Address or type(rloc) is IPv6Address:
                itr = rloc
                break
        if reg is None:
            site = next((s for s in self.sites
                         if any(a.contains(wanted) for a in s.eid_prefixes)), None)
            if site is None or itr is None:
                self.stats.requests_unknown += 1
                return []
            self.stats.negative_replies += 1
            allowed = next(a for a in site.eid_prefixes if a.contains(wanted))
            record = MappingRecord.for_prefix(allowed, ttl=UNREGISTERED_TTL,
                                              action=Action.NATIVELY_FORWARD)
            return [SendControl(itr, MapReply(request.nonce, (record,)).encode(),
                                dest_port=reply_port)]
        if reg.proxy_reply:
            if itr is None:
                self.stats.requests_unknown += 1
                return []
            self.stats.proxy_replies += 1
            cached = self._proxy_replies.get(registered)
            if cached is None or cached[0] is not reg:
                record = MappingRecord(reg.record.eid, reg.record.mask_len, reg.record.locators,
                                       reg.record.ttl, reg.record.action, False,
                                       reg.record.map_version)
                cached = self._proxy_replies[registered] = (reg, MapReply(0, (record,)).encode())
            return [SendControl(itr, with_nonce(cached[1], request.nonce), dest_port=reply_port)]
        self.stats.requests_forwarded += 1
        eid = wanted.network.network_address
        source = inner_source if inner_source is not None and \
            inner_source.version == eid.version else _unspecified(eid)
        ecm = EncapsulatedControlMessage(source, eid, request, source_port=reply_port,
                                         to_etr=True)
        return [SendControl(reg.etr, ecm.encode())]

    def _registration_for(self, wanted: EidPrefix, now: float
                          ) -> tuple[EidPrefix | None, Registration | None]:
        """The live registration with the longest prefix covering ``wanted``, and its prefix."""
        best = (None, None)
        for prefix, reg in self.registrations.items():
            if reg.expires_at > now and prefix.contains(wanted) and (
                    best[0] is None or prefix.network.prefixlen > best[0].network.prefixlen):
                best = (prefix, reg)
        return best


def _unspecified(eid):
    return IPv4Address(0) if eid.version == 4 else IPv6Address(0)
