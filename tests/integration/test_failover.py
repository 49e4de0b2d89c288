"""RLOC probing and failover on real Open vSwitch (docs/architecture.rst, "Locator
reachability"): x2's site has two locators, 198.51.100.1 (priority 1) and 198.51.100.2
(priority 2). While h1 pings h2 ten times a second, the path to the preferred locator is cut on
the underlay router (a blackhole route for 198.51.100.1/32); with the fast probing setting
(interval 1 s, timeout 0.5 s, 3 misses) x1 marks it down and moves the mapping's flow to the
other locator within interval x misses + 1 s of the cut; when the path is restored, x1's probes
are answered again and the traffic returns to the preferred locator."""

from __future__ import annotations

import re
import signal
import time

import pytest

from tests.integration.lab import api
from topologies.two_sites import TwoSites, site_spec

pytestmark = pytest.mark.integration

FAST = {"interval": 1, "timeout": 0.5, "misses": 3}
BOUND = FAST["interval"] * FAST["misses"] + 1.0
PREFERRED, OTHER = "198.51.100.1", "198.51.100.2"


def replies(output: str) -> list[tuple[float, int]]:
    """(time, icmp_seq) of each echo reply in ``ping -D`` output."""
    return [(float(t), int(seq)) for t, seq in
            re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)", output, re.M)]


def encap_rlocs(xtr) -> set[str]:
    """The tunnel destinations x1's encapsulation flow for 10.2.0.0/24 sets."""
    dump = xtr.ofctl("dump-flows br-lisp")
    lines = [l for l in dump.splitlines() if "nw_dst=10.2.0.0/24" in l]
    return set(re.findall(r"set_field:([\d.]+)->tun_dst", " ".join(lines)))


def locator_state(xtr, rloc: str) -> str | None:
    found = [l for l in api(xtr, "locators")["locators"] if l["rloc"] == rloc]
    return found[0]["state"] if found else None


def wait(check, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_traffic_fails_over_to_the_other_locator_within_the_bound_and_comes_back(tmp_path):
    x1 = site_spec(1, tag="f")
    x1.extra = {"probing": FAST}
    x2 = site_spec(2, tag="f", priorities=(1, 2))
    with TwoSites(x1, x2, rundir=str(tmp_path), tag="f") as t:
        xtr1, h1, r = t.xtrs["x1"], t.host("h1"), t.host("r")
        out = h1.cmd("ping -c 3 -i 0.3 10.2.0.10")  # resolve the mapping
        assert " 0% packet loss" in out, out
        wait(lambda: locator_state(xtr1, PREFERRED) == "up"
             and locator_state(xtr1, OTHER) == "up", 10, "both locators probed up")
        assert encap_rlocs(xtr1) == {PREFERRED}
        ping = h1.popen(["ping", "-D", "-i", "0.1", "-c", "250", "-W", "1", "10.2.0.10"],
                        text=True)
        try:
            time.sleep(3)
            cut = time.time()
            r.cmd(f"ip route add blackhole {PREFERRED}/32")
            wait(lambda: encap_rlocs(xtr1) == {OTHER}, BOUND + 2, "the flow to move")
            assert locator_state(xtr1, PREFERRED) == "down"
            time.sleep(4)
            restore = time.time()
            r.cmd(f"ip route del blackhole {PREFERRED}/32")
            back = wait(lambda: encap_rlocs(xtr1) == {PREFERRED}, FAST["interval"] + 3,
                        "the flow to come back")
            time.sleep(2)
        finally:
            r.cmd(f"ip route del blackhole {PREFERRED}/32 2>/dev/null")
            ping.send_signal(signal.SIGINT)
            output, _ = ping.communicate(timeout=10)
        got = replies(output)
        before = [seq for ts, seq in got if ts < cut]
        after = [(ts, seq) for ts, seq in got if ts >= cut]
        assert before and after, output[-2000:]
        first_after = after[0]
        outage = first_after[0] - cut
        lost = first_after[1] - max(before) - 1
        resumed = [seq for ts, seq in got if ts >= restore]
        lost_on_return = (max(resumed) - min(resumed) + 1 - len(resumed)) if resumed else None
        print(f"failover: traffic resumed {outage:.2f} s after the cut (bound {BOUND:.1f} s), "
              f"{lost} packets lost at 10 packets/s; back on the preferred locator "
              f"{back:.2f} s after the repair, {lost_on_return} lost then")
        assert outage <= BOUND, (outage, output[-2000:])
        assert lost_on_return == 0
        c = api(xtr1, "mapstat")["counters"]
        assert c["locators_went_down"] == 1 and c["locators_came_up"] == 1
