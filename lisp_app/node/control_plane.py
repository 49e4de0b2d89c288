"""LISP control messages (UDP 4342 payloads) to the engine that handles each, by message type,
sans I/O: shared by the xTR orchestrator (messages punted by the switch) and the switchless
Map-Server/Map-Resolver (messages read from its sockets)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from ..control.mapstat import MapStat
from ..logs import Summary
from ..protocol import (DecodeError, EncapsulatedControlMessage, MapNotify, MapRegister,
                        MapReply, MapRequest, decode_control)
from ..protocol.fast_request import FastEcm, decode_request_fast

LOG = logging.getLogger(__name__)
MALFORMED = Summary(LOG, "malformed LISP control messages")
LENIENT = Summary(LOG, "control messages accepted despite deviations from the RFC")


@dataclass(frozen=True, slots=True)
class Received:
    """Where a control message came from: its source address and UDP port, and the address it
    was sent to (None when not known)."""

    source: IPv4Address | IPv6Address
    source_port: int
    destination: IPv4Address | IPv6Address | None = None


class ControlPlane:
    """The engines a node has (None where its role has none) and the table that routes each
    decoded message to them."""

    def __init__(self, stats: MapStat, *, itr=None, etr=None, database=None, ms=None, mr=None,
                 registrar=None, prober=None):
        self.stats = stats
        self.itr, self.etr, self.database = itr, etr, database
        self.prober = prober
        self.ms, self.mr, self.registrar = ms, mr, registrar
        self._handlers = {MapReply: self._map_reply, MapRequest: self._plain_request,
                          EncapsulatedControlMessage: self._ecm,
                          MapRegister: self._map_register, MapNotify: self._map_notify}

    def on_payload(self, payload: bytes, received: Received, now: float) -> list:
        """The engine actions a control message asks for. A message that does not decode is
        counted (``control_malformed``), one that no role of ours handles too
        (``control_unexpected``); both give no action. One that decodes only because we accept
        a known deviation from the RFC is counted (``control_lenient``) and handled.

        Map-Requests, plain or in an ECM, of the common shape take a fast path
        (:func:`decode_request_fast`: the fields the servers answer from, the full message only
        where needed); the rest, malformed ones included, the full decoder."""
        fast = decode_request_fast(payload)
        if fast is not None:
            actions = self._fast(fast, payload, received, now)
            if actions is None:
                self.stats.control_unexpected += 1
                return []
            return actions
        try:
            message = decode_control(payload)
        except DecodeError as exc:
            self.stats.control_malformed += 1
            MALFORMED(received.source, "malformed LISP control message from %s dropped: %s",
                      received.source, exc)
            return []
        deviations = getattr(message, "deviations", ())
        if deviations:  # liberal in what we accept from deployed implementations, and counted
            self.stats.control_lenient += 1
            LENIENT(received.source, "%s from %s accepted despite: %s", type(message).__name__,
                    received.source, "; ".join(deviations))
        handler = self._handlers.get(type(message))
        actions = handler(message, payload, received, now) if handler is not None else None
        if actions is None:
            self.stats.control_unexpected += 1
            return []
        return actions

    # -- each returns the engine's actions, or None: not ours to handle ------------------------

    def _fast(self, fast, payload: bytes, received: Received, now: float):
        """A Map-Request read on the fast path: to the Map-Resolver or the Map-Server without
        making the full message; to the ETR or the ITR (an SMR) with it."""
        if type(fast) is FastEcm:
            if self.mr is not None and not fast.to_etr:
                return self.mr.on_fast_ecm(fast, now)
            request = fast.request
            if self.etr is not None:
                return self.map_request(request.message(), fast.source_port, fast.source, None,
                                        now, request.prefix)
            if self.ms is not None:
                return self.ms.on_map_request(request, fast.source_port, fast.source, now,
                                              request.prefix)
            return None
        if fast.smr or self.etr is not None:
            return self._plain_request(fast.message(), payload, received, now)
        if self.ms is not None:
            return self.ms.on_map_request(fast, received.source_port, received.source, now,
                                          fast.prefix)
        return None

    def _map_reply(self, reply: MapReply, payload: bytes, received: Received, now: float):
        if reply.probe and self.prober is not None:  # the answer to one of our RLOC-probes
            return self.prober.on_probe_reply(reply, received.source, now)
        return self.itr.on_map_reply(reply, now) if self.itr is not None else None

    def _plain_request(self, request: MapRequest, payload: bytes, received: Received,
                       now: float):
        if request.smr:  # a Solicit-Map-Request: ask again for the mapping it names
            if self.itr is None:
                return None
            return self.itr.on_smr(request, now)
        return self.map_request(request, received.source_port, received.source,
                                received.destination, now)

    def _ecm(self, ecm: EncapsulatedControlMessage, payload: bytes, received: Received,
             now: float):
        if not isinstance(ecm.message, MapRequest):
            return None
        if self.mr is not None and not ecm.to_etr:
            return self.mr.on_ecm(ecm, now)
        return self.map_request(ecm.message, ecm.source_port, ecm.source, None, now)

    def map_request(self, request: MapRequest, reply_port: int, source, probed, now: float,
                    wanted=None):
        """Ours to answer as the ETR, or (as the ALT's last hop) the Map-Server's.
        ``wanted``: the request's first record's prefix, when known already."""
        if self.etr is not None:
            try:
                ours = self.database.covering(
                    request.records[0].prefix if wanted is None else wanted) is not None
            except ValueError:
                ours = False
            if ours or self.ms is None:
                return self.etr.on_map_request(request, reply_port, probed, now)
        if self.ms is not None:
            return self.ms.on_map_request(request, reply_port, source, now, wanted)
        return None

    def _map_register(self, register: MapRegister, payload: bytes, received: Received,
                      now: float):
        if self.ms is None:
            return None
        return self.ms.on_map_register(payload, register, received.source, received.source_port,
                                       now)

    def _map_notify(self, notify: MapNotify, payload: bytes, received: Received, now: float):
        if self.registrar is None:
            return None
        return self.registrar.on_map_notify(payload, received.source)
