"""The xTR's control plane over an IPv6 underlay, on real Open vSwitch: two lisp_app sites with
IPv6 RLOCs register with a switchless lisp_app Map-Server/Map-Resolver at IPv6 addresses (on the
underlay router), and resolve each other through it with cold caches. Every control message
crosses the underlay over IPv6: Map-Register, Map-Notify, the ITR's ECM to the Map-Resolver, the
Map-Server's ECM to the registered ETR, and the ETR's Map-Reply to the ITR's IPv6 RLOC (listed
first in a request sent over IPv6)."""

from __future__ import annotations

import json
import sys

import pytest

from tests.integration.lab import api, ping, wait_for, wait_ipv6_next_hops
from tests.integration.wire import Capture, find_problems, layers
from topologies.lispnode import REPO, ProcessNode
from topologies.two_sites import TwoSites, site_spec

pytestmark = pytest.mark.integration

KEY, MS_API = "s3cret", 8081
MS = {1: "2001:db8:ff01::254", 2: "2001:db8:ff02::254"}  # the router's address on each side


class Ipv6ControlSites(TwoSites):
    """two_sites with IPv6 RLOCs, and a switchless Map-Server/Map-Resolver in the router,
    started before the xTRs."""

    def start_xtrs(self, specs) -> None:
        conf = self.rundir / "ms.yaml"
        conf.write_text(f"""role: ms-mr
map_resolver: true
map_server:
  sites:
    - {{name: x1, key: {KEY}, eid_prefixes: ["[1000]10.1.0.0/24", "[1000]2001:db8:1::/48",
                                            "[2000]10.1.0.0/24"]}}
    - {{name: x2, key: {KEY}, eid_prefixes: ["[1000]10.2.0.0/24", "[1000]2001:db8:2::/48",
                                            "[2000]10.2.0.0/24"]}}
server: {{addresses: ["::"]}}
api: {{port: {MS_API}}}
""")
        self.ms = ProcessNode(self.host("r"), "ms", [
            sys.executable, str(REPO / "run_controller.py"), "--config", str(conf)],
            self.rundir / "ms.log")
        self.nodes.append(self.ms)
        # from the first message on: the registrations go out as the controllers start
        self.capture = Capture(self, self.rundir / "v6control.pcap")
        super().start_xtrs(specs)

    def stop(self) -> None:
        capture = getattr(self, "capture", None)
        if capture is not None and capture.proc.poll() is None:  # the test failed before
            capture.proc.kill()
            capture.proc.wait(5)
        super().stop()

    def ms_api(self, path: str) -> dict:
        out = self.host("r").cmd(
            f"{sys.executable} -c 'import sys, urllib.request; sys.stdout.write(urllib.request."
            f"urlopen(\"http://127.0.0.1:{MS_API}{path}\", timeout=5).read().decode())'")
        return json.loads(out)


TAG = "v6"  # interface names of their own


def spec(n: int):
    s = site_spec(n, ipv6_rloc=True, tag=TAG)
    s.map_request_targets = []
    s.map_resolvers = [MS[n]]
    s.extra = {"map_servers": [{"address": MS[n], "key": KEY, "key_id": 1}]}
    return s



def test_sites_register_and_resolve_through_an_ipv6_map_server_map_resolver(tmp_path):
    with Ipv6ControlSites(spec(1), spec(2), rundir=str(tmp_path), tag=TAG) as t:
        x1, x2 = t.xtrs["x1"], t.xtrs["x2"]
        wait_ipv6_next_hops(t)
        # both registrations confirmed by the Map-Server's Map-Notify, over IPv6
        for x in (x1, x2):
            wait_for(lambda: api(x, "mapstat")["counters"]["registrations_confirmed"], 30,
                     f"{x.spec.name}'s registration")
        regs = wait_for(lambda: len(t.ms_api("/mapstat")["registrations"]) >= 6
                        and t.ms_api("/mapstat")["registrations"], 20, "six registrations")
        assert {r["etr"] for r in regs} == {"2001:db8:ff01::1", "2001:db8:ff02::1"}
        # cold caches: x1 asks the Map-Resolver over IPv6; nothing lost (packets are held)
        sent, received, out = ping(t.host("h1"), "10.2.0.10", count=4)
        assert received == sent, out
        sent, received, out = ping(t.host("h2"), "2001:db8:1::10", count=4)
        assert received == sent, out
        assert ping(t.host("h1"), "10.2.0.10", count=8)[1] == 8
        entry = api(x1, "map", "get", "'[1000]10.2.0.10'")
        assert "2001:db8:ff02::1" in json.dumps(entry)
        for x in (x1, x2):
            c = api(x, "mapstat")["counters"]
            assert c["requests_answered"] >= 1, c
            assert c["control_send_failed"] == c["control_malformed"] == 0, c
        stat = t.ms_api("/mapstat")
        assert stat["map_resolver"]["to_map_server"] >= 2
        assert stat["map_server"]["requests_forwarded"] >= 2
        packets = t.capture.stop()
    control = layers(packets, "lisp")
    assert not [p for pkt in packets for p in find_problems(pkt)]

    def first(layer):  # an ECM holds a second IP header and a second LISP message
        return layer[0] if isinstance(layer, list) else layer

    def over_ipv6(src, dst, kind):
        return [l for l in control if "ipv6" in l and first(l["ipv6"])["ipv6.src"] == src
                and first(l["ipv6"])["ipv6.dst"] == dst
                and first(l["lisp"]).get("lisp.type") == kind]

    x1_6, x2_6 = "2001:db8:ff01::1", "2001:db8:ff02::1"
    assert over_ipv6(x2_6, MS[2], "3"), "no Map-Register from x2 over IPv6"
    assert over_ipv6(MS[2], x2_6, "4"), "no Map-Notify to x2 over IPv6"
    assert over_ipv6(x1_6, MS[1], "8"), "no ECM from x1 to the Map-Resolver over IPv6"
    assert over_ipv6(MS[2], x2_6, "8"), "no ECM from the Map-Server to x2 over IPv6"
    assert over_ipv6(x2_6, x1_6, "2"), "no Map-Reply from x2 to x1's IPv6 RLOC"
