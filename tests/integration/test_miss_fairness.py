"""Fair punting on real Open vSwitch (issue 15).

Misses: while one source behind x1 floods uncached destinations as fast as the lab lets it,
another source on the same site port and a host on the other site port each make their first
contact with a mapped destination behind x2, and both resolve within a second; the flooder's own
source meter is what dropped its flood.

Control: while the underlay router floods x1's RLOC with garbage on UDP 4342, x2's genuine
Map-Request for h1 (a ping from h2 with a cold cache) is answered and the ping's first reply
comes within a second; the flooder's source meter on x1's underlay bridge dropped the garbage.

The floods are tests/integration/udpflood.c (built here with gcc), bounded in time, run in the
lab's namespaces. Which source bucket an address lands in is OVS's hash: the tests ask OVS
(ofproto/trace) and pick addresses in other buckets than the flooder's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lisp_app.dataplane.pipeline import METER_CONTROL, METER_MISS, METER_MISS_PORT
from tests.integration.lab import cold
from topologies.two_sites import TwoSites, site_spec

pytestmark = pytest.mark.integration

FLOOD_SECONDS = 8
FLOOD_DESTINATIONS = 65536  # 10.77.0.0/16: no mapping, never cached in the flood's time


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    with TwoSites(site_spec(1), site_spec(2),
                  rundir=str(tmp_path_factory.mktemp("miss-fairness"))) as t:
        yield t


@pytest.fixture(scope="module")
def udpflood(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build tests/integration/udpflood.c")
    out = tmp_path_factory.mktemp("udpflood") / "udpflood"
    subprocess.run(["gcc", "-O2", "-o", str(out),
                    str(Path(__file__).with_name("udpflood.c"))],
                   check=True)
    return out


def source_meter(xtr, port: str, source: str) -> int:
    """The miss meter OVS puts ``source``'s misses from ``port`` through (ofproto/trace)."""
    trace = xtr.appctl(f"ofproto/trace br-lisp in_port={port},ip,nw_src={source},"
                       "nw_dst=10.77.0.1,nw_ttl=64")
    m = re.search(r"^\s*5\. .*\n\s*meter:(\d+)", trace, re.M)
    assert m, trace
    return int(m.group(1))


def control_meter(xtr, source: str) -> int:
    """The control meter OVS puts UDP 4342 from ``source`` through on the underlay bridge."""
    rloc = xtr.spec.rlocs[0]
    trace = xtr.appctl(f"ofproto/trace br-u in_port={xtr.spec.uplink},udp,nw_src={source},"
                       f"nw_dst={rloc},udp_dst=4342,nw_ttl=64")
    m = re.search(r"^\s*1\. .*\n\s*meter:(\d+)", trace, re.M)
    assert m, trace
    return int(m.group(1))


