"""What the core asks of the ALT: announcements and withdrawals of EID prefixes, and (on a
configuration reload) neighbours to add or remove, handed by the shell to the BGP speaker's adapter
(:meth:`lisp_app.alt.speaker.AltSpeaker.apply`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import AltConfig, AltNeighborConfig
from ..protocol.addresses import EidPrefix


@dataclass(frozen=True, slots=True)
class Announce:
    """Announce a prefix into the ALT."""

    prefix: EidPrefix


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Withdraw a prefix from the ALT."""

    prefix: EidPrefix


@dataclass(frozen=True, slots=True)
class AddNeighbor:
    """Open a BGP session with a neighbour the configuration now lists (``alt``: the ALT section
    it belongs to, whose EID space its default import filter accepts)."""

    alt: AltConfig
    neighbor: AltNeighborConfig


@dataclass(frozen=True, slots=True)
class RemoveNeighbor:
    """Close the session with a neighbour (its ALT address) and forget the routes it sent."""

    address: str
