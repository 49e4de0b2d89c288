"""RLOC probing and failover on real Open vSwitch (docs/architecture.rst, "Locator
reachability"), the scenario of topologies/failover.py: x2's site has two locators,
198.51.100.1 (priority 1) and 198.51.100.2 (priority 2). While h1 pings h2 ten times a second,
the path to the preferred locator is cut on the underlay router; with the fast probing setting
(interval 1 s, timeout 0.5 s, 3 misses) x1 marks it down and traffic resumes on the other
locator within interval x misses + 1 s of the cut; when the path is restored, x1's probes are
answered again and the traffic returns to the preferred locator without loss."""

from __future__ import annotations

import pytest

from tests.integration.lab import api
from topologies.failover import cut_and_restore, prepare
from topologies.two_sites import TwoSites, site_spec

pytestmark = pytest.mark.integration

FAST = {"interval": 1, "timeout": 0.5, "misses": 3}
BOUND = FAST["interval"] * FAST["misses"] + 1.0
# x2 does not probe: the cut also takes its own return path (answers to its probes come back to
# 198.51.100.1, its ITR-RLOC), so it would mark x1 down (docs/architecture.rst, "What probing
# cannot tell")
X2_PROBING = {"enabled": False}


def test_traffic_fails_over_to_the_other_locator_within_the_bound_and_comes_back(tmp_path):
    x1 = site_spec(1, tag="f")
    x1.extra = {"probing": FAST}
    x2 = site_spec(2, tag="f", priorities=(1, 2))
    x2.extra = {"probing": X2_PROBING}
    with TwoSites(x1, x2, rundir=str(tmp_path), tag="f") as t:
        prepare(t, both_up_within=10)
        f = cut_and_restore(t, detect_within=BOUND + 2, return_within=FAST["interval"] + 3)
        print(f"failover: traffic resumed {f['outage_s']:.2f} s after the cut (bound "
              f"{BOUND:.1f} s), {f['lost']} packets lost at 10 packets/s; back on the preferred "
              f"locator {f['flow_back_s']:.2f} s after the repair, {f['lost_on_return']} lost")
        assert f["state_after_cut"] == "down"
        assert f["outage_s"] <= BOUND, f
        assert f["lost_on_return"] == 0, f
        c = api(t.xtrs["x1"], "mapstat")["counters"]
        assert c["locators_went_down"] == 1 and c["locators_came_up"] == 1
