"""What the engines ask the orchestrator (and through it the shell) to do. ALT announcements and
withdrawals are :mod:`lisp_app.alt.effects`."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from ..mapping.cache import CacheEntry
from ..protocol.numbers import LISP_CONTROL_PORT


@dataclass(frozen=True, slots=True)
class BufferedPacket:
    """A punted packet held while its mapping is looked up (the frame as the switch gave it)."""

    data: bytes
    in_port: int
    instance_id: int


@dataclass(frozen=True, slots=True)
class SendControl:
    """Send a LISP control message (a UDP payload) over the underlay."""

    destination: IPv4Address | IPv6Address
    payload: bytes
    dest_port: int = LISP_CONTROL_PORT
    source_port: int = LISP_CONTROL_PORT
    source: IPv4Address | IPv6Address | None = None  # default: our RLOC of the family


@dataclass(frozen=True, slots=True)
class InstallMapping:
    """Program (or reprogram) the flows of a map-cache entry (``replaced``: the entry it
    replaced in the map-cache, if any)."""

    entry: CacheEntry
    replaced: CacheEntry | None = None


@dataclass(frozen=True, slots=True)
class InstallNewMappings:
    """Program the flows of map-cache entries whose prefixes had none (a bulk load): each as
    :class:`InstallMapping` would, with nothing replaced."""

    entries: list


@dataclass(frozen=True, slots=True)
class RemoveMapping:
    """Remove the flows of a map-cache entry."""

    entry: CacheEntry


@dataclass(frozen=True, slots=True)
class Reinject:
    """Send held packets through the pipeline again, now that their mapping is installed."""

    packets: tuple[BufferedPacket, ...]


@dataclass(frozen=True, slots=True)
class SendDataProbe:
    """Send a held packet LISP-encapsulated towards its own destination EID (outer destination =
    inner destination), carrying ``nonce`` (24 bits): the ETR that owns the EID answers with a
    Map-Reply and delivers the packet."""

    packet: BufferedPacket
    nonce: int


@dataclass(frozen=True, slots=True)
class SendOverAlt:
    """Send a Map-Request into the ALT: a UDP packet to the EID itself, which the ALT's BGP routes
    carry to the ETR (or Map-Server) that owns it."""

    eid: IPv4Address | IPv6Address
    payload: bytes
    source_port: int = LISP_CONTROL_PORT


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand ``frame`` (an Ethernet frame whose MACs are to be filled in) to the local host
    ``address`` of instance-id ``instance_id``."""

    instance_id: int
    address: IPv4Address | IPv6Address
    frame: bytes
