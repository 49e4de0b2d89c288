"""Test tooling for the Mininet labs (topologies/): an xTR's API from inside its namespace, cold
map-caches, pings with their counts."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path


def api(xtr, *args):
    """lispctl --json in the xTR's namespace, parsed."""
    return json.loads(xtr.lispctl("--json", *args))


def cold(topo):
    """Empty every xTR's map-cache (and so its encapsulation flows)."""
    for xtr in topo.xtrs.values():
        for entry in api(xtr, "map", "list")["cache"]:
            api(xtr, "map", "del", f"'[{entry['instance_id']}]{entry['eid']}'")
        assert api(xtr, "map", "list")["cache"] == []


def ping(host, dst, count=3, extra=""):
    """(sent, received, output) of a ping from a lab host."""
    out = host.cmd(f"ping -c {count} -i 0.3 -W 3 {extra} {dst}")
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, out
    return int(m.group(1)), int(m.group(2)), out


def wait_ipv6_next_hops(topo, timeout: float = 15.0) -> None:
    """Until OVS's tunnel neighbour cache of every xTR holds its IPv6 next hop (the controllers
    resolve it for OVS's native tunnelling; the first packet is lost while OVS lacks it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(
            xtr.spec.next_hop_ipv6 in xtr.appctl("tnl/neigh/show")
            for xtr in topo.xtrs.values()):
        time.sleep(0.5)


def wait_for(check, timeout: float, what: str):
    """``check()``'s first true value, polled every 0.3 s; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def controller_log(xtr) -> str:
    return (xtr.dir / "controller.log").read_text(errors="replace")


def hangup(xtr, config_text: str, expect: str, timeout: float = 10.0) -> str:
    """Write the xTR controller's config file, send the controller SIGHUP (a reload), and return
    the first new log line containing ``expect``."""
    pid = xtr.controller.pid
    assert "--config" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()  # the controller
    seen = len(controller_log(xtr).splitlines())
    tmp = xtr.config_path.with_suffix(".new")
    tmp.write_text(config_text)
    tmp.replace(xtr.config_path)
    os.kill(pid, signal.SIGHUP)
    return wait_for(lambda: next((line for line in controller_log(xtr).splitlines()[seen:]
                                  if expect in line), None), timeout,
                    f"{xtr.spec.name}'s log to say {expect!r}")
