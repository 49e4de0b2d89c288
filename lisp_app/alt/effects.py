"""What the core asks of the ALT: announcements and withdrawals of EID prefixes, handed by the
shell to the BGP speaker's adapter (:meth:`lisp_app.alt.speaker.AltSpeaker.apply`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.addresses import EidPrefix


@dataclass(frozen=True, slots=True)
class Announce:
    """Announce a prefix into the ALT."""

    prefix: EidPrefix


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Withdraw a prefix from the ALT."""

    prefix: EidPrefix
