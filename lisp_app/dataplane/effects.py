"""What the core asks the os-ken shell to do to the switches: packet-outs and flow changes.

The two bridges are named, not numbered: ``LISP`` (site ports, the LISP-GPE port, the ALT's GRE
ports) and ``UNDERLAY`` (the uplink and the LOCAL port holding the RLOC). The shell knows which
datapath is which.
"""

from __future__ import annotations

from dataclasses import dataclass

from .flows import OFPP_CONTROLLER, Flow, Group

LISP = "lisp"          # the LISP bridge
UNDERLAY = "underlay"  # the underlay bridge
BRIDGES = (LISP, UNDERLAY)


@dataclass(frozen=True)
class PacketOut:
    """Send ``data`` (an Ethernet frame) out of ``out_port`` of ``bridge``; ``in_port`` is the
    port the switch should treat it as coming from (OFPP_TABLE re-injects into the pipeline)."""

    bridge: str
    data: bytes
    out_port: int
    in_port: int = OFPP_CONTROLLER


@dataclass(frozen=True)
class FlowChange:
    """Flows and groups to program on one bridge. Deletions run first, then groups, then flows.
    ``add`` is a tuple of flows, or a bulk load's :class:`~lisp_app.dataplane.pipeline.FlowRun`
    (a sequence of flows too, which the bundle writer writes without building them)."""

    bridge: str
    add: tuple[Flow, ...] = ()
    delete: tuple[Flow, ...] = ()
    groups: tuple[Group, ...] = ()          # add or modify
    delete_groups: tuple[int, ...] = ()     # after the flows that used them are gone
