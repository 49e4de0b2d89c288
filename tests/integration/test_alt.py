"""LISP+ALT with real FRR, real OVS GRE tunnels and os-ken's BGP speaker (topologies/seed_alt.py)."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.integration.test_two_sites import Capture, find_problems, layers
from topologies.seed_alt import LONG_PATH, SeedAlt, xtr_spec

pytestmark = pytest.mark.integration


def bgp(xtr) -> dict:
    return json.loads(xtr.lispctl("--json", "bgp"))


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise TimeoutError(f"timed out waiting for {what}")


def has_routes(xtr, *prefixes) -> bool:
    learned = {r["prefix"] for r in bgp(xtr)["routes"]}
    return set(prefixes) <= learned


@pytest.fixture(scope="module")
def alt(tmp_path_factory):
    with SeedAlt(rundir=str(tmp_path_factory.mktemp("seed-alt"))) as t:
        t.wait_established()
        for name, other in (("x1", "153.16.38.0/24"), ("x2", "153.16.36.0/24")):
            wait_for(lambda: has_routes(t.xtrs[name], other, "0.0.0.0/0", "153.16.99.0/24"),
                     what=f"{name} to learn the ALT routes")
        yield t


def test_sessions_are_established_and_frr_sees_our_10_digit_as(alt):
    a1 = alt.alts["a1"]
    route = a1.vtysh("show bgp ipv4 unicast 153.16.36.0/24")
    assert "2147483677" in route, route
    for name in ("x1", "x2"):
        (n,) = bgp(alt.xtrs[name])["neighbors"]
        assert n["state"] == "established" and n["remote_as"] == 2147483671


def test_long_as_path_of_10_digit_asns_is_learned_without_a_session_reset(alt):
    routes = {r["prefix"]: r for r in bgp(alt.xtrs["x1"])["routes"]}
    path = routes["153.16.99.0/24"]["as_path"]
    assert path == [2147483671, *LONG_PATH] and len(path) >= 20
    assert all(asn >= 10**9 for asn in path)
    info = json.loads(alt.alts["a1"].vtysh("show bgp neighbors 100.64.254.169 json"))
    peer = info["100.64.254.169"]
    assert peer["bgpState"] == "Established"
    assert peer["connectionsEstablished"] == 1 and peer["connectionsDropped"] == 0


def test_cold_cache_ping_goes_through_the_alt_and_replies_through_the_underlay(alt, tmp_path):
    cap = Capture(alt, tmp_path / "alt.pcap", bpf="udp port 4341 or udp port 4342 or ip proto 47")
    out = alt.host("h1").cmd("ping -c 3 -i 0.3 -W 3 153.16.38.10")
    packets = cap.stop()
    assert " 0% packet loss" in out, out
    assert not find_problems(packets)
    lisp = layers(packets, "lisp")
    over_gre = [l for l in lisp if "gre" in l and l["lisp"]["lisp.type"] == "1"]
    replies = [l for l in lisp if "gre" not in l and l["lisp"]["lisp.type"] == "2"]
    assert over_gre, "no Map-Request seen inside GRE"
    assert replies, "no Map-Reply seen on the underlay"
    assert {r["lisp"]["lisp.nonce"] for r in replies} <= \
        {r["lisp"]["lisp.nonce"] for r in over_gre}
    # the Map-Request inside the tunnel is addressed to the EID itself
    assert all(re.search(r'"ip.dst": "153\.16\.3[68]\.10"', json.dumps(l["ip"]))
               for l in over_gre)
    x1 = json.loads(alt.xtrs["x1"].lispctl("--json", "mapstat"))["counters"]
    assert x1["requests_sent"] >= 1 and x1["alt_no_route"] == 0


def test_restarting_the_alt_router_withdraws_and_restores_routes(alt):
    a1, x1 = alt.alts["a1"], alt.xtrs["x1"]
    a1.restart_bgpd()
    wait_for(lambda: not has_routes(x1, "153.16.38.0/24"), timeout=30,
             what="x1 to drop the ALT routes")
    wait_for(lambda: has_routes(x1, "153.16.38.0/24", "0.0.0.0/0"), timeout=90,
             what="x1 to learn the ALT routes again")
    wait_for(lambda: has_routes(alt.xtrs["x2"], "153.16.36.0/24"), timeout=60,
             what="x2 to learn the ALT routes again")
    for xtr in alt.xtrs.values():  # cold caches: lookups must work through the ALT again
        for entry in json.loads(xtr.lispctl("--json", "map", "list"))["cache"]:
            xtr.lispctl("map", "del", f"'{entry['prefix']}'")
    out = alt.host("h1").cmd("ping -c 3 -i 0.3 -W 3 153.16.38.10")
    assert " 0% packet loss" in out, out


def test_a_peer_over_max_prefix_is_cut_off_and_others_stay_up(tmp_path):
    # a1 sends x2 three routes (the default, 153.16.36.0/24, 153.16.99.0/24): x2 allows two
    with SeedAlt(rundir=str(tmp_path), tag="m",
                 xtrs=[xtr_spec(1, "m"), xtr_spec(2, "m", max_prefix=2)]) as t:
        wait_for(lambda: bgp(t.xtrs["x2"])["neighbors"][0]["state"] == "max-prefix-exceeded",
                 what="x2 to cut off its ALT neighbour")
        assert bgp(t.xtrs["x2"])["routes"] == []
        wait_for(lambda: has_routes(t.xtrs["x1"], "0.0.0.0/0"), what="x1's session")
        time.sleep(3)
        assert bgp(t.xtrs["x1"])["neighbors"][0]["state"] == "established"
        summary = t.alts["a1"].vtysh("show bgp ipv4 unicast summary json")
        peers = json.loads(summary)["peers"]
        assert peers["100.64.254.169"]["state"] == "Established"
        assert peers["100.64.254.171"]["state"] != "Established"
