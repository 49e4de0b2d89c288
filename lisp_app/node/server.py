"""The switchless Map-Server/Map-Resolver, sans I/O: datagrams in, datagrams out.

An ``ms-mr`` without an ALT (RFC 9301 section 8) needs no switch: it reads LISP control messages
from its own UDP sockets and answers with datagrams. The same engines as on the switch
(:mod:`lisp_app.control.map_server`, :mod:`lisp_app.control.map_resolver`) and the same
control-message table (:mod:`lisp_app.node.control_plane`) do the work; this node has no map-cache,
no local database and no bridges, so the API's map views are empty and its ``mapstat`` shows the
registrations and both servers' counters.
"""

from __future__ import annotations

from ..alt.effects import Announce, Withdraw
from ..config import Config
from ..control.actions import SendControl
from ..control.mapstat import MapStat
from ..mapping.cache import MapCache
from ..mapping.database import LocalDatabase
from ..protocol.addresses import EidPrefix
from .assembly import map_resolver_of, map_server_of
from .control_plane import ControlPlane, Received
from .queries import NodeQueries


class MapServerNode:
    def __init__(self, config: Config):
        self.config = config
        self.stats = MapStat()
        self.ms = map_server_of(config)
        self.mr = map_resolver_of(config, self.ms)
        self.itr = self.etr = self.site = self.prober = None
        self.cache, self.database = MapCache(), LocalDatabase(())  # empty: no site of its own
        self.control = ControlPlane(self.stats, ms=self.ms, mr=self.mr)
        self.queries = NodeQueries(self)

    def on_datagram(self, payload: bytes, received: Received, now: float) -> list[SendControl]:
        """A UDP payload read from a socket: the datagrams to send in answer."""
        return self._datagrams(self.control.on_payload(payload, received, now))

    def on_timer(self, now: float) -> list[SendControl]:
        return self._datagrams(self.ms.on_timer(now)) if self.ms is not None else []

    def next_deadline(self) -> float | None:
        return self.ms.next_deadline() if self.ms is not None else None

    def group_ids(self) -> dict[EidPrefix, int]:
        return {}

    # -- operator commands: this node has no map-cache -----------------------------------------

    def add_static(self, prefix, locators, now: float) -> list:
        return self.add_static_many(((prefix, locators),), now)

    def add_static_many(self, mappings, now: float) -> list:
        raise ValueError("static map-cache entries need the itr or xtr role")

    def remove_mapping(self, prefix, now: float) -> list:
        return []

    @staticmethod
    def _datagrams(actions: list) -> list[SendControl]:
        # with no ALT there is nothing to announce registrations into
        if len(actions) == 1 and type(actions[0]) is SendControl:  # most answers: one datagram
            return actions
        return [a for a in actions if not isinstance(a, (Announce, Withdraw))]
