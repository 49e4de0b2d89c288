"""When the shell polls the switch and re-resolves the underlay next hops: pure timing policy.

The statistics poll asks for our flows' counters every STATS_INTERVAL seconds, less often when a
poll is expensive (a big map-cache: a poll that took t seconds is followed by at least STATS_DUTY
* t seconds without one), not at all while bulk installs run, and asks for the watched mappings'
counters one by one when they are few, in one full dump when many. The warm-up schedule resolves
the underlay next hops again shortly after the underlay bridge connects (1, 2 and 4 s later) and
then every minute: OVS's tunnel neighbour cache, which learns from these replies, can miss the
first answers while the namespace's addresses and routes are still settling (measured for IPv6
next hops on first start). A fresh read of the counters first waits for OVS to credit its
datapath's statistics to the flows (FRESH_SETTLE).
"""

from __future__ import annotations

TIMER_TICK = 0.1
STATS_INTERVAL = 5.0
# OVS credits its datapath flows' statistics to the OpenFlow rules every other_config:
# max-revalidator ms (500 by default; measured: the last packet of a ping counted 0.3-0.5 s
# after it passed). A fresh read of the counters (GET /mapstat?fresh=1) waits this long first,
# so that it counts every packet that passed before it was asked for.
FRESH_SETTLE = 0.6
WATCH_HORIZON = 2 * STATS_INTERVAL  # start watching a mapping's counter this early
WATCH_ONE_BY_ONE = 200  # more watched flows than this: one full flow-stats dump instead
STATS_DUTY = 10  # a poll that took t seconds is followed by at least 10 t seconds without one
WARM_AGAIN_AFTER = (1.0, 2.0, 4.0)  # successive waits after connecting, then WARM_INTERVAL
WARM_INTERVAL = 60.0


def poll_now(bulk_running: int) -> bool:
    """Whether to poll now: not while bulk installs are under way."""
    return not bulk_running


def pause_after(poll_cost: float | None) -> float:
    """The pause before the next poll, given what the last one cost (None: it was skipped)."""
    if poll_cost is None:
        return STATS_INTERVAL
    return max(STATS_INTERVAL, STATS_DUTY * poll_cost)


def one_by_one(watched: int) -> bool:
    """Ask for the watched flows' counters one by one (else: one full dump)."""
    return watched <= WATCH_ONE_BY_ONE


def timer_wait(now: float, deadline: float | None) -> float:
    """How long the timer loop sleeps: until the core's next deadline, at most TIMER_TICK."""
    return TIMER_TICK if deadline is None else min(TIMER_TICK, max(0.01, deadline - now))


class WarmSchedule:
    """When to resolve the underlay next hops again (``due`` moves the schedule on)."""

    def __init__(self):
        self.next_at: float | None = None
        self._waits: list[float] = []

    def connected(self, now: float) -> None:
        """The underlay bridge (re)connected at ``now`` (and was warmed at once)."""
        self._waits = list(WARM_AGAIN_AFTER)
        self.next_at = now + self._waits.pop(0)

    def due(self, now: float) -> bool:
        if self.next_at is None or now < self.next_at:
            return False
        self.next_at = now + (self._waits.pop(0) if self._waits else WARM_INTERVAL)
        return True
