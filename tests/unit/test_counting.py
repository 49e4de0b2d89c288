"""lisp_app.control.counting: data-plane counters that only go up, from aggregate replies and
FlowRemoved messages in the switch's order, and counters carried over a source's restarts."""

from __future__ import annotations

import pytest

from lisp_app.control.counting import COUNTED, CarriedCounts, FlowCounts
from lisp_app.control.mapstat import MapStat
from lisp_app.dataplane.pipeline import (K_DECAP, K_DROP, K_ENCAP, K_HOST, K_NEGATIVE,
                                         K_PUNT_MISS)

KINDS = (K_ENCAP, K_DECAP, K_HOST, K_NEGATIVE, K_DROP)


class Poller:
    """Stands for the shell: numbers requests, answers them with the given counts."""

    def __init__(self, counts: FlowCounts):
        self.counts, self.xid = counts, 0

    def poll(self, live: dict[int, int], now: float = 0.0) -> int | None:
        """Ask for every kind, answer with ``live`` (kind -> packets); the completed ticket."""
        requests = {}
        for kind in KINDS:
            self.xid += 1
            requests[self.xid] = kind
        ticket = self.counts.ask(requests, now)
        done = [self.counts.answered(xid, live.get(kind, 0)) for xid, kind in requests.items()]
        assert done[:-1] == [None] * (len(done) - 1)
        return done[-1] if done[-1] == ticket else None


def started(stats=None, live=None) -> tuple[FlowCounts, Poller]:
    """Counters of a node whose LISP bridge just connected (baseline taken with ``live``)."""
    counts = FlowCounts(stats)
    poller = Poller(counts)
    counts.new_epoch()
    poller.poll(live or {})
    return counts, poller


def test_each_counted_kind_has_its_own_counter_and_mapstat_field():
    assert COUNTED == {K_ENCAP: "sent", K_DECAP: "received", K_HOST: "delivered",
                       K_NEGATIVE: "dropped_negative", K_DROP: "dropped_policy"}
    stats = MapStat()
    counts, poller = started(stats)
    poller.poll({K_ENCAP: 3, K_DECAP: 4, K_HOST: 5, K_NEGATIVE: 6, K_DROP: 7})
    assert counts.values() == {"sent": 3, "received": 4, "delivered": 5, "dropped_negative": 6,
                               "dropped_policy": 7}
    assert (stats.sent, stats.received, stats.delivered, stats.dropped_negative,
            stats.dropped_policy) == (3, 4, 5, 6, 7)
    assert stats.dropped == 13  # the old key: every drop


def test_a_removed_flows_final_count_keeps_the_counter_from_going_down():
    counts, poller = started()
    poller.poll({K_ENCAP: 10})
    counts.flow_removed(K_ENCAP, 12)   # the flow (10 counted, 2 more since) leaves
    assert counts.values()["sent"] == 12
    poller.poll({K_ENCAP: 0})          # the switch holds no encapsulation flow now
    assert counts.values()["sent"] == 12
    poller.poll({K_ENCAP: 5})          # a new flow carries 5 packets
    assert counts.values()["sent"] == 17


def test_a_removal_between_polls_is_neither_lost_nor_counted_twice():
    """Flows A (4 packets) and B: B leaves with 9 between two polls; the next poll sees A at 6.
    In the switch's order, a reply never includes a flow whose removal came before it."""
    counts, poller = started()
    poller.poll({K_HOST: 4 + 7})   # A 4, B 7
    counts.flow_removed(K_HOST, 9)
    assert counts.values()["delivered"] == 11  # a lower bound until the next poll: not 20
    poller.poll({K_HOST: 6})
    assert counts.values()["delivered"] == 15


def test_counts_the_switch_held_before_the_baseline_are_not_counted():
    """The controller counts from its start: flows of an earlier run keep their counts, which
    the baseline subtracts, and their removal before the baseline counts nothing."""
    counts = FlowCounts()
    poller = Poller(counts)
    counts.new_epoch()
    counts.flow_removed(K_ENCAP, 1000)  # a stale flow deleted by reconciliation
    poller.poll({K_ENCAP: 500, K_DROP: 40})  # the baseline
    assert counts.values()["sent"] == 0 and counts.values()["dropped_policy"] == 0
    poller.poll({K_ENCAP: 503, K_DROP: 41})
    assert counts.values()["sent"] == 3 and counts.values()["dropped_policy"] == 1
    counts.flow_removed(K_ENCAP, 504)  # the old flow leaves: 4 packets since the start
    poller.poll({})
    assert counts.values()["sent"] == 4


