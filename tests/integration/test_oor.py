"""Interop with Open Overlay Router 1.3 (an independent C implementation), built from
../shared/peers: lisp_app as a switchless Map-Server/Map-Resolver that OOR sites register with and
resolve each other through, with cold caches, pinging both ways."""

from __future__ import annotations

import time

import pytest

from topologies.oor import ROOT, OorNetwork, oor_binary, oor_config
from tests.integration.wire import find_problems, layers

pytestmark = pytest.mark.integration
API = 18480


@pytest.fixture(scope="module")
def oor():
    return oor_binary()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("iid", [0, 1000])
def test_oor_sites_register_with_and_resolve_through_a_switchless_lisp_app_ms_mr(oor, tmp_path,
                                                                                  iid):
    net = OorNetwork("oq", ["ms", "a", "b"], tmp_path)
    space = f"[{iid}]" if iid else ""
    try:
        ms = net.address("ms")
        (tmp_path / "ms.yaml").write_text(f"""
role: ms-mr
map_resolver: true
map_server:
  sites:
    - {{name: site-a, key: s3cret, eid_prefixes: ["{space}192.168.1.0/24"]}}
    - {{name: site-b, key: s3cret, eid_prefixes: ["{space}192.168.2.0/24"]}}
server: {{addresses: [{ms}]}}
api: {{port: {API}}}
""")
        capture_file = tmp_path / "lisp.pcap"
        capture = net.capture(capture_file)
        net.start("ms", [str(ROOT / ".venv/bin/python"), "run_controller.py", "--config",
                         str(tmp_path / "ms.yaml")], "ms.log")
        wait_for(lambda: net.api("ms", API, "/mapstat", check=False), 20, "the Map-Server's API")
        net.start_oor("a", oor_config("192.168.1.1/32", ms, "s3cret", iid=iid))
        net.start_oor("b", oor_config("192.168.2.1/32", ms, "s3cret", iid=iid))
        def registered():
            stat = net.api("ms", API, "/mapstat")
            return stat if len(stat["registrations"]) == 2 else None

        stat = wait_for(registered, 30, "both registrations")
        assert {r["prefix"]: r["etr"] for r in stat["registrations"]} == {
            f"{space}192.168.1.1/32": net.address("a"), f"{space}192.168.2.1/32": net.address("b")}
        for name in ("a", "b"):  # OOR verified our Map-Notify
            wait_for(lambda: "confirms correct registration" in
                     (tmp_path / f"{name}.log").read_text(), 15, f"{name}'s Map-Notify")
        # cold caches: the first pings may go while OOR resolves; none is lost afterwards
        sent, received = net.ping("a", "192.168.1.1", "192.168.2.1", 6)
        assert received >= 1, (sent, received)
        assert net.ping("a", "192.168.1.1", "192.168.2.1", 8) == (8, 8)
        assert net.ping("b", "192.168.2.1", "192.168.1.1", 8) == (8, 8)
        stat = net.api("ms", API, "/mapstat")
        assert stat["map_resolver"]["to_map_server"] >= 2
        assert stat["map_server"]["requests_forwarded"] >= 2
        assert stat["map_server"]["registers_bad_auth"] == 0
        assert stat["counters"]["control_malformed"] == 0
        packets = net.stop_capture(capture, capture_file)
        control = layers(packets, "lisp")
        assert len(control) >= 6 and layers(packets, "lisp-data")
        problems = [p for pkt in packets for p in find_problems(pkt)]
        assert problems == []
    finally:
        net.close()


@pytest.mark.parametrize("ms", ["oor", "lisp_app"])
def test_a_lisp_app_site_and_an_oor_site_register_and_resolve_each_other(oor, ms):
    """Control plane between a lisp_app xTR (on OVS) and an OOR site, through OOR's Map-Server
    or lisp_app's switchless one: both registrations confirmed by an authenticated Map-Notify,
    and each side resolves the other's EID to the other's RLOC with a cold cache. (The data
    plane from OOR to lisp_app needs the classic RFC 9300 header accepted: docs/interop.rst.)"""
    import json

    from topologies.oor_site import OOR_EID, OOR_RLOC, OorSite
    with OorSite(ms, tag="oq") as topo:
        x1 = topo.xtrs["x1"]

        def counters():
            return json.loads(x1.lispctl("--json", "mapstat"))["counters"]

        wait_for(lambda: counters()["registrations_confirmed"] >= 1, 20,
                 "x1's registration to be confirmed")
        wait_for(lambda: "confirms correct registration" in topo.oor.log_text(), 20,
                 "OOR's registration to be confirmed")
        topo.host("h1").cmd(f"ping -c 2 -i 0.5 -W 1 {OOR_EID}")  # a miss at x1, then at o2
        wait_for(lambda: counters()["requests_answered"] >= 1, 10, "x1's Map-Reply")
        cache = json.loads(x1.lispctl("--json", "map", "list"))["cache"]
        (entry,) = [e for e in cache if e["prefix"] == f"[1000]{OOR_EID}/32"]
        assert [l["rloc"] for l in entry["locators"]] == [OOR_RLOC]
        c = counters()
        assert c["requests_received"] >= 1 and c["replies_sent"] >= 1  # x1 answered OOR
        wait_for(lambda: "IP: 192.0.2.1 -> 198.51.100.1" in topo.oor.log_text()
                 and "Received \x1b[1mMap-Reply" in topo.oor.log_text(), 10,
                 "OOR to accept x1's Map-Reply")
        assert c["control_malformed"] == 0 and c["replies_rejected"] == 0
