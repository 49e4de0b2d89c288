"""The shell's OpenFlow writer: flow changes, reconciliation plans and bundles as message bytes,
and the switch's errors by bridge and xid. Pure: the caller numbers messages (``next_xid``) and
sends the bytes.

:class:`FlowWriter` owns the app's :class:`~lisp_app.dataplane.ofwire.Encoder` (and its memos)
and remembers which groups the LISP bridge holds, so that a group is added once and modified
after. Where ofwire does not write a field or action, the ``fallback`` it is given (the app
gives :mod:`lisp_app.shell.translate`, os-ken's serializer) does. It imports no os-ken itself.
"""

from __future__ import annotations

from ..dataplane import ofwire, reconcile
from ..dataplane.effects import LISP, FlowChange
from ..dataplane.flows import Flow, Group
from ..dataplane.pipeline import FlowRun

XID_SPACE = 0x100000000


class FlowWriter:
    def __init__(self, fallback):
        """``fallback``: has ``flow_add(flow, xid)`` and ``flow_delete(flow_or_record, xid)``
        returning message bytes, for what ofwire raises Unsupported on."""
        self.fallback = fallback
        self.encoder = ofwire.Encoder()
        self.groups: set[int] = set()  # the group ids the LISP bridge holds
        self._next_bundle = 1

    def flow_add(self, flow: Flow, xid: int) -> bytes:
        try:
            return self.encoder.flow_add(flow, xid)
        except ofwire.Unsupported:
            return self.fallback.flow_add(flow, xid)

    def bundled_flow_add(self, flow: Flow, xid: int, bundle_id: int) -> bytes:
        """The flow's addition as a message of bundle ``bundle_id``."""
        try:
            return self.encoder.bundled_flow_add(flow, xid, bundle_id)
        except ofwire.Unsupported:
            return ofwire.bundle_add(self.fallback.flow_add(flow, xid), bundle_id)

    def bundled_run(self, run: FlowRun, next_xid, bundle_id: int) -> list[bytes]:
        """The additions of a FlowRun's flows as messages of bundle ``bundle_id``, in order,
        each numbered by ``next_xid()``."""
        try:
            return self.encoder.bundled_run(run, next_xid, bundle_id)
        except ofwire.Unsupported:
            return [self.bundled_flow_add(flow, next_xid(), bundle_id) for flow in run]

    def flow_delete(self, flow: Flow, xid: int) -> bytes:
        try:
            return self.encoder.flow_delete_of(flow, xid)
        except ofwire.Unsupported:
            return self.fallback.flow_delete(flow, xid)

    def group(self, group: Group, xid: int) -> bytes:
        """Add the group, or modify it if the bridge holds it already."""
        command = ofwire.OFPGC_MODIFY if group.group_id in self.groups else ofwire.OFPGC_ADD
        self.groups.add(group.group_id)
        return self.encoder.group_mod(command, group, xid)

    def change(self, change: FlowChange, next_xid) -> list[bytes]:
        """A FlowChange in order: deletions, groups, additions, group deletions."""
        out = [self.flow_delete(f, next_xid()) for f in change.delete]
        out += [self.group(g, next_xid()) for g in change.groups]
        out += [self.flow_add(f, next_xid()) for f in change.add]
        for gid in change.delete_groups:
            out.append(self.encoder.group_delete(gid, next_xid()))
            self.groups.discard(gid)
        return out

    def reconcile(self, bridge: str, have: reconcile.BridgeState, wanted, next_xid):
        """(plan, messages) that bring a bridge holding ``have`` to ``wanted`` (meters, flows,
        groups); on the LISP bridge, groups nobody wants are removed and remembered gone."""
        plan = reconcile.plan(have, *wanted, delete_groups=bridge == LISP, encoder=self.encoder)
        messages = reconcile.messages(plan, self.encoder, next_xid, self.fallback)
        if bridge == LISP:
            self.groups = plan.groups_after(have.groups)
        return plan, messages

    def bundle(self, flows: list[Flow] | None, next_xid, chunk: int = 256) -> "Bundle":
        """An atomic ONF bundle adding ``flows`` (:meth:`Bundle.chunks`), or, with None, one
        to which flows are added as they come (:meth:`Bundle.open`, :meth:`Bundle.add`,
        :meth:`Bundle.close`): the switch works on the first ones while the later ones are
        compiled and encoded."""
        bundle_id = self._next_bundle
        self._next_bundle = (self._next_bundle % 0xFFFFFFFF) + 1
        return Bundle(self, bundle_id, flows or [], next_xid, chunk)


