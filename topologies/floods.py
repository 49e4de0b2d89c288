"""The flood scenarios of bench/flood.py on topologies/two_sites.py (issue 15). Every sender is
bounded in time and runs in a lab namespace; the generator is bench/udpflood.c, built with gcc.
tests/integration/test_miss_fairness.py asserts the issue's bounds on the same kind of floods.

- **Miss flood**: h1 sends from 10.1.0.10 to a stream of uncached destinations (10.99.0.0/16,
  nobody's EID) as fast as it can. Meanwhile hb1, the other host of the site (its own port, the
  blue instance-id 2000), pings hb2 20 times a second over a cached mapping, and after 2 s makes
  a first contact to 10.22.0.10, a second blue prefix of x2 that x1 has not cached. Measured:
  datagrams offered, dropped by x1's meters (policed), punted to x1's controller, the cached
  ping's loss and the first contact's time to its first answer.
- **Control flood**: the underlay router sends datagrams that are no LISP message from
  192.0.2.254 to x1's RLOC, UDP 4342, at a given rate (0: as fast as it can). Meanwhile x2,
  whose map-cache lacks x1's prefix, gets a packet from h2 for 10.1.0.10: its Map-Request must
  reach x1 and be answered. Measured: offered, policed, classified as malformed by x1, and the
  time of h2's first contact.

Without a flood the same probes give the baseline (``flood=False``).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLOOD_SOURCE = "10.1.0.10"
FLOOD_FIRST, FLOOD_COUNT = "10.99.0.1", 65000
BLUE, BLUE_REMOTE = 2000, "10.2.0.10"      # hb2, cached at x1 by prepare()
COLD_PREFIX, COLD_HOST = "10.22.0.0/24", "10.22.0.10"  # x2's second blue prefix, on hb2
LOCAL = "10.1.0.10"           # h1, as x2's hosts see it
ATTACKER = "192.0.2.254"      # the underlay router, on x1's side
X1_RLOC = "192.0.2.1"
LEAD = 2.0                    # seconds of flood before the probes start


def x2_spec(tag: str):
    """x2 of topologies/two_sites.py with a second blue prefix for first contacts."""
    from topologies.two_sites import site_spec
    spec = site_spec(2, tag=tag)
    locators = spec.eid_prefixes[0]["locators"]
    spec.eid_prefixes.append({"prefix": f"[{BLUE}]{COLD_PREFIX}", "ttl": 1440,
                              "locators": locators})
    return spec


def build_tool(workdir: Path) -> Path:
    """bench/udpflood.c compiled into ``workdir`` (gcc, -O2)."""
    tool = Path(workdir) / "udpflood"
    subprocess.run(["gcc", "-O2", "-o", str(tool), str(REPO / "bench" / "udpflood.c")],
                   check=True, capture_output=True)
    return tool


def mapstat(xtr) -> dict:
    return json.loads(xtr.lispctl("--json", "mapstat"))["counters"]


def meter_drops(xtr, bridge: str) -> int:
    """Packets the bridge's meters dropped so far (every band of every meter)."""
    out = xtr.ofctl(f"meter-stats {bridge}")
    return sum(int(n) for n in re.findall(r"^\s*\d+: packet_count:(\d+)", out, re.M))


def first_reply_after(host, dst: str, count: int = 30,
                      interval: float = 0.1) -> tuple[float | None, str]:
    """(seconds from the first echo request to the first reply, or None; ping's output)."""
    start = time.time()
    out = host.cmd(f"ping -D -n -c {count} -i {interval} -W 1 {dst}")
    stamps = re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", out, re.M)
    return (float(stamps[0]) - start if stamps else None), out


def loss(output: str) -> tuple[int, int]:
    m = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def forget(xtr, prefix: str) -> None:
    """Remove a mapping from an xTR's map-cache (nothing if it has none)."""
    try:
        xtr.lispctl("map", "del", f"'{prefix}'")
    except RuntimeError:
        pass


