"""A controller killed and restarted (issue 15, item 4): cached traffic goes on while it is away
(the bridges are fail_mode=secure), and the restarted controller has reprogrammed both bridges
within 2 s of starting, although it was away long enough for OVS's default backoff to reach 8 s.
The controller makes that so by writing its bridges' reconnect timing into OVSDB while they
are connected (lisp_app/ovsdb.py; the lab's config names the xTR's OVSDB in ``ovsdb.remote``)."""

from __future__ import annotations

import re
import signal
import time
from datetime import datetime

import pytest

from tests.integration.lab import ping
from topologies.two_sites import TwoSites, site_spec

pytestmark = pytest.mark.integration

AWAY = 12.0  # seconds: OVS's own backoff (1, 2, 4, 8 s) would be at 8 s by then
STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "


def log_time(text: str, pattern: str) -> datetime:
    for line in text.splitlines():
        m = re.match(STAMP + r".*" + pattern, line)
        if m:
            return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
    raise AssertionError(f"no log line matching {pattern!r} in:\n{text}")


def test_a_restarted_controller_reprograms_the_switch_within_2_s(tmp_path):
    with TwoSites(site_spec(1, tag="k"), site_spec(2, tag="k"), rundir=str(tmp_path),
                  tag="k") as t:
        x1, h1 = t.xtrs["x1"], t.host("h1")
        assert ping(h1, "10.2.0.10", count=3)[1] >= 2  # the mapping is cached in x1's switch
        first = x1.log_tail(200)
        assert "reconnect to the controller within 1 s" in first, first

        # SIGKILL: no goodbye, no withdrawal; a ping across the outage
        pinger = h1.popen(["ping", "-c", str(int(AWAY * 5)), "-i", "0.2", "10.2.0.10"])
        x1.controller.send_signal(signal.SIGKILL)
        x1.controller.wait(5)
        time.sleep(AWAY)
        out = pinger.communicate(timeout=30)[0].decode()
        sent, received = map(int, re.search(r"(\d+) packets transmitted, (\d+) received",
                                            out).groups())
        assert received >= sent - 1, f"cached traffic stopped with the controller: {out}"

        x1.start_controller()
        x1.wait_programmed(timeout=30)
        log = x1.log_tail(400)
        started = log_time(log, r"controller started: OpenFlow on ")
        programmed = max(log_time(log, rf"{bridge} bridge [0-9a-f]+ programmed")
                         for bridge in ("lisp", "underlay"))
        took = (programmed - started).total_seconds()
        print(f"restart: both bridges programmed {took:.2f} s after the controller started "
              f"(away {AWAY:.0f} s)")
        assert took <= 2.0, log
        assert ping(h1, "10.2.0.10", count=3)[1] == 3
