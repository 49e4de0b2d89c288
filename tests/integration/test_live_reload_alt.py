"""Live reload on the ALT (real FRR, OVS GRE, os-ken's BGP speaker; topologies/seed_alt.py): a
SIGHUP reload of x1 that adds a local prefix announces it into the ALT, one that removes it
withdraws it, one that drops x1's ALT neighbour closes that BGP session (and the ALT's routes go
from x1's RIB), and one that lists it again reopens it."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from tests.integration.lab import hangup, wait_for
from topologies.seed_alt import SeedAlt, xtr_spec

pytestmark = pytest.mark.integration

PREFIX = "153.16.37.0/24"
PEER, X1_ALT = "100.64.254.168", "100.64.254.169"


@pytest.fixture(scope="module")
def alt(tmp_path_factory):
    with SeedAlt(rundir=str(tmp_path_factory.mktemp("live-reload-alt")),
                 xtrs=[xtr_spec(1), xtr_spec(2)]) as t:
        t.wait_established()
        wait_for(lambda: "0.0.0.0/0" in routes(t.xtrs["x1"]), 60, "x1 to learn the ALT's routes")
        yield t


def routes(xtr) -> set[str]:
    return {r["prefix"] for r in bgp(xtr)["routes"]}


def bgp(xtr) -> dict:
    return json.loads(xtr.lispctl("--json", "bgp"))


def frr_has(router, prefix: str) -> bool:
    return "2147483677" in router.vtysh(f"show bgp ipv4 unicast {prefix}")


def frr_session_up(router, peer: str) -> bool:
    state = json.loads(router.vtysh(f"show bgp neighbors {peer} json"))
    return state.get(peer, {}).get("bgpState") == "Established"


def test_reloads_announce_withdraw_and_change_alt_neighbours(alt):
    x1, a1, a2 = alt.xtrs["x1"], alt.alts["a1"], alt.alts["a2"]
    base = yaml.safe_load(x1.config_path.read_text())
    added = copy.deepcopy(base)
    added["eid_prefixes"].append({"prefix": PREFIX})
    assert not frr_has(a1, PREFIX)
    line = hangup(x1, yaml.safe_dump(added, sort_keys=False), "reload of")
    assert f"+local {PREFIX}" in line, line
    wait_for(lambda: frr_has(a1, PREFIX) and frr_has(a2, PREFIX), 30,
             "the ALT to learn the added prefix")
    line = hangup(x1, yaml.safe_dump(base, sort_keys=False), "reload of")
    assert f"-local {PREFIX}" in line, line
    wait_for(lambda: not frr_has(a1, PREFIX), 30, "the ALT to drop the removed prefix")
    assert frr_has(a1, "153.16.36.0/24")  # the unchanged prefix stays announced
    alone = copy.deepcopy(base)
    alone["alt"]["neighbors"] = []
    line = hangup(x1, yaml.safe_dump(alone, sort_keys=False), "reload of")
    assert f"-alt neighbour {PEER}" in line, line
    wait_for(lambda: not frr_session_up(a1, X1_ALT), 30, "a1's session with x1 to close")
    view = bgp(x1)
    assert view["neighbors"] == [] and view["routes"] == []
    line = hangup(x1, yaml.safe_dump(base, sort_keys=False), "reload of")
    assert f"+alt neighbour {PEER}" in line, line
    wait_for(lambda: frr_session_up(a1, X1_ALT) and frr_has(a1, "153.16.36.0/24"), 60,
             "the session to come back with x1's prefix")
    wait_for(lambda: "0.0.0.0/0" in routes(x1), 30,
             "x1 to learn the ALT's routes again")
    assert x1.controller.poll() is None
