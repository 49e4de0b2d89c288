"""Test tooling for the Mininet labs (topologies/): an xTR's API from inside its namespace, cold
map-caches, pings with their counts."""

from __future__ import annotations

import json
import re


def api(xtr, *args):
    """lispctl --json in the xTR's namespace, parsed."""
    return json.loads(xtr.lispctl("--json", *args))


def cold(topo):
    """Empty every xTR's map-cache (and so its encapsulation flows)."""
    for xtr in topo.xtrs.values():
        for entry in api(xtr, "map", "list")["cache"]:
            api(xtr, "map", "del", f"'{entry['prefix']}'")
        assert api(xtr, "map", "list")["cache"] == []


def ping(host, dst, count=3, extra=""):
    """(sent, received, output) of a ping from a lab host."""
    out = host.cmd(f"ping -c {count} -i 0.3 -W 3 {extra} {dst}")
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, out
    return int(m.group(1)), int(m.group(2)), out
