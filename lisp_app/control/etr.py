"""The ETR's side of the mapping system: authoritative Map-Replies for the site's EID prefixes.

A Map-Request for an EID inside a local prefix, whether it came addressed to our RLOC or inside an
ECM, is answered with one authoritative record (A bit, the prefix's locators and TTL) sent to the
first ITR-RLOC we can reach, on the port the request came from. An RLOC-probe (P bit) gets a
probe reply (P bit) with the nonce echoed and the probed locator marked. Requests for space that is
not ours are counted and ignored: in LISP+ALT they should not have reached us.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from ..mapping.database import LocalDatabase
from ..protocol.addresses import EidPrefix
from ..protocol.map_reply import MapReply
from ..protocol.map_request import MapRequest
from .actions import SendControl
from .mapstat import MapStat

IPAddress = IPv4Address | IPv6Address


class EtrEngine:
    def __init__(self, database: LocalDatabase, stats: MapStat,
                 reply_families: tuple[int, ...] = (4,), smr=None):
        self.database = database
        self.stats = stats
        self.reply_families = reply_families
        self.smr = smr  # a SmrSender: remembers who asked, for the SMRs of a later change

    def on_map_request(self, request: MapRequest, reply_port: int,
                       probed_rloc: IPAddress | None = None, now: float = 0.0) -> list:
        """Answer ``request``. ``reply_port`` is the UDP source port it came from (the inner one
        for an ECM); ``probed_rloc`` is the outer destination, our RLOC that was probed."""
        self.stats.requests_received += 1
        records = []
        for rec in request.records:
            try:
                wanted = EidPrefix.from_wire(rec.eid, rec.mask_len)
            except ValueError:
                continue
            local = self.database.covering(wanted)
            if local is not None:
                records.append(local.record(probed_rloc if request.probe else None))
                if self.smr is not None:
                    self.smr.note_request(local.prefix, request, local.ttl, now)
        if not records:
            self.stats.requests_not_ours += 1
            return []
        target = next((r for r in request.itr_rlocs
                       if type(r) in (IPv4Address, IPv6Address)
                       and r.version in self.reply_families), None)
        if target is None:
            self.stats.control_unexpected += 1
            return []
        reply = MapReply(nonce=request.nonce, records=tuple(records), probe=request.probe)
        self.stats.replies_sent += 1
        if request.probe:
            self.stats.probes_answered += 1
        # an RLOC-probe is answered from the locator it probed (one of ours, of the family)
        source = probed_rloc if request.probe and probed_rloc is not None \
            and probed_rloc.version == target.version else None
        return [SendControl(target, reply.encode(), dest_port=reply_port, source=source)]
