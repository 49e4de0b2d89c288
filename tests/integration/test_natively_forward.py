"""Natively-forward on real Open vSwitch: a host behind x1 reaches a non-LISP host on the
underlay. x1 asks a switchless lisp_app Map-Resolver (on the underlay router) for the non-LISP
host's address; the answer is a negative natively-forward mapping; x1's flow sends the traffic out
unencapsulated through its native patch port and its namespace's routing table, and the answer
comes back the same way (the router routes x1's EID prefix to x1's RLOC)."""

from __future__ import annotations

import sys

import pytest

from tests.integration.lab import api, ping
from tests.integration.wire import Capture, layers
from topologies.lispnode import REPO, ProcessNode, quiet_interface
from topologies.two_sites import TwoSites, site_spec

pytestmark = pytest.mark.integration

OUTSIDE = "203.0.113.10"


class OutsideHost(TwoSites):
    """two_sites plus a non-LISP host n (203.0.113.10) on the router, and a switchless
    Map-Server/Map-Resolver on the router that x1 asks."""

    def start_network(self) -> None:
        self.net.addHost("n", ip=None)
        g = self.tag
        self.net.addLink("n", "r", intfName1=f"{g}n-eth0", intfName2=f"{g}r-eth3")
        super().start_network()

    def start_xtrs(self, specs) -> None:
        g, r, n = self.tag, self.host("r"), self.host("n")
        quiet_interface(r, f"{g}r-eth3")
        r.cmd(f"ip addr add 203.0.113.254/24 dev {g}r-eth3")
        quiet_interface(n, f"{g}n-eth0")
        n.cmd(f"ip addr add {OUTSIDE}/24 dev {g}n-eth0; ip route add default via 203.0.113.254")
        # the underlay routes the sites' EID prefixes to their xTRs (native traffic's way back)
        r.cmd("ip route add 10.1.0.0/24 via 192.0.2.1; ip route add 10.2.0.0/24 via "
              "198.51.100.1")
        conf = self.rundir / "ms.yaml"
        conf.write_text("""role: ms-mr
map_resolver: true
map_server:
  sites:
    - {name: x1, key: k, eid_prefixes: ["[1000]10.1.0.0/24"]}
    - {name: x2, key: k, eid_prefixes: ["[1000]10.2.0.0/24"]}
server: {addresses: [192.0.2.254]}
api: {port: 8081}
""")
        self.nodes.append(ProcessNode(r, "ms", [sys.executable, str(REPO / "run_controller.py"),
                                                "--config", str(conf)], self.rundir / "ms.log"))
        super().start_xtrs(specs)


def test_a_host_behind_x1_reaches_a_non_lisp_host_natively(tmp_path):
    x1 = site_spec(1, tag="n")
    x1.native, x1.map_request_targets, x1.map_resolvers = True, [], ["192.0.2.254"]
    with OutsideHost(x1, site_spec(2, tag="n"), rundir=str(tmp_path), tag="n") as t:
        cap = Capture(t, tmp_path / "native.pcap", bpf="icmp or udp port 4341 or udp port 4342")
        sent, received, out = ping(t.host("h1"), OUTSIDE, count=5)
        packets = cap.stop()
        assert received >= 4, out  # the first echo may go while the mapping is resolved
        assert ping(t.host("h1"), OUTSIDE, count=5)[1] == 5
        entry = api(t.xtrs["x1"], "map", "get", f"'[1000]{OUTSIDE}'")["mapping"]
        assert entry["negative"] and entry["action"] == "natively-forward"
        # unencapsulated on the underlay: echo requests from h1's own address, no LISP data
        echoes = [l for l in layers(packets, "icmp") if "lisp-data" not in l
                  and l["ip"]["ip.src"] == "10.1.0.10" and l["ip"]["ip.dst"] == OUTSIDE]
        assert len(echoes) >= 4
        assert not [l for l in layers(packets, "lisp-data")
                    if OUTSIDE in str(l.get("ip"))]
        flows = t.xtrs["x1"].ofctl("dump-flows br-lisp")
        native = [l for l in flows.splitlines() if "output:\"native-l\"" in l
                  or "output:native-l" in l]
        assert native and "n_packets=0" not in native[0], flows
