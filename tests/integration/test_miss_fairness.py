"""Fair punting on real Open vSwitch (issue 15).

Misses: while one source behind x1 floods uncached destinations as fast as the lab lets it,
another source on the same site port and a host on the other site port each make their first
contact with a mapped destination behind x2, and both resolve within a second; the flooder's own
source meter is what dropped its flood.

Control: while the underlay router floods x1's RLOC with garbage on UDP 4342, x2's genuine
Map-Request for h1 (a ping from h2 with a cold cache) is answered and the ping's first reply
comes within a second; the flooder's source meter on x1's underlay bridge dropped the garbage.

The floods are bench/udpflood.c (built here with gcc), bounded in time, run in the
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
from tests.integration.lab import api, cold
from topologies.two_sites import TwoSites, site_spec

pytestmark = pytest.mark.integration

FLOOD_SECONDS = 8
FLOOD_DESTINATIONS = 65536  # 10.77.0.0/16: no mapping, never cached in the flood's time
# Garbage at the RLOC: 50 times control_rate, 200 times a source's share. Not the lab's highest
# rate: at that, x1's uplink itself (OVS's receive queue) drops packets before any flow is
# looked up, the genuine one among them, which no meter can help
GARBAGE_RATE = 50000


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    with TwoSites(site_spec(1), site_spec(2),
                  rundir=str(tmp_path_factory.mktemp("miss-fairness"))) as t:
        yield t


@pytest.fixture(scope="module")
def udpflood(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build bench/udpflood.c")
    out = tmp_path_factory.mktemp("udpflood") / "udpflood"
    subprocess.run(["gcc", "-O2", "-o", str(out),
                    str(Path(__file__).resolve().parents[2] / "bench" / "udpflood.c")],
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


def first_reply_ms(host, dst: str, source: str | None = None, tries: int = 1) -> float | None:
    """Milliseconds from a ping's first echo request to its first reply (None: no reply within
    3 s of the last request). With ``tries`` > 1 the requests go 0.2 s apart, and a reply to the
    n-th counts the 0.2 s waits before it."""
    out = host.cmd(f"ping -c {tries} -i 0.2 -W 3 {'-I ' + source if source else ''} {dst}")
    m = re.search(r"icmp_seq=(\d+) .*time=([\d.]+) ms", out)
    return round((int(m.group(1)) - 1) * 200 + float(m.group(2)), 1) if m else None


def resolved_after(xtr, prefix: str, start: float) -> float | None:
    """Milliseconds from ``start`` (time.monotonic()) to when ``prefix`` entered the xTR's
    map-cache, from its remaining lifetime (1440 minutes when installed; the API rounds it to
    0.1 s); None: not cached."""
    entry = next((e for e in api(xtr, "map", "list")["cache"] if e["prefix"] == prefix), None)
    asked = time.monotonic()  # after the answer: the estimate errs on the late side
    if entry is None:
        return None
    return round((asked - (1440 * 60 - entry["expires_in"]) - start) * 1000, 1)


def test_a_flooding_host_leaves_other_hosts_first_contacts_under_a_second(topo, udpflood):
    x1, h1, hb1 = topo.xtrs["x1"], topo.host("h1"), topo.host("hb1")
    site, intf = f"{topo.tag}x1-site", topo.intf("h1")
    # the flooder and the other source are extra addresses of h1 (its own address stays clean
    # for the other tests: the controller keeps a flooder's lookups refused for a while)
    flooder = "10.1.0.200"
    flood_meter = source_meter(x1, site, flooder)
    other = next(f"10.1.0.{n}" for n in range(11, 60)
                 if source_meter(x1, site, f"10.1.0.{n}") != flood_meter)
    other_meter = source_meter(x1, site, other)
    for address in (flooder, other):
        h1.cmd(f"ip addr add {address}/24 dev {intf}")
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
        other_port = first_reply_ms(hb1, "10.2.0.10")
        # h1's link itself is saturated by the flood (OVS takes in only part of what h1 sends),
        # so a packet from the other source may be lost before the switch's pipeline: a few
        # tries, 0.2 s apart, and the time counted from the first
        started = time.monotonic()
        same_port = first_reply_ms(h1, "10.2.0.10", other, tries=5)
        during = meter_stats(x1)
        resolved = resolved_after(x1, "[1000]10.2.0.0/24", started)
    finally:
        out, err = flood.communicate(timeout=FLOOD_SECONDS + 30)
        for address in (flooder, other):
            h1.cmd(f"ip addr del {address}/24 dev {intf}")
    assert flood.returncode == 0, err
    sent = int(re.search(r"sent=(\d+)", out).group(1))

    def delta(meter: int) -> tuple[int, int]:
        return tuple(a - b for a, b in zip(during.get(meter, (0, 0)), before.get(meter, (0, 0))))

    (offered_in, offered_drop), other_counts = delta(flood_meter), delta(other_meter)
    report = (f"flood: {sent} sent in {FLOOD_SECONDS} s from {flooder}; at its source meter "
              f"{flood_meter} by the first contacts: {offered_in} in, {offered_drop} dropped; "
              f"first contacts: hb1 (other port) {other_port} ms, {other} (same port, meter "
              f"{other_meter}: {other_counts}) resolved after {resolved} ms, first reply "
              f"{same_port} ms; aggregate meter {METER_MISS}: "
              f"{delta(METER_MISS)}, ports: {delta(METER_MISS_PORT)}, "
              f"{delta(METER_MISS_PORT + 1)}; x1: "
              f"{ {k: v for k, v in api(x1, 'mapstat')['counters'].items() if v} }")
    print(report)
    # the flood was far beyond what the site's aggregate meter passes (100/s): one shared meter
    # would have dropped the first contacts nearly surely
    assert offered_in > 20 * 100 * 2, report
    assert offered_drop > 0.9 * offered_in, report
    assert other_port is not None and other_port < 1000, report
    # the other source on the flooded port: its own bucket let its miss through, and the mapping
    # was in place within a second. Its ping's reply is not asserted: the flood saturates h1's
    # link into the switch (OVS takes in part of what h1 sends), and the way back needs h1's
    # ARP answer for its new address to cross that link (in 2 of 3 runs it did not in time)
    assert other_counts[0] >= 1 and other_counts[1] == 0, report
    assert resolved is not None and resolved < 1000, report


def test_a_garbage_flood_at_the_rloc_leaves_a_genuine_map_request_answered(topo, udpflood):
    x1, r, h2 = topo.xtrs["x1"], topo.host("r"), topo.host("h2")
    genuine = "198.51.100.1"  # x2's RLOC: its Map-Requests come from there
    genuine_meter = control_meter(x1, genuine)
    flooder = next(f"192.0.2.{n}" for n in range(100, 200)
                   if control_meter(x1, f"192.0.2.{n}") != genuine_meter)
    flood_meter = control_meter(x1, flooder)
    r.cmd(f"ip addr add {flooder}/24 dev {topo.intf('r1')}")
    h2.cmd("ping -c 1 -W 1 10.2.0.1")  # h2 knows its gateway's MAC
    cold(topo)
    before = meter_stats(x1, "br-u")
    flood = r.popen([str(udpflood), flooder, x1.spec.rlocs[0], "1", str(FLOOD_SECONDS),
                     "4342", str(GARBAGE_RATE)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True)
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
    report = (f"garbage: {sent} sent in {FLOOD_SECONDS} s from {flooder}; at its source meter "
              f"{flood_meter} by the first reply: {offered_in} in, {offered_drop} dropped; "
              f"genuine source meter {genuine_meter}: {during.get(genuine_meter)}; aggregate "
              f"meter {METER_CONTROL}: "
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
