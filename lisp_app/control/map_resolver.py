"""The Map-Resolver role (RFC 6836 section 3.3, RFC 9301 sections 4.3 and 8), sans I/O.

An ITR sends its Map-Request in an ECM to the Map-Resolver, which decapsulates it and resolves it
one of two ways:

- on the ALT: when an ALT route covers the EID, the inner packet (IP destination = the EID, UDP
  4342, the Map-Request) goes onto the ALT, where BGP-learned routes carry it to the ETR or
  Map-Server that owns the EID; the answer goes straight from there to the ITR;
- without an ALT, with a co-located Map-Server: when a registration covers the EID, or it lies in
  a configured site's space, the Map-Server handles the request as it handles one that reached it
  (forwarded in an ECM to the registered ETR, answered by proxy, or a negative reply for a site
  that has not registered).

Otherwise the Map-Resolver answers itself with a negative Map-Reply: natively-forward, TTL 15
minutes, for the least-specific prefix that covers the EID and overlaps no ALT route (or no
configured or registered prefix): never the whole address family while any EID space is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_network

from ..alt.rib import AltRib
from ..mapping.lpm import PrefixTable
from ..mapping.space import WIDTH
from ..protocol.addresses import EidPrefix
from ..protocol.ecm import EncapsulatedControlMessage
from ..protocol.fast_request import FastEcm
from ..protocol.map_reply import MapReply, with_nonce
from ..protocol.map_request import MapRequest
from ..protocol.records import Action, MappingRecord
from .actions import SendControl
from .map_server import MapServerEngine

NEGATIVE_TTL = 15  # minutes
NEGATIVE_CACHE = 4096  # negative Map-Replies kept encoded (they differ only in the nonce)


@dataclass(frozen=True)
class ForwardOverAlt:
    """Send ``payload`` (a Map-Request) as a UDP packet from ``source``:``source_port`` to
    ``destination`` (the EID) port 4342 into the ALT tunnel towards ``neighbor``."""

    neighbor: str
    source: IPv4Address | IPv6Address
    destination: IPv4Address | IPv6Address
    source_port: int
    payload: bytes


@dataclass
class MapResolverStats:
    ecm_received: int = 0
    forwarded: int = 0         # onto the ALT
    to_map_server: int = 0     # (no ALT) handed to the co-located Map-Server's registrations
    negative_replies: int = 0
    unusable: int = 0


@dataclass
class MapResolverEngine:
    rib: AltRib | None = None  # the ALT's routes; None: resolve through ``map_server``
    map_server: MapServerEngine | None = None  # the co-located Map-Server, without an ALT
    stats: MapResolverStats = field(default_factory=MapResolverStats)
    #: how many encoded negative Map-Replies (one per negative prefix) are kept; when full the
    #: memo starts over
    negative_cache_limit: int = NEGATIVE_CACHE
    # EidPrefix -> the negative Map-Reply for it, encoded with nonce 0
    _negative: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    # on the ALT, the same replies by (instance-id, family) in longest-prefix tables, valid for
    # the RIB generation they were computed at: an EID inside a negative prefix is covered by no
    # route, and that prefix is the least-specific free one around it too, so a hit answers
    # without looking at the RIB
    _negative_lpm: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _negative_generation: int = field(default=-1, init=False, repr=False, compare=False)

    def on_ecm(self, ecm: EncapsulatedControlMessage, now: float = 0.0) -> list:
        self.stats.ecm_received += 1
        request = ecm.message
        if not isinstance(request, MapRequest):
            self.stats.unusable += 1
            return []
        try:
            wanted: EidPrefix = request.records[0].prefix
        except ValueError:
            self.stats.unusable += 1
            return []
        eid = wanted.network.network_address
        return self._resolve(request, wanted.instance_id, eid.version, int(eid), eid, wanted, ecm,
                             now)

    def on_fast_ecm(self, ecm: FastEcm, now: float = 0.0) -> list:
        """The same as :meth:`on_ecm` for an ECM read on the fast path (the Map-Request's
        prefix is made only if needed, its bytes are forwarded as received when they re-encode
        identically)."""
        self.stats.ecm_received += 1
        request = ecm.request
        return self._resolve(request, request.instance_id, request.version, request.eid_value,
                             None, None, ecm, now)

    def _resolve(self, request, instance_id: int, version: int, value: int, eid,
                 wanted: EidPrefix | None, ecm, now: float) -> list:
        """``request``: a MapRequest or a FastMapRequest, in ``ecm`` (an ECM or a FastEcm);
        ``instance_id``, ``version`` and ``value``: its first record's prefix's instance-id, IP
        version and network address as an integer; ``eid``: that address (None: taken from the
        request when needed); ``wanted``: that prefix (None: likewise)."""
        memo = None
        source_port = ecm.source_port
        if self.rib is not None:
            if self._negative_generation != self.rib.generation:
                self._negative.clear()
                self._negative_lpm.clear()
                self._negative_generation = self.rib.generation
            memo = self._negative_lpm.get((instance_id, version))
            if memo is not None:
                encoded = memo.lookup(value)
                if encoded is not None:
                    return self._negative_reply(request, source_port, encoded)
            if eid is None:
                eid = request.eid
            route = self.rib.lookup(eid)
            if route is not None:
                self.stats.forwarded += 1
                return [ForwardOverAlt(route.neighbor, ecm.source, ecm.destination, source_port,
                                       request.encode())]
        elif self.map_server is not None:
            if wanted is None:
                wanted = request.prefix
            actions = self.map_server.answer(request, wanted, source_port, ecm.source, now)
            if actions is not None:
                self.stats.to_map_server += 1
                return actions
        if eid is None:
            eid = request.eid
        itr = next((r for r in request.itr_rlocs if type(r) in (IPv4Address, IPv6Address)), None)
        if itr is None:
            self.stats.unusable += 1
            return []
        if self.rib is not None:
            negative = EidPrefix(instance_id, self.rib.uncovered_prefix(eid))
        elif self.map_server is not None:
            if wanted is None:
                wanted = request.prefix
            host = EidPrefix(instance_id, ip_network(eid))
            if self.map_server.knows(host):
                # a short prefix whose address lies in a site (153.16.36.0/22 for the site
                # 153.16.36.0/24): the lookup goes by the address, as for its host prefix
                actions = self.map_server.answer(request, host, source_port, ecm.source, now)
                if actions is not None:
                    self.stats.to_map_server += 1
                    return actions
                self.stats.unusable += 1
                return []
            negative = self.map_server.free_space(wanted)
        else:
            negative = EidPrefix(instance_id, ip_network(f"{_unspecified(eid)}/0"))
        encoded = self._negative.get(negative)
        if encoded is None:
            record = MappingRecord.for_prefix(negative, ttl=NEGATIVE_TTL,
                                              action=Action.NATIVELY_FORWARD)
            if len(self._negative) >= self.negative_cache_limit:
                self._negative.clear()
                self._negative_lpm.clear()
            encoded = self._negative[negative] = MapReply(0, (record,)).encode()
            if self.rib is not None:
                if memo is None:
                    memo = self._negative_lpm[(instance_id, version)] = PrefixTable(WIDTH[version])
                memo.put(negative.network, encoded)
        self.stats.negative_replies += 1
        return [SendControl(itr, with_nonce(encoded, request.nonce), dest_port=source_port)]

    def _negative_reply(self, request, source_port: int, encoded: bytes) -> list:
        """A remembered negative Map-Reply for the request (no route covers its EID)."""
        for itr in request.itr_rlocs:
            if type(itr) is IPv4Address or type(itr) is IPv6Address:
                self.stats.negative_replies += 1
                return [SendControl(itr, with_nonce(encoded, request.nonce),
                                    dest_port=source_port)]
        self.stats.unusable += 1
        return []


def _unspecified(eid):
    return IPv4Address(0) if eid.version == 4 else IPv6Address(0)
