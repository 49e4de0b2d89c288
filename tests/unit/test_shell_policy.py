"""The shell's timing policy (lisp_app.shell.policy): the statistics poll's pauses and the
underlay warm-up schedule."""

from __future__ import annotations

from lisp_app.shell import policy
from lisp_app.shell.policy import (STATS_DUTY, STATS_INTERVAL, TIMER_TICK, WARM_AGAIN_AFTER,
                                   WARM_INTERVAL, WATCH_ONE_BY_ONE, WarmSchedule)


def test_a_cheap_poll_is_followed_by_the_regular_interval():
    assert policy.pause_after(0.0) == STATS_INTERVAL
    assert policy.pause_after(STATS_INTERVAL / STATS_DUTY / 2) == STATS_INTERVAL


def test_an_expensive_poll_takes_at_most_one_duty_share_of_the_time():
    assert policy.pause_after(2.0) == 2.0 * STATS_DUTY
    assert policy.pause_after(2.0) > STATS_INTERVAL


def test_no_poll_while_bulk_installs_run_and_the_wait_is_the_interval():
    assert policy.poll_now(0)
    assert not policy.poll_now(1) and not policy.poll_now(3)
    assert policy.pause_after(None) == STATS_INTERVAL


def test_few_watched_flows_one_by_one_many_in_one_dump():
    assert policy.one_by_one(0) and policy.one_by_one(WATCH_ONE_BY_ONE)
    assert not policy.one_by_one(WATCH_ONE_BY_ONE + 1)
    assert policy.WATCH_HORIZON == 2 * STATS_INTERVAL


def test_the_timer_sleeps_until_the_next_deadline_at_most_a_tick():
    assert policy.timer_wait(10.0, None) == TIMER_TICK
    assert abs(policy.timer_wait(10.0, 10.05) - 0.05) < 1e-9
    assert policy.timer_wait(10.0, 50.0) == TIMER_TICK
    assert policy.timer_wait(10.0, 9.0) == 0.01  # overdue: a short nap, never a busy loop


def test_warm_up_after_1_2_4_seconds_then_every_minute():
    warm = WarmSchedule()
    assert not warm.due(0.0) and warm.next_at is None  # not connected: never due
    warm.connected(100.0)
    fired, t = [], 100.0
    while t < 100.0 + 3 * WARM_INTERVAL:
        t = round(t + 0.1, 1)
        if warm.due(t):
            fired.append(round(t - 100.0, 1))
    gaps = [round(b - a, 1) for a, b in zip([0.0] + fired, fired)]
    assert tuple(gaps[:3]) == WARM_AGAIN_AFTER == (1.0, 2.0, 4.0)
    assert set(gaps[3:]) == {WARM_INTERVAL} and len(gaps) >= 5


def test_a_reconnect_restarts_the_warm_up():
    warm = WarmSchedule()
    warm.connected(0.0)
    for t in (1.0, 3.0, 7.0):
        assert warm.due(t)
    assert warm.next_at == 7.0 + WARM_INTERVAL
    warm.connected(20.0)
    assert not warm.due(20.5) and warm.due(21.0) and warm.next_at == 23.0
