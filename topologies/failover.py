"""The failover scenario on topologies/two_sites.py, shared by the integration test and
bench/failover.py: x2's site has two locators, 198.51.100.1 (priority 1) and 198.51.100.2
(priority 2); while h1 pings h2 ten times a second, the underlay router blackholes the preferred
locator (``ip route add blackhole 198.51.100.1/32``), then removes the blackhole. Measured: when
x1's flow moved to the other locator, when traffic resumed and how many echo requests went
unanswered, then the same for the way back.
"""

from __future__ import annotations

import json
import re
import signal
import time

PREFERRED, OTHER = "198.51.100.1", "198.51.100.2"
REMOTE = "10.2.0.10"
PING_INTERVAL = 0.1


def replies(output: str) -> list[tuple[float, int]]:
    """(time, icmp_seq) of each echo reply in ``ping -D`` output."""
    return [(float(t), int(seq)) for t, seq in
            re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)", output, re.M)]


def encap_rlocs(xtr) -> set[str]:
    """The tunnel destinations of x1's encapsulation flow (or select group) for 10.2.0.0/24."""
    dump = xtr.ofctl("dump-flows br-lisp")
    lines = " ".join(l for l in dump.splitlines() if "nw_dst=10.2.0.0/24" in l)
    found = set(re.findall(r"set_field:([\d.]+)->tun_dst", lines))
    for gid in re.findall(r"group:(\d+)", lines):
        found |= set(re.findall(r"set_field:([\d.]+)->tun_dst",
                                xtr.ofctl(f"dump-groups br-lisp {gid}")))
    return found


def locator_state(xtr, rloc: str) -> str | None:
    data = json.loads(xtr.lispctl("--json", "locators"))
    found = [l for l in data["locators"] if l["rloc"] == rloc]
    return found[0]["state"] if found else None


def wait(check, timeout: float, what: str) -> float:
    """Seconds until ``check()`` holds (polled every 0.1 s); AssertionError after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def cut_and_restore(topo, detect_within: float, return_within: float,
                    settle: float = 3.0, cut_after: float | None = None) -> dict:
    """Run the scenario on a started two-site topology whose x1 has resolved 10.2.0.0/24 and
    probed both locators up. ``detect_within``: how long to wait for the flow to move after the
    cut; ``return_within``: for it to come back after the repair; ``cut_after``: seconds of
    ping before the cut (default ``settle``). Figures in seconds."""
    x1, h1, r = topo.xtrs["x1"], topo.host("h1"), topo.host("r")
    cut_after = settle if cut_after is None else cut_after
    expected = cut_after + 2 * settle + detect_within + return_within + 10
    ping = h1.popen(["ping", "-D", "-i", str(PING_INTERVAL), "-W", "1",
                     "-c", str(int(expected / PING_INTERVAL)), REMOTE], text=True)
    try:
        time.sleep(cut_after)
        cut = time.time()
        r.cmd(f"ip route add blackhole {PREFERRED}/32")
        moved = wait(lambda: encap_rlocs(x1) == {OTHER}, detect_within, "the flow to move")
        state_after_cut = locator_state(x1, PREFERRED)
        time.sleep(settle)
        restore = time.time()
        r.cmd(f"ip route del blackhole {PREFERRED}/32")
        back = wait(lambda: encap_rlocs(x1) == {PREFERRED}, return_within,
                    "the flow to come back")
        time.sleep(settle)
    finally:
        r.cmd(f"ip route del blackhole {PREFERRED}/32 2>/dev/null")
        ping.send_signal(signal.SIGINT)
        output, _ = ping.communicate(timeout=10)
    got = replies(output)
    before = [seq for ts, seq in got if ts < cut]
    after = [(ts, seq) for ts, seq in got if ts >= cut]
    if not before or not after:
        raise AssertionError(f"no echo replies around the cut: {output[-2000:]}")
    resumed_at, first_seq = after[0]
    late = [seq for ts, seq in got if ts >= restore]
    return {"flow_moved_s": moved, "outage_s": resumed_at - cut,
            "lost": first_seq - max(before) - 1, "state_after_cut": state_after_cut,
            "flow_back_s": back,
            "lost_on_return": (max(late) - min(late) + 1 - len(late)) if late else None}


def prepare(topo, both_up_within: float) -> None:
    """Resolve x2's mapping at x1 and wait until both of its locators are probed up."""
    x1 = topo.xtrs["x1"]
    out = topo.host("h1").cmd(f"ping -c 3 -i 0.3 {REMOTE}")
    if " 0% packet loss" not in out:
        raise AssertionError(out)
    wait(lambda: locator_state(x1, PREFERRED) == "up" and locator_state(x1, OTHER) == "up",
         both_up_within, "both locators probed up")
    if encap_rlocs(x1) != {PREFERRED}:
        raise AssertionError(f"x1 encapsulates to {encap_rlocs(x1)}, not {PREFERRED}")
