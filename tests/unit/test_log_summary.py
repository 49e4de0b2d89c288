"""Logs under attack (issue 15, item 3): a flood of one problem costs a few lines per window,
with counts per source, never one line per packet."""

from __future__ import annotations

import logging
from ipaddress import ip_address

from lisp_app.control.mapstat import MapStat
from lisp_app.logs import Summary, flush_due
from lisp_app.node.control_plane import ControlPlane, Received


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def lines(caplog, name):
    return [r.getMessage() for r in caplog.records if r.name == name]


def test_a_flood_is_a_burst_then_one_summary_per_window(caplog):
    clock = Clock()
    log = logging.getLogger("test.summary.flood")
    summary = Summary(log, "malformed control messages", window=10, burst=3, clock=clock)
    with caplog.at_level(logging.INFO, logger=log.name):
        for i in range(8028):
            clock.now = 100 + i * 9.9 / 8028  # 8,028 in one window
            summary("203.0.113.1" if i % 1000 else "203.0.113.7", "bad message %d", i)
        assert len(lines(caplog, log.name)) == 3  # the burst, in full
        clock.now = 110.5
        flush_due()
    got = lines(caplog, log.name)
    assert got[:3] == ["bad message 0", "bad message 1", "bad message 2"]
    assert len(got) == 4
    # 8,025 counted: 8 of them from .7 (i = 1000, 2000, ... 8000; i = 0 was logged in full)
    assert got[3] == ("8,025 more malformed control messages in the last 10 s: 8,017 from "
                      "203.0.113.1, 8 from 203.0.113.7 (last: bad message 8027)")
    assert summary.total == 8028


def test_each_window_starts_over_and_quiet_windows_say_nothing(caplog):
    clock = Clock()
    log = logging.getLogger("test.summary.windows")
    summary = Summary(log, "refused Map-Registers", window=10, burst=1, clock=clock)
    with caplog.at_level(logging.INFO, logger=log.name):
        summary("a", "first")
        clock.now += 11
        flush_due()  # nothing was counted: no summary line
        summary("a", "second")  # a new window: logged in full
        summary("a", "third")   # counted
        clock.now += 10
        summary("b", "fourth")  # the old window ends first (its summary), then "fourth" in full
    assert lines(caplog, log.name) == [
        "first", "second",
        "1 more refused Map-Registers in the last 10 s: 1 from a (last: third)", "fourth"]


def test_spoofed_sources_cannot_grow_the_table(caplog):
    clock = Clock()
    log = logging.getLogger("test.summary.spoofed")
    summary = Summary(log, "malformed data probes", window=10, burst=0, max_sources=4,
                      clock=clock)
    with caplog.at_level(logging.INFO, logger=log.name):
        for i in range(1000):
            summary(f"198.51.100.{i % 250}", "probe %d", i)
        assert len(summary._counts) == 4
        clock.now += 10
        flush_due()
    (line,) = lines(caplog, log.name)
    assert line.startswith("1,000 more malformed data probes in the last 10 s: 4 from ")
    assert line.endswith("984 from other sources (last: probe 999)")


def test_an_exception_is_logged_with_its_traceback_then_summarised_with_its_name(caplog):
    clock = Clock()
    log = logging.getLogger("test.summary.errors")
    summary = Summary(log, "handler errors", logging.ERROR, window=10, burst=1, clock=clock)
    with caplog.at_level(logging.INFO, logger=log.name):
        for _ in range(3):
            try:
                raise KeyError("x")
            except KeyError:
                summary("_packet_in", "%s failed", "_packet_in", exc_info=True)
        clock.now += 10
        flush_due()
    records = [r for r in caplog.records if r.name == log.name]
    assert records[0].exc_info is not None and records[0].levelno == logging.ERROR
    assert records[1].getMessage() == ("2 more handler errors in the last 10 s: 2 from "
                                       "_packet_in (last: _packet_in failed (KeyError: 'x'))")


def test_the_control_plane_summarises_malformed_messages(caplog):
    """The finding: 8,028 malformed messages in 10 s logged 8,028 INFO lines (1 MB)."""
    plane = ControlPlane(MapStat())
    source = Received(ip_address("203.0.113.1"), 4342)
    with caplog.at_level(logging.INFO, logger="lisp_app.node.control_plane"):
        for i in range(2000):
            assert plane.on_payload(bytes([0x10, i & 0xFF]), source, 0.0) == []
    assert plane.stats.control_malformed == 2000
    assert len(lines(caplog, "lisp_app.node.control_plane")) <= 4