def test_a_reconnect_carries_the_counters_on_whether_the_switch_kept_its_flows_or_not():
    counts, poller = started()
    poller.poll({K_ENCAP: 50})
    assert counts.values()["sent"] == 50
    counts.new_epoch()                 # reconnected; the switch kept the flow (52 now)
    poller.poll({K_ENCAP: 52})         # baseline: not counted twice
    assert counts.values()["sent"] == 50
    poller.poll({K_ENCAP: 60})
    assert counts.values()["sent"] == 58
    counts.new_epoch()                 # the switch restarted: its flows are gone
    poller.poll({K_ENCAP: 0})
    assert counts.values()["sent"] == 58
    poller.poll({K_ENCAP: 2})
    assert counts.values()["sent"] == 60


def test_a_counter_never_goes_down_even_when_a_flow_leaves_unreported():
    counts, poller = started()
    poller.poll({K_NEGATIVE: 30})
    poller.poll({K_NEGATIVE: 10})  # a flow left without its FlowRemoved (lost)
    assert counts.values()["dropped_negative"] == 30
    poller.poll({K_NEGATIVE: 35})
    assert counts.values()["dropped_negative"] == 35


def test_removals_of_kinds_not_counted_change_nothing():
    counts, poller = started()
    counts.flow_removed(K_PUNT_MISS, 99)
    counts.flow_removed(None, 99)  # a flow without our cookie
    assert set(counts.values().values()) == {0}


def test_tickets_complete_when_every_request_is_answered_and_old_ones_are_forgotten():
    counts = FlowCounts()
    counts.new_epoch()
    ticket = counts.ask({1: K_ENCAP, 2: K_DROP}, 5.0)
    assert counts.answered(2, 0) is None
    assert counts.answered(99, 7) is None  # not ours
    assert counts.answered(1, 0) == ticket
    assert counts.answered(1, 3) is None  # answered twice: ignored
    assert counts.values()["sent"] == 0
    late = counts.ask({3: K_ENCAP}, 6.0)
    counts.new_epoch()  # reconnected: requests of the old connection are forgotten
    assert counts.answered(3, 50) is None and counts.values()["sent"] == 0
    assert late != ticket
    with pytest.raises(ValueError, match="not counted"):
        counts.ask({4: K_PUNT_MISS}, 7.0)


def test_read_at_is_when_the_oldest_kind_was_last_read():
    counts = FlowCounts()
    assert counts.read_at() is None
    counts.new_epoch()
    counts.ask({1: K_ENCAP}, 10.0)
    counts.answered(1, 0)
    assert counts.read_at() is None  # the other kinds were never read
    poller = Poller(counts)
    poller.xid = 10
    assert poller.poll({}, now=20.0) is not None
    assert counts.read_at() == 20.0
    counts.ask({50: K_ENCAP}, 30.0)
    counts.answered(50, 0)
    assert counts.read_at() == 20.0  # the others are still from 20 s


def test_controller_counts_are_not_overwritten_by_the_switchs():
    """too_big's drop (a packet the controller dropped) stays counted through polls."""
    stats = MapStat()
    counts, poller = started(stats)
    stats.too_big_dropped += 1
    poller.poll({K_NEGATIVE: 2, K_DROP: 3})
    assert stats.too_big_dropped == 1
    assert stats.dropped == 2 + 3 + 1


def test_carried_counts_survive_a_restart_of_their_source():
    stats = MapStat()
    carried = CarriedCounts(stats)
    carried.update({"classic_received": 10, "classic_sent": 4}, source=(("lisp_dstats", 7),))
    carried.update({"classic_received": 15, "classic_sent": 4}, source=(("lisp_dstats", 7),))
    assert (stats.classic_received, stats.classic_sent) == (15, 4)
    # attached again: new maps, counting from 0
    carried.update({"classic_received": 2, "classic_sent": 1}, source=(("lisp_dstats", 9),))
    assert (stats.classic_received, stats.classic_sent) == (17, 5)
    # a fall without a new identity is a restart too
    carried.update({"classic_received": 1, "classic_sent": 3}, source=(("lisp_dstats", 9),))
    assert (stats.classic_received, stats.classic_sent) == (18, 7)
