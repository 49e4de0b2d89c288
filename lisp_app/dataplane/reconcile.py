"""Reconciliation as a pure diff: what a bridge holds against what the core wants -> a plan.

When a bridge (re)connects, the shell reads its meters, groups and our flows, and asks
:func:`plan` what to send. The plan removes our stale flows, adds the missing (or changed) ones,
adds or modifies groups and meters, and removes groups nobody wants (on the LISP bridge). A flow
whose cookie is not ours (``COOKIE_BASE`` under ``COOKIE_MASK``) is never touched: it is not even
looked at. Flows are keyed as the switch reports them (table, priority, :func:`canonical_match`)
and compared by their instruction bytes (ofwire's for ours, the switch's own for theirs), cookie
and flow-mod flags (a counted flow without OFPFF_SEND_FLOW_REM, from an earlier version, is added
again: OVS replaces it and keeps its counters). No I/O here: the shell turns the plan into
messages (:func:`messages`) and sends them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .flows import Flow, Group, Meter, canonical_match
from .ofwire import (OFPGC_ADD, OFPGC_MODIFY, OFPMC_ADD, OFPMC_MODIFY, Encoder,
                     Unsupported, flow_flags)
from .pipeline import COOKIE_BASE, COOKIE_MASK


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """One flow as the switch reports it: ``match`` in canonical form, ``instructions`` as the
    OpenFlow bytes of its instruction list, ``flags`` its flow-mod flags."""

    table: int
    priority: int
    match: tuple
    cookie: int
    instructions: bytes
    flags: int = 0

    @property
    def key(self) -> tuple:
        return (self.table, self.priority, self.match)


@dataclass(frozen=True)
class BridgeState:
    """What a bridge holds: flows (ours; others are ignored), group ids, meter id -> band rates."""

    flows: tuple[FlowRecord, ...] = ()
    groups: frozenset[int] = frozenset()
    meters: dict[int, tuple[int, ...]] = field(default_factory=dict)


@dataclass
class Plan:
    """What to send, in this order: meters, flow deletes, groups, flow adds, group deletes."""

    meters_add: list[Meter] = field(default_factory=list)
    meters_modify: list[Meter] = field(default_factory=list)
    flows_delete: list[FlowRecord] = field(default_factory=list)
    groups_add: list[Group] = field(default_factory=list)
    groups_modify: list[Group] = field(default_factory=list)
    flows_add: list[Flow] = field(default_factory=list)
    groups_delete: list[int] = field(default_factory=list)
    kept: int = 0

    @property
    def added(self) -> int:
        return len(self.flows_add)

    @property
    def stale(self) -> int:
        return len(self.flows_delete)

    def groups_after(self, before) -> set[int]:
        """The group ids the bridge holds once the plan has run."""
        return (set(before) | {g.group_id for g in self.groups_add}) - set(self.groups_delete)

    def __bool__(self) -> bool:
        return any((self.meters_add, self.meters_modify, self.flows_delete, self.groups_add,
                    self.groups_modify, self.flows_add, self.groups_delete))


def is_ours(cookie: int) -> bool:
    return cookie & COOKIE_MASK == COOKIE_BASE


def flow_key(flow: Flow) -> tuple:
    """A flow's key as the switch will report it."""
    return (flow.table, flow.priority, canonical_match(flow.match))


def plan(have: BridgeState, meters: list[Meter], flows: list[Flow], groups: list[Group], *,
         delete_groups: bool, encoder: Encoder | None = None) -> Plan:
    """The plan that turns ``have`` into (``meters``, ``flows``, ``groups``) plus whatever
    foreign flows the bridge holds. ``delete_groups``: remove groups present and not wanted."""
    encoder = encoder or Encoder()
    out = Plan()
    for meter in meters:
        rates = have.meters.get(meter.meter_id)
        if rates is None:
            out.meters_add.append(meter)
        elif tuple(rates) != (meter.rate_pps,):
            out.meters_modify.append(meter)
    existing = {r.key: r for r in have.flows if is_ours(r.cookie)}
    wanted = {flow_key(f): f for f in flows}
    out.flows_delete = [r for key, r in existing.items() if key not in wanted]
    for group in groups:
        (out.groups_modify if group.group_id in have.groups else out.groups_add).append(group)
    for key, flow in wanted.items():
        present = existing.get(key)
        if present is None or present.cookie != flow.cookie or \
                present.flags != flow_flags(flow) or \
                present.instructions != encoder.instructions(flow):
            out.flows_add.append(flow)
    out.kept = len(wanted) - len(out.flows_add)
    if delete_groups:
        keep = {g.group_id for g in groups}
        out.groups_delete = sorted(gid for gid in have.groups if gid not in keep)
    return out


def messages(p: Plan, encoder: Encoder, next_xid, fallback=None) -> list[bytes]:
    """The plan as OpenFlow 1.3 messages in order (no barrier: the shell sends its own and waits
    for the reply). ``next_xid()`` numbers them. Where ofwire does not write a flow's field or
    action, ``fallback.flow_add(flow, xid)`` / ``fallback.flow_delete(record, xid)`` (the shell's
    os-ken translation) writes it instead."""
    out = [encoder.meter_mod(OFPMC_ADD, m, next_xid()) for m in p.meters_add]
    out += [encoder.meter_mod(OFPMC_MODIFY, m, next_xid()) for m in p.meters_modify]
    for r in p.flows_delete:
        xid = next_xid()
        try:
            out.append(encoder.flow_delete(r.table, r.priority, r.match, r.cookie, xid))
        except Unsupported:
            if fallback is None:
                raise
            out.append(fallback.flow_delete(r, xid))
    out += [encoder.group_mod(OFPGC_ADD, g, next_xid()) for g in p.groups_add]
    out += [encoder.group_mod(OFPGC_MODIFY, g, next_xid()) for g in p.groups_modify]
    for f in p.flows_add:
        xid = next_xid()
        try:
            out.append(encoder.flow_add(f, xid))
        except Unsupported:
            if fallback is None:
                raise
            out.append(fallback.flow_add(f, xid))
    out += [encoder.group_delete(gid, next_xid()) for gid in p.groups_delete]
    return out