def _sender(host, tool: Path, source: str, first: str, count: int, seconds: float, port: int,
            rate: int = 0):
    return host.popen([str(tool), source, first, str(count), str(seconds), str(port),
                       str(rate)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _sent(proc) -> int:
    out = proc.communicate(timeout=90)[0].decode()
    m = re.search(r"sent=(\d+)", out)
    if not m:
        raise AssertionError(f"flood generator failed: {out}")
    return int(m.group(1))


def prepare(topo) -> None:
    """Once per lab: the cold prefix's host on hb2; hb1's mapping to hb2 and h1's to h2 cached
    at x1 (the control scenario's answers go from h1 to h2: x1 must not need a Map-Request for
    them, as h1 is the miss flood's source and its lookups are refused for a while after it)."""
    hb2 = topo.host("hb2")
    hb2.cmd(f"ip addr add {COLD_HOST}/24 dev {topo.intf('hb2')}")
    for host, target in (("hb1", BLUE_REMOTE), ("hb1", COLD_HOST), ("h1", "10.2.0.10")):
        for _ in range(10):
            if loss(topo.host(host).cmd(f"ping -c 2 -i 0.2 -W 1 {target}"))[1]:
                break
        else:
            raise AssertionError(f"{host} cannot reach {target}: the lab is not working")


def miss_scenario(topo, tool: Path, seconds: float, flood: bool = True) -> dict:
    """Run the miss flood (or, with ``flood=False``, the same probes without it)."""
    x1, h1, hb1 = topo.xtrs["x1"], topo.host("h1"), topo.host("hb1")
    forget(x1, f"[{BLUE}]{COLD_PREFIX}")
    before, dropped_before = mapstat(x1), meter_drops(x1, "br-lisp")
    sender = (_sender(h1, tool, FLOOD_SOURCE, FLOOD_FIRST, FLOOD_COUNT, seconds, 9)
              if flood else None)
    pinger = hb1.popen(["ping", "-n", "-i", "0.05", "-c", str(int(seconds / 0.05)), "-W", "1",
                        BLUE_REMOTE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(LEAD)
    took, out = first_reply_after(hb1, COLD_HOST)
    offered = _sent(sender) if sender else 0
    sent, received = loss(pinger.communicate(timeout=seconds + 30)[0].decode())
    after = mapstat(x1)
    return {"offered": offered, "offered_pps": offered / seconds,
            "policed": meter_drops(x1, "br-lisp") - dropped_before,
            "punted": after["misses"] - before["misses"],
            "first_contact_s": took, "cached_sent": sent, "cached_received": received,
            "cached_loss": 1 - received / sent if sent else 1.0, "first_contact_output": out}


def control_scenario(topo, tool: Path, seconds: float, flood: bool = True,
                     rate: int = 0) -> dict:
    """Run the control flood at ``rate`` datagrams per second (0: as fast as the router goes),
    or, with ``flood=False``, the same probe without it."""
    x1, x2, r, h2 = topo.xtrs["x1"], topo.xtrs["x2"], topo.host("r"), topo.host("h2")
    forget(x2, "[1000]10.1.0.0/24")
    before, dropped_before = mapstat(x1), meter_drops(x1, "br-u")
    sender = (_sender(r, tool, ATTACKER, X1_RLOC, 1, seconds, 4342, rate)
              if flood else None)
    time.sleep(LEAD)
    took, out = first_reply_after(h2, LOCAL)
    offered = _sent(sender) if sender else 0
    after = mapstat(x1)
    return {"offered": offered, "offered_pps": offered / seconds, "rate": rate,
            "policed": meter_drops(x1, "br-u") - dropped_before,
            "malformed": after["control_malformed"] - before["control_malformed"],
            "answered": after["replies_sent"] - before["replies_sent"],
            "first_contact_s": took, "first_contact_output": out}
