"""Solicit-Map-Requests on real Open vSwitch: x1 has cached x2's mapping (TTL 24 hours); the
operator moves x2's 10.2.0.0/24 to its other locator (``lispctl database set``); x2 sends x1 an
SMR, x1 asks again (smr-invoked) and its encapsulation flow follows within about a second, while
h1 keeps reaching h2."""

from __future__ import annotations

import time

import pytest

from tests.integration.lab import api, ping
from topologies.failover import encap_rlocs, locator_state, wait
from topologies.two_sites import TwoSites, site_spec

pytestmark = pytest.mark.integration


def test_a_changed_etr_mapping_reaches_the_itr_flows_within_a_second(tmp_path):
    with TwoSites(site_spec(1, tag="s"), site_spec(2, tag="s"), rundir=str(tmp_path),
                  tag="s") as t:
        x1, x2 = t.xtrs["x1"], t.xtrs["x2"]
        sent, received, out = ping(t.host("h1"), "10.2.0.10", count=3)
        assert received == sent, out
        assert encap_rlocs(x1) == {"198.51.100.1"}
        started = time.monotonic()
        print(x2.lispctl("database", "set", "'[1000]10.2.0.0/24'", "198.51.100.2/1/100"))
        followed = time.monotonic() - started + wait(
            lambda: encap_rlocs(x1) == {"198.51.100.2"}, 3, "x1's flow to follow")
        print(f"SMR: x1's flow followed {followed:.2f} s after the change")
        assert followed <= 1.5
        sent, received, out = ping(t.host("h1"), "10.2.0.10", count=3)
        assert received == sent, out
        c1, c2 = api(x1, "mapstat")["counters"], api(x2, "mapstat")["counters"]
        assert c2["smrs_sent"] == 1 and c1["smrs_received"] == 1 and c1["smrs_ignored"] == 0
        # x1 RLOC-probes the new locator, and x2 answers from it
        wait(lambda: locator_state(x1, "198.51.100.2") == "up", 5, "the new locator probed up")
        entry = api(x1, "map", "get", "'[1000]10.2.0.10'")["mapping"]
        assert [l["rloc"] for l in entry["locators"]] == ["198.51.100.2"]
        assert entry["expires_in"] > 1400 * 60  # a fresh answer, not an expiry
