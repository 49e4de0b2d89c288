"""Data probes, sans I/O (RFC 9300 section 6.3.2): both sides.

- ITR: while a Map-Request is outstanding, a held packet may go out LISP-encapsulated with the
  outer destination equal to the inner one (over the ALT when on it, else over the underlay);
  the ETR that owns the EID answers with a Map-Reply carrying the probe's nonce.
- ETR: a data packet addressed to one of our EIDs is answered as a Map-Request would be and its
  inner packet delivered to the host. As the ALT's last hop, a Map-Server turns a probe for a
  registered site into a Map-Request for that site's ETR (the inner packet cannot be delivered).
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Address, ip_network

from ..dataplane import frames
from ..logs import Summary
from ..mapping.database import LocalDatabase
from ..protocol.addresses import EidPrefix
from ..protocol.data import DataHeader, decode_data_header, entropy_source_port
from ..protocol.errors import DecodeError
from ..protocol.map_reply import MapReply
from ..protocol.map_request import MapRequest
from ..protocol.numbers import LISP_CONTROL_PORT, LISP_DATA_PORT
from ..protocol.records import EidRecord
from .actions import Deliver, SendControl, SendDataProbe
from .alt_path import AltPath
from .map_server import MapServerEngine
from .mapstat import MapStat
from .next_hop import UnderlayNextHop

LOG = logging.getLogger(__name__)
MALFORMED = Summary(LOG, "malformed data probes")
ETHERNET_IPV4 = b"\0" * 12 + b"\x08\x00"  # a placeholder Ethernet header before an inner packet


class DataProbes:
    def __init__(self, rloc: IPv4Address, stats: MapStat, next_hop: UnderlayNextHop,
                 alt: AltPath | None = None, database: LocalDatabase | None = None,
                 ms: MapServerEngine | None = None, default_instance_id: int = 0):
        self.rloc = rloc
        self.stats = stats
        self.next_hop = next_hop
        self.alt = alt            # set when on the ALT: probes travel it
        self.database = database  # set as the ETR: probes for our EIDs are answered
        self.ms = ms              # set as a Map-Server: probes for registered sites are relayed
        self.default_instance_id = default_instance_id

    def send(self, probe: SendDataProbe, now: float) -> list:
        """(ITR) The held packet, encapsulated with outer destination = inner destination."""
        try:
            f = frames.parse_frame(probe.packet.data)
        except frames.FrameError:
            return []
        inner = probe.packet.data[f.ip_offset:f.ip_offset + f.ip_length]
        payload = DataHeader(instance_id=probe.packet.instance_id, nonce=probe.nonce).encode() \
            + inner
        sport = entropy_source_port(f.ip_src, f.ip_dst, f.sport, f.dport)  # same flow, same port
        if self.alt is not None:  # over the ALT; the ETR answers our RLOC, the source
            port = self.alt.port_for(f.ip_dst)
            if port is None:
                return []
            return [self.alt.udp(port, self.rloc, f.ip_dst, sport, LISP_DATA_PORT, payload)]
        hop = self.next_hop
        if not hop.reaches(f.ip_dst):  # an IPv6 EID without an IPv6 RLOC
            self.stats.control_send_failed += 1
            return []
        if not hop.resolved_for(f.ip_dst.version):
            return hop.hold(probe, now, f.ip_dst.version)
        return [hop.udp(hop.source_for(f.ip_dst), f.ip_dst, sport, LISP_DATA_PORT, payload)]

    def on_probe(self, frame, data: bytes, now: float) -> list:
        """(ETR, Map-Server) A LISP data packet punted because it is addressed to an EID:
        the engine actions that answer it."""
        try:
            header, inner_at = decode_data_header(data, frame.payload_offset)
            inner = frames.parse_frame(ETHERNET_IPV4 + data[inner_at:])
        except (DecodeError, frames.FrameError, TypeError) as exc:
            self.stats.bad_header += 1
            MALFORMED(frame.ip_src, "malformed data probe from %s dropped: %s", frame.ip_src, exc)
            return []
        iid = header.instance_id if header.instance_id is not None else self.default_instance_id
        if inner.ip_dst != frame.ip_dst:
            self.stats.bad_header += 1  # not a data probe: outer and inner destinations differ
            return []
        wanted = EidPrefix(iid, ip_network(inner.ip_dst))
        local = self.database.covering(wanted) if self.database is not None else None
        if local is None and self.ms is not None:
            self.stats.data_probes_relayed += 1
            request = MapRequest(header.nonce or 0, (EidRecord.for_prefix(wanted),),
                                 (frame.ip_src,), source_eid=inner.ip_src)
            return self.ms.on_map_request(request, LISP_CONTROL_PORT, inner.ip_src, now)
        if local is None:
            self.stats.requests_not_ours += 1
            return []
        self.stats.data_probes_received += 1
        self.stats.replies_sent += 1
        reply = MapReply(nonce=header.nonce or 0, records=(local.record(),))
        inner_frame = ETHERNET_IPV4 + data[inner_at:inner_at + inner.ip_length]
        return [SendControl(frame.ip_src, reply.encode()), Deliver(iid, inner.ip_dst, inner_frame)]
