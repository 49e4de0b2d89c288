"""LISP+ALT with real FRR, real OVS GRE tunnels and os-ken's BGP speaker (topologies/seed_alt.py)."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

from tests.integration.wire import Capture, find_problems, layers
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
        for name, other in (("x1", "153.16.38.0/24"), ("x2", "153.16.36.0/24"),
                            ("ms", "153.16.36.0/24")):
            wait_for(lambda: has_routes(t.xtrs[name], other, "0.0.0.0/0", "153.16.99.0/24",
                                        "153.16.40.0/24" if name != "ms" else other),
                     what=f"{name} to learn the ALT routes")
        yield t


def test_sessions_are_established_and_frr_sees_our_10_digit_as(alt):
    a1 = alt.alts["a1"]
    route = a1.vtysh("show bgp ipv4 unicast 153.16.36.0/24")
    assert "2147483677" in route, route
    for name, router_as in (("x1", 2147483671), ("x2", 2147483672)):
        view = bgp(alt.xtrs[name])
        (n,) = view["neighbors"]
        assert n["state"] == "established" and n["remote_as"] == router_as
        # the FSM state, uptime and counts, like FRR's show bgp summary
        assert n["fsm"] == "Established" and n["up_down"] > 0
        assert n["updates_received"] >= 1 and n["messages_received"] >= n["updates_received"], n
        assert n["messages_sent"] >= 1
        assert n["prefixes_received"] == len(view["routes"]) >= 3
        text = alt.xtrs[name].lispctl("bgp").splitlines()
        (row,) = [line for line in text if line.startswith(n["address"])]
        assert row.split()[1:4] == [str(router_as), str(n["messages_received"]),
                                    str(n["messages_sent"])]
        assert row.split()[5] == str(n["prefixes_received"])
    # the two ALT routers are meshed: a2 learned site 1's prefix through a1
    assert "2147483671 2147483677" in alt.alts["a2"].vtysh("show bgp ipv4 unicast 153.16.36.0/24")


def test_long_as_path_of_10_digit_asns_is_learned_without_a_session_reset(alt):
    routes = {r["prefix"]: r for r in bgp(alt.xtrs["x1"])["routes"]}
    path = routes["153.16.99.0/24"]["as_path"]
    assert path == [2147483671, *LONG_PATH] and len(path) >= 20
    assert all(asn >= 10**9 for asn in path)
    far = {r["prefix"]: r for r in bgp(alt.xtrs["x2"])["routes"]}["153.16.99.0/24"]["as_path"]
    assert far == [2147483672, 2147483671, *LONG_PATH]
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
    underlay = [l for l in lisp if "gre" not in l]
    # RLOC-probes (P bit) and their answers also cross the underlay: told apart by the P bit
    replies = [l for l in underlay if l["lisp"]["lisp.type"] == "2"
               and l["lisp"].get("lisp.mrep.flags.probe") != "1"]
    probe_replies = [l for l in underlay if l["lisp"]["lisp.type"] == "2"
                     and l["lisp"].get("lisp.mrep.flags.probe") == "1"]
    rloc_probes = [l for l in underlay if l["lisp"]["lisp.type"] == "1" and l["lisp"].get(
        "lisp.mreq.flags_tree", {}).get("lisp.mreq.flags.probe") == "1"]
    assert {int(r["lisp"]["lisp.nonce"], 0) for r in probe_replies} <= \
        {int(r["lisp"]["lisp.nonce"], 0) for r in rloc_probes}
    assert over_gre, "no Map-Request seen inside GRE"
    assert replies, "no Map-Reply seen on the underlay"
    probes = [l for l in layers(packets, "lisp-data") if "gre" in l]
    asked = {int(r["lisp"]["lisp.nonce"], 0) for r in over_gre} | \
        {int(p["lisp-data"]["lisp-data.nonce"], 0) for p in probes}
    assert {int(r["lisp"]["lisp.nonce"], 0) for r in replies} <= asked
    # the Map-Request inside the tunnel is addressed to the EID itself
    assert all(re.search(r'"ip.dst": "153\.16\.3[68]\.10"', json.dumps(l["ip"]))
               for l in over_gre)
    x1 = mapstat(alt.xtrs["x1"])["counters"]
    assert x1["requests_sent"] >= 1 and x1["alt_no_route"] == 0
    # x2 sends the first packet of its miss (h2's echo reply) as a data probe over the ALT
    x2 = mapstat(alt.xtrs["x2"])["counters"]
    assert x2["data_probes_sent"] >= 1 and x2["requests_sent"] == 0
    assert x1["data_probes_received"] >= 1
    assert probes and all('"ip.dst": "153.16.36.10"' in json.dumps(l["ip"]) for l in probes)


def mapstat(xtr) -> dict:
    return json.loads(xtr.lispctl("--json", "mapstat"))


def test_an_itr_behind_the_map_resolver_gets_its_mapping(alt):
    before = mapstat(alt.xtrs["ms"])["map_resolver"]["forwarded"]
    out = alt.host("h3").cmd("ping -c 3 -i 0.3 -W 3 153.16.36.10")
    assert " 0% packet loss" in out, out
    assert mapstat(alt.xtrs["ms"])["map_resolver"]["forwarded"] > before
    cache = json.loads(alt.xtrs["x3"].lispctl("--json", "map", "list"))["cache"]
    assert any(e["prefix"] == "153.16.36.0/24" for e in cache)


def test_a_data_probe_towards_a_registered_site_is_relayed_by_the_map_server(alt):
    """h2's first echo reply leaves x2 as a data probe towards h3, whose last hop on the ALT is
    the Map-Server: it cannot deliver the packet, but asks x3 on x2's behalf at once, so only that
    packet is lost and no Map-Request retry is needed."""
    out = alt.host("h3").cmd("ping -c 3 -i 0.3 -W 3 153.16.38.10")
    m = re.search(r"(\d+) received", out)
    assert m and int(m.group(1)) >= 2, out
    assert mapstat(alt.xtrs["ms"])["counters"]["data_probes_relayed"] >= 1
    x2 = mapstat(alt.xtrs["x2"])["counters"]
    assert x2["requests_retransmitted"] == 0


def test_the_map_server_announces_registrations_and_forwards_requests_to_the_etr(alt):
    ms = mapstat(alt.xtrs["ms"])
    assert [r["prefix"] for r in ms["registrations"]] == ["153.16.40.0/24"]
    assert ms["registrations"][0]["etr"] == "198.19.0.1"
    assert "2147483673" in alt.alts["a1"].vtysh("show bgp ipv4 unicast 153.16.40.0/24")
    assert mapstat(alt.xtrs["x3"])["counters"]["registrations_confirmed"] >= 1
    before = ms["map_server"]["requests_forwarded"]
    x1 = alt.xtrs["x1"]
    if any(e["prefix"] == "153.16.40.0/24" for e in
           json.loads(x1.lispctl("--json", "map", "list"))["cache"]):
        x1.lispctl("map", "del", "153.16.40.0/24")
    out = alt.host("h1").cmd("ping -c 3 -i 0.3 -W 3 153.16.40.10")
    assert " 0% packet loss" in out, out
    assert mapstat(alt.xtrs["ms"])["map_server"]["requests_forwarded"] > before


def test_a_map_register_with_the_wrong_key_is_ignored(alt):
    before = mapstat(alt.xtrs["ms"])["map_server"]["registers_bad_auth"]
    script = (
        "import socket, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parents[2])!r})\n"
        "from ipaddress import ip_address\n"
        "from lisp_app.protocol import MapRegister, MappingRecord, Locator, EidPrefix, sign\n"
        "rec = MappingRecord.for_prefix(EidPrefix.parse('153.16.40.0/24'),"
        " locators=(Locator(ip_address('198.19.0.254')),))\n"
        "msg = sign(MapRegister(1, (rec,), want_map_notify=True), 'wrong-key', 1)\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.bind(('198.19.0.254', 4342)); s.sendto(msg.encode(), ('198.18.0.20', 4342))\n")
    alt.host("r").cmd(f"{sys.executable} - <<'EOF'\n{script}EOF")
    wait_for(lambda: mapstat(alt.xtrs["ms"])["map_server"]["registers_bad_auth"] > before,
             timeout=10, what="the Map-Server to count the bad registration")
    regs = mapstat(alt.xtrs["ms"])["registrations"]
    assert [r["etr"] for r in regs] == ["198.19.0.1"]


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
            xtr.lispctl("map", "del", f"'[{entry['instance_id']}]{entry['eid']}'")
    out = alt.host("h1").cmd("ping -c 3 -i 0.3 -W 3 153.16.38.10")
    assert " 0% packet loss" in out, out


def test_a_peer_over_max_prefix_is_cut_off_and_others_stay_up(tmp_path):
    # a2 sends x2 three routes (the default, 153.16.36.0/24, 153.16.99.0/24): x2 allows two
    with SeedAlt(rundir=str(tmp_path), tag="m",
                 xtrs=[xtr_spec(1, "m"), xtr_spec(2, "m", max_prefix=2)]) as t:
        x2 = t.xtrs["x2"]
        wait_for(lambda: bgp(x2)["neighbors"][0]["state"] == "max-prefix-exceeded",
                 what="x2 to cut off its ALT neighbour")
        assert bgp(x2)["routes"] == []
        (n,) = bgp(x2)["neighbors"]
        assert (n["fsm"], n["cut_offs"]) == ("Idle", 1)
        assert "Idle (max-prefix)" in x2.lispctl("bgp")
        wait_for(lambda: has_routes(t.xtrs["x1"], "0.0.0.0/0"), what="x1's session")
        time.sleep(3)
        assert bgp(t.xtrs["x1"])["neighbors"][0]["state"] == "established"
        a1 = json.loads(t.alts["a1"].vtysh("show bgp ipv4 unicast summary json"))["peers"]
        a2 = json.loads(t.alts["a2"].vtysh("show bgp ipv4 unicast summary json"))["peers"]
        assert a1["100.64.254.169"]["state"] == "Established"
        assert a2["100.64.254.171"]["state"] != "Established"
        # the operator clears it: the session comes back, the routes come again and (still
        # over the limit) it is cut off a second time; a2 saw a second session
        out = x2.lispctl("bgp", "clear", n["address"])
        assert out.strip() == f"cleared {n['address']} (it was max-prefix-exceeded)", out
        wait_for(lambda: bgp(x2)["neighbors"][0]["cut_offs"] == 2, what="x2's second cut-off")
        peer = json.loads(t.alts["a2"].vtysh("show bgp neighbors 100.64.254.171 json"))
        assert peer["100.64.254.171"]["connectionsEstablished"] == 2