def meter_stats(xtr, bridge: str = "br-lisp") -> dict[int, tuple[int, int]]:
    """meter id -> (packets in, packets the band dropped)."""
    text = xtr.ofctl(f"meter-stats unix:{xtr.dir}/{bridge}.mgmt")
    stats = {}
    for m in re.finditer(r"meter:(\d+) .*?packet_in_count:(\d+).*?\n\s*0: packet_count:(\d+)",
                         text):
        stats[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
    return stats


def first_reply_ms(host, dst: str, source: str | None = None) -> float | None:
    """The round trip of a single ping's reply (None: no reply within 3 s)."""
    out = host.cmd(f"ping -c 1 -W 3 {'-I ' + source if source else ''} {dst}")
    m = re.search(r"time=([\d.]+) ms", out)
    return float(m.group(1)) if m else None


def test_a_flooding_host_leaves_other_hosts_first_contacts_under_a_second(topo, udpflood):
    x1, h1, hb1 = topo.xtrs["x1"], topo.host("h1"), topo.host("hb1")
    site = f"{topo.tag}x1-site"
    flooder = "10.1.0.10"
    flood_meter = source_meter(x1, site, flooder)
    other = next(f"10.1.0.{n}" for n in range(11, 60)
                 if source_meter(x1, site, f"10.1.0.{n}") != flood_meter)
    h1.cmd(f"ip addr add {other}/24 dev {topo.intf('h1')}")
    # the hosts know their gateway's MAC before the clock starts (the switch answers the ARP;
    # the gateway itself does not answer pings)
    for host in (h1, hb1):
        host.cmd("ping -c 1 -W 1 10.1.0.1")
        assert "lladdr" in host.cmd("ip neigh show 10.1.0.1"), host.cmd("ip neigh")
    cold(topo)
    before = meter_stats(x1)
    flood = h1.popen([str(udpflood), flooder, "10.77.0.0", str(FLOOD_DESTINATIONS),
                      str(FLOOD_SECONDS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True)
    try:
        time.sleep(2)  # the flood is in full swing
        same_port = first_reply_ms(h1, "10.2.0.10", other)
        other_port = first_reply_ms(hb1, "10.2.0.10")
        during = meter_stats(x1)
    finally:
        out, err = flood.communicate(timeout=FLOOD_SECONDS + 30)
    assert flood.returncode == 0, err
    sent = int(re.search(r"sent=(\d+)", out).group(1))
    offered_in, offered_drop = (during[flood_meter][i] - before.get(flood_meter, (0, 0))[i]
                                for i in (0, 1))
    report = (f"flood: {sent} sent in {FLOOD_SECONDS} s; at its source meter {flood_meter} "
              f"by the first contacts: {offered_in} in, {offered_drop} dropped; first contacts: "
              f"{other} (same port) {same_port} ms, hb1 (other port) {other_port} ms; "
              f"aggregate meter {METER_MISS}: {during[METER_MISS]}, ports: "
              f"{during[METER_MISS_PORT]}, {during[METER_MISS_PORT + 1]}")
    print(report)
    # the flood was far beyond what the site's aggregate meter passes (100/s): one shared meter
    # would have dropped the first contacts nearly surely
    assert offered_in > 20 * 100 * 2, report
    assert offered_drop > 0.9 * offered_in, report
    assert same_port is not None and same_port < 1000, report
    assert other_port is not None and other_port < 1000, report


def test_a_garbage_flood_at_the_rloc_leaves_a_genuine_map_request_answered(topo, udpflood):
    x1, r, h2 = topo.xtrs["x1"], topo.host("r"), topo.host("h2")
    genuine = "198.51.100.1"  # x2's RLOC: its Map-Requests come from there
    genuine_meter = control_meter(x1, genuine)
    flooder = next(f"192.0.2.{n}" for n in range(100, 200)
                   if control_meter(x1, f"192.0.2.{n}") != genuine_meter)
    flood_meter = control_meter(x1, flooder)
    r.cmd(f"ip addr add {flooder}/24 dev {topo.intf('r1')}")
    for host in (h2,):
        host.cmd("ping -c 1 -W 1 10.2.0.1")
    cold(topo)
    before = meter_stats(x1, "br-u")
    flood = r.popen([str(udpflood), flooder, x1.spec.rlocs[0], "1", str(FLOOD_SECONDS),
                     "4342"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        # x2 asks x1 for h1's mapping (and x1 then asks x2 for h2's, to send the reply)
        first = first_reply_ms(h2, "10.1.0.10")
        during = meter_stats(x1, "br-u")
    finally:
        out, err = flood.communicate(timeout=FLOOD_SECONDS + 30)
        r.cmd(f"ip addr del {flooder}/24 dev {topo.intf('r1')}")
    assert flood.returncode == 0, err
    sent = int(re.search(r"sent=(\d+)", out).group(1))
    offered_in, offered_drop = (during[flood_meter][i] - before.get(flood_meter, (0, 0))[i]
                                for i in (0, 1))
    report = (f"garbage: {sent} sent in {FLOOD_SECONDS} s; at its source meter {flood_meter} by "
              f"the first reply: {offered_in} in, {offered_drop} dropped; genuine source meter "
              f"{genuine_meter}: {during.get(genuine_meter)}; aggregate meter {METER_CONTROL}: "
              f"{during[METER_CONTROL]}; h2's first reply from h1: {first} ms")
    print(report)
    # far beyond the aggregate control meter's 1,000/s: one shared meter would have dropped x2's
    # Map-Request nearly surely
    assert offered_in > 10 * 1000 * 2, report
    assert offered_drop > 0.9 * offered_in, report
    assert first is not None and first < 1000, report


def test_a_restarted_controller_finds_the_punting_stages_as_it_wants_them(topo):
    """The multipath flows and the stage tables, as OVS reports them back, equal what the
    controller compiles: a restart re-adds none of them (a re-added flow starts a new
    duration)."""
    x1 = topo.xtrs["x1"]
    cold(topo)
    time.sleep(2)
    x1.stop_controller()
    x1.start_controller()
    x1.wait_programmed()
    fresh = []
    for bridge, stages in (("br-lisp", (5, 6, 7)), ("br-u", (1, 2))):
        for line in x1.ofctl(f"dump-flows unix:{x1.dir}/{bridge}.mgmt").splitlines():
            m = re.search(r"duration=([\d.]+)s, table=(\d+), .*priority=(\d+)", line)
            if not m or "cookie=0x4c495350" not in line:
                continue
            ours = int(m.group(2)) in stages or "multipath(" in line
            if ours and float(m.group(1)) < 1.5:
                fresh.append(line)
    assert fresh == [], fresh
