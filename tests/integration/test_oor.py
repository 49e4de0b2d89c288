"""Interop with Open Overlay Router 1.3 (an independent C implementation), built from
../shared/peers: lisp_app as a switchless Map-Server/Map-Resolver that OOR sites register with and
resolve each other through, with cold caches, pinging both ways."""

from __future__ import annotations


import pytest

from topologies.oor import ROOT, OorNetwork, oor_binary, oor_config
from tests.integration.lab import wait_for
from tests.integration.wire import find_problems, layers

pytestmark = pytest.mark.integration
API = 18480


@pytest.fixture(scope="module")
def oor():
    return oor_binary()



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


@pytest.mark.parametrize("ms,first,iid", [("oor", "lisp_app", 1000), ("oor", "oor", 0),
                                           ("lisp_app", "lisp_app", 0),
                                           ("lisp_app", "oor", 1000)])
def test_a_lisp_app_site_and_an_oor_site_resolve_each_other_and_ping_both_ways(oor, ms, first,
                                                                               iid, tmp_path):
    """A lisp_app xTR (on OVS) and an OOR site, through OOR's Map-Server or lisp_app's
    switchless one, cold caches, either side pinging first: both registrations confirmed by an
    authenticated Map-Notify; each side resolves the other's EID to the
    other's RLOC and accepts the other's Map-Reply (instance-id 0 or 1000); once resolved, no ping is lost either way
    (OOR sends classic RFC 9300 headers, lisp_app's ETR accepts them; lisp_app sends LISP-GPE,
    OOR accepts it); OOR's RLOC-probes of x1 are answered and accepted, and x1's of OOR too;
    tshark finds nothing malformed in the LISP packets on the wire."""
    import json

    from tests.integration.wire import Capture
    from topologies.oor_site import OOR_EID, OOR_RLOC, OorSite, wait_registered
    with OorSite(ms, tag="oq", iid=iid, probe_interval=2) as topo:
        x1, h1, o2 = topo.xtrs["x1"], topo.host("h1"), topo.host("o2")

        def counters():
            return json.loads(x1.lispctl("--json", "mapstat"))["counters"]

        def ping(host, command):
            out = host.cmd(command)
            for line in out.splitlines():
                if "packets transmitted" in line:
                    return int(line.split()[0]), int(line.split()[3])
            raise AssertionError(out)

        from_h1 = f"ping -c {{}} -i 0.3 -W 2 {OOR_EID}"
        from_o2 = f"ping -c {{}} -i 0.3 -W 2 -I {OOR_EID} 10.1.0.10"
        wait_registered(topo)
        capture = Capture(topo, tmp_path / "lisp.pcap")
        starter, other = (h1, from_h1), (o2, from_o2)
        if first == "oor":
            starter, other = other, starter
        sent, received = ping(starter[0], starter[1].format(6))  # cold: resolution under way
        assert received >= 1, (sent, received)
        assert ping(starter[0], starter[1].format(8)) == (8, 8)
        assert ping(other[0], other[1].format(8)) == (8, 8)
        cache = json.loads(x1.lispctl("--json", "map", "list"))["cache"]
        (entry,) = [e for e in cache if e["eid"] == f"{OOR_EID}/32"]
        assert entry["instance_id"] == iid
        assert [l["rloc"] for l in entry["locators"]] == [OOR_RLOC]
        c = counters()
        assert c["requests_answered"] >= 1 and c["replies_sent"] >= 1  # both ways resolved
        assert "IP: 192.0.2.1 -> 198.51.100.1" in topo.oor.log_text()  # x1's Map-Reply
        assert c["control_malformed"] == 0 and c["replies_rejected"] == 0
        # OOR's classic headers went through the XDP rewrite (counted at the next poll)
        wait_for(lambda: counters()["classic_received"] >= 16, 15, "the classic counters")
        assert counters()["classic_dropped"] == 0
        # OOR RLOC-probes x1's locator (every 2 s here); x1 answers, OOR accepts the answer
        wait_for(lambda: "Successfully probed RLOC 192.0.2.1" in topo.oor.log_text(), 15,
                 "OOR's accepted RLOC-probe of x1")
        assert counters()["probes_answered"] >= 1
        # and x1 RLOC-probes OOR's locator (probing on by default): OOR answers
        def oor_locator():
            found = [l for l in json.loads(x1.lispctl("--json", "locators"))["locators"]
                     if l["rloc"] == OOR_RLOC]
            return found and found[0]["state"] == "up" and found[0]
        assert wait_for(oor_locator, 10, "OOR's answer to x1's RLOC-probe")["rtt_ms"] > 0
        packets = capture.stop()
        assert layers(packets, "lisp-data") and layers(packets, "lisp")
        assert [p for pkt in packets for p in find_problems(pkt)] == []
