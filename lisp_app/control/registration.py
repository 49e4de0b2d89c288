"""The ETR's registration with its Map-Servers, sans I/O (RFC 9301 section 5.6).

Every local mapping goes to each configured Map-Server in an authenticated Map-Register that asks
for a Map-Notify (M bit), every minute; while a Map-Server has not confirmed with a Map-Notify
that authenticates with its key, every five seconds instead.
"""

from __future__ import annotations

import logging
import random

from ..logs import Summary
from ..mapping.database import LocalDatabase
from ..protocol.map_register import MapRegister, sign, verify_authentication
from .actions import SendControl
from .mapstat import MapStat

LOG = logging.getLogger(__name__)
UNAUTHENTICATED = Summary(LOG, "Map-Notifies that do not authenticate", logging.WARNING)

REGISTER_INTERVAL = 60.0   # RFC 9301: ETRs re-register every 60 s
REGISTER_RETRY = 5.0       # ... and sooner while a Map-Server has not confirmed (Map-Notify)


class Registrar:
    """``map_servers``: objects with ``address``, ``key``, ``key_id`` and ``proxy_reply``
    (the config's ``map_servers`` entries)."""

    def __init__(self, map_servers, database: LocalDatabase, stats: MapStat,
                 rng: random.Random):
        self.map_servers = tuple(map_servers)
        self.database = database
        self.stats = stats
        self.rng = rng
        self._addresses = {m.address for m in self.map_servers}
        self._next = 0.0            # when to register next
        self._last = 0.0            # when we last registered
        self._confirmed: set = set()  # Map-Servers that answered with a valid Map-Notify

    def next_deadline(self) -> float | None:
        return self._next if self.map_servers else None

    def on_timer(self, now: float) -> list[SendControl]:
        """A Map-Register for each Map-Server when one is due."""
        if not self.map_servers or now < self._next:
            return []
        everyone = self._addresses <= self._confirmed
        self._next = now + (REGISTER_INTERVAL if everyone else REGISTER_RETRY)
        self._last = now
        records = tuple(m.record() for m in self.database)
        out = []
        for ms in self.map_servers:
            msg = sign(MapRegister(self.rng.getrandbits(64), records,
                                   proxy_reply=ms.proxy_reply, want_map_notify=True),
                       ms.key, ms.key_id)
            out.append(SendControl(ms.address, msg.encode()))
            self.stats.registers_sent += 1
        return out

    def register_now(self, now: float) -> list[SendControl]:
        """The local mappings changed: register them with every Map-Server at once (and ask
        for their confirmation again)."""
        self._confirmed.clear()
        self._next = now
        return self.on_timer(now)

    def on_map_notify(self, payload: bytes, source) -> list:
        """A Map-Notify (``payload`` as received) from ``source``: a confirmation when it comes
        from one of our Map-Servers and authenticates with its key."""
        target = next((m for m in self.map_servers if m.address == source), None)
        if target is not None and verify_authentication(payload, target.key):
            self.stats.registrations_confirmed += 1
            self._confirmed.add(target.address)
            if self._addresses <= self._confirmed:
                self._next = max(self._next, self._last + REGISTER_INTERVAL)
        else:
            self.stats.control_unexpected += 1
            UNAUTHENTICATED(source, "Map-Notify from %s does not authenticate with our key", source)
        return []
