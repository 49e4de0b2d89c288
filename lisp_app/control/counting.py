"""Counters that only go up, from sources that forget: the switch's flow counters and the
classic-LISP programs' eBPF counters. Pure: the shell hands in what it read and when.

**Data-plane counts** (:class:`FlowCounts`). The switch counts packets per flow, and a flow's
count leaves with the flow (an idle or hard timeout, a delete by the controller, by
reconciliation). For each counted kind of flow (``COUNTED``: encapsulation, decapsulation, host
delivery, negative mappings, explicit drops) the value is::

    value = offset + retired + live

- ``live``: the last aggregate packet count of the kind's flows installed now (one
  OFPAggregateStatsRequest per kind);
- ``retired``: the final counts of the kind's flows removed since the epoch began, from their
  OFPFlowRemoved (every counted flow carries OFPFF_SEND_FLOW_REM:
  :data:`lisp_app.dataplane.pipeline.COUNTED_KINDS`), whoever removed them;
- ``offset``: set when an epoch begins (the LISP bridge connected: :meth:`FlowCounts.new_epoch`,
  then a first poll, the baseline) so that the value carries on from where it was. The counts the
  flows held before the controller started, and those a reconnecting switch still holds, are not
  counted (again): the counters count from the controller's start.

The shell hands aggregate replies and FlowRemoved messages over in the order the switch sent them
(both through the app's one os-ken event queue), so ``retired`` and a reply's ``live`` describe the
same moment of the switch: a flow is in one or the other, never in both. Between polls the value
moves up as flows are removed (``offset + retired`` is a lower bound of the truth). Whatever
happens (a FlowRemoved lost with a connection, a switch that restarted and lost its flows), a
reported value never goes down: it is the larger of what it was and the new sum.

**Controller counts** stay in :class:`~lisp_app.control.mapstat.MapStat`'s own fields, which
only the controller's engines increment; :class:`FlowCounts` writes only its own fields
(``COUNTED``'s names), so neither overwrites the other.

**Counters that can restart** (:class:`CarriedCounts`): the classic-LISP programs' counters
start again at 0 when the programs are attached again (new maps). A source that changes identity
(its map ids) or whose value falls has restarted: what it had counted is carried over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..dataplane.pipeline import K_DECAP, K_DROP, K_ENCAP, K_HOST, K_NEGATIVE

#: flow kind -> the mapstat counter its packet counts feed
COUNTED = {K_ENCAP: "sent", K_DECAP: "received", K_HOST: "delivered",
           K_NEGATIVE: "dropped_negative", K_DROP: "dropped_policy"}


@dataclass
class _Kind:
    value: int = 0          # what is reported: never goes down
    offset: int = 0
    retired: int = 0
    live: int = 0
    baseline: bool = True   # waiting for the epoch's first reply (the baseline)
    read_at: float | None = None  # when the last reply applied was asked for


@dataclass
class _Ticket:
    waiting: set = field(default_factory=set)  # xids not answered yet


class FlowCounts:
    """The data-plane counters of one node, from the LISP bridge's aggregate replies and
    FlowRemoved messages. ``stats`` (a MapStat, optional) gets each counter's value as it
    changes."""

    def __init__(self, stats=None, counted: dict[int, str] | None = None):
        self.stats = stats
        self.counted = dict(COUNTED if counted is None else counted)
        self._kinds = {kind: _Kind() for kind in self.counted}
        self._asked: dict[int, tuple[int, float, int]] = {}  # xid -> (kind, asked at, ticket)
        self._tickets: dict[int, _Ticket] = {}
        self._next_ticket = 1
        self._publish()

    # -- what the shell tells us ----------------------------------------------------------------

    def new_epoch(self) -> None:
        """The LISP bridge (re)connected: the next reply of each kind is its baseline, and until
        then nothing is counted (the flows' counts are those of before). Requests sent on an
        earlier connection are forgotten."""
        for state in self._kinds.values():
            state.baseline = True
        self._asked.clear()
        self._tickets.clear()

    def ask(self, requests: dict[int, int], now: float) -> int:
        """The shell sent aggregate requests (``xid -> flow kind``) at ``now``; returns a
        ticket that :meth:`answered` names once every one of them has been answered."""
        ticket = self._next_ticket
        self._next_ticket += 1
        self._tickets[ticket] = _Ticket(set(requests))
        for xid, kind in requests.items():
            if kind not in self._kinds:
                raise ValueError(f"flow kind {kind:#x} is not counted")
            self._asked[xid] = (kind, now, ticket)
        return ticket

    def answered(self, xid: int, packets: int) -> int | None:
        """The aggregate reply to request ``xid``: ``packets`` over the kind's installed flows.
        Returns the request's ticket when this was its last answer (else None, also for an xid
        we did not ask)."""
        asked = self._asked.pop(xid, None)
        if asked is None:
            return None
        kind, at, ticket = asked
        state = self._kinds[kind]
        if state.baseline:
            state.baseline = False
            state.retired = 0
            state.offset = state.value - packets
        state.live = packets
        state.read_at = at if state.read_at is None else max(state.read_at, at)
        self._raise(kind, state.offset + state.retired + packets)
        waiting = self._tickets.get(ticket)
        if waiting is None:
            return None
        waiting.waiting.discard(xid)
        if waiting.waiting:
            return None
        del self._tickets[ticket]
        return ticket

    def forget(self, ticket: int) -> None:
        """The shell stopped waiting for a ticket (a timeout): late answers still count."""
        self._tickets.pop(ticket, None)

    def flow_removed(self, kind: int | None, packets: int) -> None:
        """A flow of ours left the LISP bridge with its final packet count (OFPFlowRemoved, for
        an idle or hard timeout or a delete)."""
        state = self._kinds.get(kind)
        if state is None or state.baseline:  # not counted, or from before the baseline
            return
        state.retired += packets
        self._raise(kind, state.offset + state.retired)

    # -- what the node reports ------------------------------------------------------------------

    def values(self) -> dict[str, int]:
        """Counter name -> value (each never decreases)."""
        return {self.counted[kind]: state.value for kind, state in self._kinds.items()}

    def read_at(self) -> float | None:
        """When the switch's counts were last read: the oldest of the kinds' latest reads (None
        before every kind has been read once)."""
        times = [state.read_at for state in self._kinds.values()]
        return None if any(t is None for t in times) else min(times)

    def _raise(self, kind: int, total: int) -> None:
        state = self._kinds[kind]
        if total > state.value:
            state.value = total
            if self.stats is not None:
                setattr(self.stats, self.counted[kind], total)

    def _publish(self) -> None:
        if self.stats is not None:
            for name, value in self.values().items():
                setattr(self.stats, name, value)


class CarriedCounts:
    """Counters read whole from a source that can start again from 0 (the classic-LISP
    programs' eBPF maps, replaced when the programs are attached again): each value is what
    earlier incarnations of the source counted plus what the current one reports."""

    def __init__(self, stats=None):
        self.stats = stats
        self._carried: dict[str, int] = {}
        self._last: dict[str, int] = {}
        self._source = None
        self.values: dict[str, int] = {}

    def update(self, read: dict[str, int], source=None) -> dict[str, int]:
        """The source's counters as read now; ``source`` names the incarnation (the map ids):
        a different one, or a value lower than the last read, means the source started again."""
        restarted = source != self._source and self._source is not None
        self._source = source
        for name, value in read.items():
            last = self._last.get(name, 0)
            if restarted or value < last:
                self._carried[name] = self._carried.get(name, 0) + last
            self._last[name] = value
            total = self._carried.get(name, 0) + value
            self.values[name] = max(self.values.get(name, 0), total)
            if self.stats is not None:
                setattr(self.stats, name, self.values[name])
        return dict(self.values)