class Bundle:
    """One bundle being written: ``bundle_id``, the xids of its open (``first``) and, once
    closed, its commit (``commit``) request, and how many ``flows`` it has."""

    def __init__(self, writer: FlowWriter, bundle_id: int, flows: list[Flow], next_xid,
                 chunk: int):
        self.bundle_id, self.first, self.commit, self.flows = bundle_id, None, None, 0
        self._writer, self._flows, self._next_xid, self._chunk = writer, flows, next_xid, chunk
        self._parts: list[bytes] = []

    def open(self) -> bytes:
        """The open request."""
        self.first = self._next_xid()
        return ofwire.bundle_control(self.first, self.bundle_id, ofwire.ONF_BCT_OPEN_REQUEST)

    def add(self, flows) -> list[bytes]:
        """Add ``flows`` (Flow objects, and FlowRuns, whose flows are written from templates):
        the byte chunks now complete (``chunk`` messages each, or one whole run), in order."""
        out = []
        parts, next_xid, bundle_id, chunk = self._parts, self._next_xid, self.bundle_id, \
            self._chunk
        writer = self._writer
        flow_add = writer.bundled_flow_add
        for flow in flows:
            if type(flow) is FlowRun:
                parts.extend(writer.bundled_run(flow, next_xid, bundle_id))
                self.flows += len(flow)
            else:
                parts.append(flow_add(flow, next_xid(), bundle_id))
                self.flows += 1
            if len(parts) >= chunk:
                out.append(b"".join(parts))
                parts.clear()
        return out

    def close(self) -> bytes:
        """What is left of the flows and the commit request."""
        self.commit = self._next_xid()
        self._parts.append(ofwire.bundle_control(self.commit, self.bundle_id,
                                                 ofwire.ONF_BCT_COMMIT_REQUEST))
        out = b"".join(self._parts)
        self._parts = []
        return out

    def discard(self) -> bytes:
        """The discard request of a bundle that is not to be committed (the switch drops it
        and what was added to it)."""
        self._parts = []
        return ofwire.bundle_control(self._next_xid(), self.bundle_id,
                                     ofwire.ONF_BCT_DISCARD_REQUEST)

    def chunks(self):
        """The bundle of the flows it was made with, in byte chunks of at most ``chunk``
        messages, in order."""
        yield self.open()
        yield from self.add(self._flows)
        yield self.close()


class SwitchErrors:
    """The most recent errors the switches sent, by (bridge, xid): the two bridges number their
    xids separately."""

    LIMIT = 1024

    def __init__(self):
        self._errors: dict[tuple, str] = {}

    def record(self, bridge: str | None, xid: int, reason: str) -> None:
        self._errors[(bridge, xid)] = reason
        if len(self._errors) > self.LIMIT:
            del self._errors[next(iter(self._errors))]

    def between(self, bridge: str, first: int, last: int) -> list[str]:
        """The errors of ``bridge`` for xids first..last (the range may wrap)."""
        span = (last - first) % XID_SPACE
        return [reason for (b, xid), reason in list(self._errors.items())
                if b == bridge and (xid - first) % XID_SPACE <= span]


def summary(errors: list[str]) -> str:
    """The first error, and how many more there were."""
    more = len(errors) - 1
    return errors[0] + (f" and {more} more errors" if more > 0 else "")


def bulk_batches(effects, size: int):
    """``effects`` (an iterable, taken as it comes) in lists holding about ``size`` flows each:
    a flow change counts its new flows (a bulk load's may hold hundreds), any other effect one.
    Each list ends with the effect that brings it to ``size``; the last may hold fewer."""
    batch: list = []
    weight = 0
    for effect in effects:
        batch.append(effect)
        weight += len(effect.add) if type(effect) is FlowChange else 1
        if weight >= size:
            yield batch
            batch, weight = [], 0
    if batch:
        yield batch


def split_bulk(effects, connected) -> tuple[list, dict[str, list]]:
    """A bulk install's effects in two parts: what goes out at once, in order (packet-outs, ALT
    effects, and each flow change's deletions and groups), and each connected bridge's new flows
    (Flow objects, and FlowRuns as they are), which go in one bundle. Changes for a bridge not in
    ``connected`` are left out: it is programmed in full when it (re)connects."""
    now: list = []
    adds: dict[str, list] = {}
    for effect in effects:
        if not isinstance(effect, FlowChange):
            now.append(effect)
        elif effect.bridge in connected:
            if effect.delete or effect.groups or effect.delete_groups:
                now.append(FlowChange(effect.bridge, delete=effect.delete, groups=effect.groups,
                                      delete_groups=effect.delete_groups))
            if type(effect.add) is FlowRun:  # kept whole: the bundle writes it from templates
                adds.setdefault(effect.bridge, []).append(effect.add)
            else:
                adds.setdefault(effect.bridge, []).extend(effect.add)
    return now, adds
