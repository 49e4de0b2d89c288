"""OpenFlow 1.3 flows and groups as plain data, independent of os-ken.

The pipeline compiler produces these; ``lisp_app.app`` turns them into os-ken flow-mods and group-
mods, and the tests run packets through them in a simulator. Match fields use os-ken's OXM names
and value forms (``ipv4_dst=("10.1.0.0", "255.255.255.0")``, ``metadata=(1000, MASK)``), so the
translation is mechanical.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OFPP_IN_PORT = 0xFFFFFFF8
OFPP_TABLE = 0xFFFFFFF9  # packet-outs only: run the packet through the pipeline
OFPP_NORMAL = 0xFFFFFFFA
OFPP_CONTROLLER = 0xFFFFFFFD
OFPP_LOCAL = 0xFFFFFFFE
OFPCML_NO_BUFFER = 0xFFFF


@dataclass(frozen=True, slots=True)
class Output:
    """Send the packet to a port (a number or one of the OFPP_* reserved ports)."""

    port: int


@dataclass(frozen=True, slots=True)
class ToController:
    """Punt to the controller; the flow's cookie tells the controller why."""

    max_len: int = OFPCML_NO_BUFFER


@dataclass(frozen=True, slots=True)
class SetField:
    """Set a header field (OXM name, os-ken value form)."""

    field: str
    value: object


@dataclass(frozen=True, slots=True)
class CopyField:
    """Copy ``n_bits`` of one field into another (Nicira reg_move)."""

    src: str
    dst: str
    n_bits: int


@dataclass(frozen=True, slots=True)
class GroupAction:
    """Hand the packet to a group (a select group shares traffic among locators)."""

    group_id: int


@dataclass(frozen=True, slots=True)
class DecTtl:
    """Decrement the IP TTL / hop limit (the packet is dropped at 0)."""


@dataclass(frozen=True, slots=True)
class CheckPktLarger:
    """Nicira check_pkt_larger: set bit ``bit`` of register ``reg`` to 1 when the packet (with its
    Ethernet header) is longer than ``length`` bytes, else to 0."""

    length: int
    reg: int = 0
    bit: int = 0


@dataclass(frozen=True, slots=True)
class Multipath:
    """Nicira multipath: hash the packet's source IP address (IPv4 or IPv6; ``nw_src`` in OVS's
    terms) with ``basis``, take it modulo ``n_links`` and write the result (0 .. n_links - 1)
    into the low bits of register ``reg``. Spreads sources over buckets; one source always lands
    in the same bucket."""

    n_links: int
    reg: int = 1
    basis: int = 0

    @property
    def n_bits(self) -> int:
        """The register bits the result needs."""
        return max(1, (self.n_links - 1).bit_length())


Action = Output | ToController | SetField | CopyField | GroupAction | DecTtl | CheckPktLarger \
    | Multipath


@dataclass(frozen=True, slots=True)
class Flow:
    """One flow entry. Instructions run in OpenFlow order: meter, apply, clear, write,
    write-metadata, goto. Without ``goto`` the pipeline ends and the action set runs."""

    table: int
    priority: int
    match: tuple[tuple[str, object], ...]
    cookie: int
    apply: tuple = ()
    write: tuple = ()
    clear: bool = False
    metadata: tuple[int, int] | None = None
    goto: int | None = None
    meter: int | None = None
    idle_timeout: int = 0
    hard_timeout: int = 0

    @property
    def key(self) -> tuple:
        """What identifies the flow in the switch (a strict flow-mod's table, priority, match)."""
        return (self.table, self.priority, self.match)

    def match_dict(self) -> dict:
        return dict(self.match)


def match(**fields) -> tuple[tuple[str, object], ...]:
    """A canonical (sorted) match from keyword fields."""
    return tuple(sorted(fields.items()))


@dataclass(frozen=True, slots=True)
class Bucket:
    weight: int
    actions: tuple


@dataclass(frozen=True, slots=True)
class Group:
    """A select group: each bucket gets a share of flows proportional to its weight."""

    group_id: int
    buckets: tuple[Bucket, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Meter:
    """A drop meter in packets per second."""

    meter_id: int
    rate_pps: int
    burst: int = 0


_FULL_MASKS = ("255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ff:ff:ff:ff:ff:ff")


def canonical_match(items) -> tuple:
    """A comparable form of a match, ours or as the switch reports it (os-ken's value forms):
    fields sorted, string masks that cover the whole field dropped (OVS reports such a field as
    exact), strings lower-cased. Integer masks (metadata) are kept as given."""
    out = []
    for name, value in items:
        if isinstance(value, tuple) and len(value) == 2:
            val, mask = value
            if isinstance(mask, str) and mask.lower() in _FULL_MASKS:
                value = val
        out.append((name, _norm(value)))
    out.sort()
    return tuple(out)


def _norm(value):
    if isinstance(value, tuple):
        return tuple(_norm(v) for v in value)
    if isinstance(value, str):
        return value.lower()
    return value
