"""The mapping daemon's counters, in the spirit of OpenLISP's ``mapstat``."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class MapStat:
    # data plane: the switch's flow counters, kept monotonic by lisp_app.control.counting
    # (FlowCounts writes these five fields and nothing else does)
    received: int = 0          # LISP packets decapsulated for our EID prefixes
    delivered: int = 0         # packets delivered to site hosts
    sent: int = 0              # packets encapsulated towards remote RLOCs
    dropped_negative: int = 0  # packets dropped by negative map-cache entries (or mappings
    #                            left with no usable locator)
    dropped_policy: int = 0    # packets dropped by the pipeline's explicit drop rules
    #                            (multicast, broadcast, link-local, not for a local EID, ALT)
    # data plane, counted by the controller
    too_big_dropped: int = 0   # too-big packets punted to us and dropped without an ICMP
    #                            answer (the site has no gateway address of their family)
    bad_header: int = 0        # malformed packets punted to us
    # classic RFC 9300 data packets (the uplink's eBPF programs, lisp_app.classic; carried
    # over when the programs are attached again, by lisp_app.control.counting.CarriedCounts)
    classic_received: int = 0  # classic headers rewritten into LISP-GPE for OVS's GPE port
    classic_dropped: int = 0   # UDP 4341 packets to our RLOCs no valid LISP packet looks like
    classic_sent: int = 0      # our LISP-GPE headers rewritten into RFC 9300 ones on the way out
    # ITR
    misses: int = 0            # cache misses punted to the controller
    requests_sent: int = 0
    requests_retransmitted: int = 0
    requests_answered: int = 0
    requests_timed_out: int = 0
    replies_rejected: int = 0  # Map-Replies with a nonce we did not send, or not covering the EID
    negative_replies: int = 0
    buffered: int = 0
    buffer_overflow: int = 0
    buffer_dropped: int = 0    # held packets dropped when their request failed or was negative
    reinjected: int = 0
    data_probes_sent: int = 0
    probes_sent: int = 0           # RLOC-probes sent to remote locators
    probe_replies: int = 0         # ... answered (nonce matched)
    probes_unanswered: int = 0     # ... not answered within probing.timeout (misses)
    probes_deferred: int = 0       # ... held back by the probing.rate cap
    probe_replies_unknown: int = 0  # probe replies whose nonce is not an outstanding probe's
    locators_went_down: int = 0    # locators marked down (probing.misses misses in a row)
    locators_came_up: int = 0      # down locators that answered again
    smrs_received: int = 0         # Solicit-Map-Requests received
    smrs_ignored: int = 0          # ... for no cached mapping, or too soon after the last ask
    # ITR: fair state under a miss flood (what the per-source bounds refused, evicted, deferred)
    requests_refused_source: int = 0  # misses not asked for: their source had pending_per_source
    #                                   requests open (the packet was not held)
    requests_refused_full: int = 0    # ... the table was full (pending_total) and no source held
    #                                   more requests than theirs (the packet was not held)
    requests_evicted: int = 0      # requests closed unanswered to make room for a lighter source's
    requests_deferred: int = 0     # Map-Requests held back by the request rate caps (sent later)
    buffer_source_full: int = 0    # packets not held: their source held buffer.per_source
    buffer_evicted: int = 0        # held packets dropped to make room for a lighter source's
    misses_held_down: int = 0      # misses for an EID held down after unanswered requests
    holddowns_lifted: int = 0      # hold-downs ended early by a valid answer covering the EID
    late_replies: int = 0          # Map-Replies accepted for a request already given up on
    # ETR
    smrs_sent: int = 0             # Solicit-Map-Requests sent after a local mapping changed
    smrs_dropped: int = 0          # ... not sent: the SMR queue was full
    requests_received: int = 0
    requests_not_ours: int = 0
    replies_sent: int = 0
    probes_answered: int = 0
    data_probes_received: int = 0  # answered with a Map-Reply, inner packet delivered
    data_probes_relayed: int = 0   # (Map-Server) turned into a Map-Request for the registered
    #                                ETR; the inner packet is dropped
    # control plane, both roles
    control_malformed: int = 0
    control_unexpected: int = 0
    control_lenient: int = 0   # accepted despite a known deviation from the RFC (logged)
    control_send_failed: int = 0  # messages that could not leave: (switchless Map-Server/
    #                                 Map-Resolver) the sockets refused them, or none is of
    #                                 their family; (xTR) no RLOC of their family
    too_big: int = 0           # ICMP too-big / fragmentation-needed sent
    alt_no_route: int = 0      # Map-Requests or data probes with no ALT route for their EID
    registers_sent: int = 0    # (ETR) Map-Registers sent to Map-Servers
    registrations_confirmed: int = 0  # (ETR) authenticated Map-Notifies received
    # the controller itself
    handler_errors: int = 0    # os-ken event handlers that raised (logged, controller kept on)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def dropped(self) -> int:
        """Every dropped packet counted above (mapstat's ``dropped`` of old, kept as this sum)."""
        return self.dropped_negative + self.dropped_policy + self.too_big_dropped
