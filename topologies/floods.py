"""The flood scenarios on topologies/two_sites.py, shared by tests/integration/test_floods.py and
bench/flood.py (issue 15). Every sender is bounded (seconds and datagrams) and runs in a lab
namespace; the generator is bench/flood.c, built here with gcc.

- **Miss flood**: h1 sends from 10.1.0.10 to a stream of uncached destinations (10.99.0.0/16,
  nobody's EID) as fast as the lab goes. Meanwhile hb1 (the other site port) pings h2's twin
  hb2 over an already cached mapping, and h1 makes a first contact from a second address,
  10.1.0.11, to 10.2.0.10 (cold in x1's map-cache). Measured: what the flood offered, what the
  switch's meters dropped, what reached the controller, the cached ping's loss and how long the
  first contact took to get its first answer.
- **Control flood**: the underlay router sends random and truncated LISP control messages from
  192.0.2.254 to x1's RLOC (UDP 4342). Meanwhile x2, whose map-cache lacks x1's prefix, gets a
  packet from h2 for 10.1.0.10: its Map-Request must reach x1 and be answered. Measured: offered,
  policed, classified as malformed by x1, and how long h2's first contact took.

Without a flood the same probes give the baseline (``flood=False``).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLOOD_SOURCE, LIGHT_SOURCE = "10.1.0.10", "10.1.0.11"
FLOOD_SPACE = ("10.99.0.0", 16)
REMOTE = "10.2.0.10"          # h2 (and hb2 in the blue instance-id)
LOCAL = "10.1.0.10"           # h1, as x2's hosts see it
ATTACKER = "192.0.2.254"      # the underlay router, on x1's side
X1_RLOC = "192.0.2.1"
LEAD = 2.0                    # seconds of flood before the probes start


def build_tool(workdir: Path) -> Path:
    """bench/flood.c compiled into ``workdir`` (gcc, -O2)."""
    tool = Path(workdir) / "flood"
    subprocess.run(["gcc", "-O2", "-o", str(tool), str(REPO / "bench" / "flood.c")],
                   check=True, capture_output=True)
    return tool


def mapstat(xtr) -> dict:
    return json.loads(xtr.lispctl("--json", "mapstat"))["counters"]


def meter_drops(xtr, bridge: str) -> int:
    """Packets the bridge's meters dropped so far (every band of every meter)."""
    out = xtr.ofctl(f"meter-stats {bridge}")
    return sum(int(n) for n in re.findall(r"^\s*\d+: packet_count:(\d+)", out, re.M))


def first_reply_after(host, dst: str, source: str | None = None, count: int = 30,
                      interval: float = 0.1) -> tuple[float | None, str]:
    """(seconds from the first echo request to the first reply, or None; ping's output)."""
    src = f"-I {source}" if source else ""
    start = time.time()
    out = host.cmd(f"ping -D -n -c {count} -i {interval} -W 1 {src} {dst}")
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


def _sender(host, tool: Path, source: str, dst: str, plen: int, port: int, seconds: float,
            mode: str, rate: int = 0):
    return host.popen([str(tool), source, dst, str(plen), str(port), str(rate), str(seconds),
                       "0", mode], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _sent(proc) -> int:
    out = proc.communicate(timeout=60)[0].decode()
    m = re.search(r"sent=(\d+)", out)
    if not m:
        raise AssertionError(f"flood generator failed: {out}")
    return int(m.group(1))


def prepare(topo) -> None:
    """Once per lab: h1's second address, and hb1's mapping to hb2 cached at x1."""
    h1 = topo.host("h1")
    h1.cmd(f"ip addr add {LIGHT_SOURCE}/24 dev {topo.intf('h1')}")
    hb1 = topo.host("hb1")
    for _ in range(10):
        if loss(hb1.cmd(f"ping -c 2 -i 0.2 -W 1 {REMOTE}"))[1]:
            return
    raise AssertionError("hb1 cannot reach hb2: the lab is not working")


def miss_scenario(topo, tool: Path, seconds: float, flood: bool = True) -> dict:
    """Run the miss flood (or, with ``flood=False``, the same probes without it)."""
    x1, h1, hb1 = topo.xtrs["x1"], topo.host("h1"), topo.host("hb1")
    forget(x1, f"[1000]{REMOTE}/32")
    forget(x1, "[1000]10.2.0.0/24")
    before, dropped_before = mapstat(x1), meter_drops(x1, "br-lisp")
    sender = (_sender(h1, tool, FLOOD_SOURCE, *FLOOD_SPACE, 9, seconds, "data")
              if flood else None)
    pinger = hb1.popen(["ping", "-n", "-i", "0.05", "-c", str(int(seconds / 0.05)), "-W", "1",
                        REMOTE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(LEAD)
    took, out = first_reply_after(h1, REMOTE, source=LIGHT_SOURCE)
    offered = _sent(sender) if sender else 0
    sent, received = loss(pinger.communicate(timeout=seconds + 30)[0].decode())
    after = mapstat(x1)
    return {"offered": offered, "offered_pps": offered / seconds,
            "policed": meter_drops(x1, "br-lisp") - dropped_before,
            "punted": after["misses"] - before["misses"],
            "first_contact_s": took, "cached_sent": sent, "cached_received": received,
            "cached_loss": 1 - received / sent if sent else 1.0, "first_contact_output": out}


def control_scenario(topo, tool: Path, seconds: float, flood: bool = True) -> dict:
    """Run the control flood (or, with ``flood=False``, the same probe without it)."""
    x1, x2, r, h2 = topo.xtrs["x1"], topo.xtrs["x2"], topo.host("r"), topo.host("h2")
    forget(x2, f"[1000]{LOCAL}/32")
    forget(x2, "[1000]10.1.0.0/24")
    before, dropped_before = mapstat(x1), meter_drops(x1, "br-u")
    sender = (_sender(r, tool, ATTACKER, X1_RLOC, 32, 4342, seconds, "garbage")
              if flood else None)
    time.sleep(LEAD)
    took, out = first_reply_after(h2, LOCAL)
    offered = _sent(sender) if sender else 0
    after = mapstat(x1)
    return {"offered": offered, "offered_pps": offered / seconds,
            "policed": meter_drops(x1, "br-u") - dropped_before,
            "malformed": after["control_malformed"] - before["control_malformed"],
            "answered": after["replies_sent"] - before["replies_sent"],
            "first_contact_s": took, "first_contact_output": out}
