"""Live reload on real Open vSwitch: while h1 pings h2 across LISP (10 packets a second), x1's
controller gets SIGHUP with a config that adds one local prefix (10.1.5.0/24) and changes nothing
else: no packet is lost, and the new prefix is served at once (its decapsulation flow is on x1's
bridge, x2 resolves it through x1 and h2 reaches a host address in it). A broken file, and one
that changes a field needing a restart, are refused with an ERROR naming the reason: not a flow
changes and the ping goes on."""

from __future__ import annotations

import re
import subprocess
import time

import pytest
import yaml

from tests.integration.lab import api, hangup, ping
from topologies.two_sites import TwoSites, site_spec

pytestmark = pytest.mark.integration

NEW = {"prefix": "[1000]10.1.5.0/24", "ttl": 1440,
       "locators": [{"rloc": "192.0.2.1", "priority": 1, "weight": 100}]}
STATS = re.compile(r"\s*(duration|n_packets|n_bytes|idle_age|hard_age)=[^,\s]*,?")


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    with TwoSites(site_spec(1, tag="l"), site_spec(2, tag="l"),
                  rundir=str(tmp_path_factory.mktemp("live-reload")), tag="l") as t:
        yield t


def start_ping(host, dst: str, seconds: float):
    """A ping at 10 packets a second for ``seconds``, running in the background."""
    return host.popen(["ping", "-i", "0.1", "-c", str(int(seconds * 10)), "-W", "2", dst],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def ping_result(proc) -> tuple[int, int, str]:
    out, _ = proc.communicate(timeout=60)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, out
    return int(m.group(1)), int(m.group(2)), out


def flows(xtr) -> list[str]:
    """x1's flows on both bridges without their counters and ages."""
    lines = []
    for bridge in ("br-lisp", "br-u"):
        text = xtr.ofctl(f"dump-flows unix:{xtr.dir}/{bridge}.mgmt")
        lines += sorted(f"{bridge} {STATS.sub('', line).strip()}" for line in text.splitlines()
                        if "cookie=" in line)
    return lines


def test_a_reload_that_adds_a_local_prefix_loses_no_packet_and_serves_it(topo):
    x1, x2 = topo.xtrs["x1"], topo.xtrs["x2"]
    h1, h2 = topo.host("h1"), topo.host("h2")
    sent, received, out = ping(h1, "10.2.0.10", count=3)  # the mappings are cached
    assert received == sent, out
    h1.cmd(f"ip addr add 10.1.5.10/24 dev {topo.intf('h1')}")
    table3 = f"dump-flows unix:{x1.dir}/br-lisp.mgmt table=3"
    assert "nw_dst=10.1.5.0/24" not in x1.ofctl(table3)  # not x1's yet
    config = x1.config()
    config["eid_prefixes"] = [*config["eid_prefixes"], NEW]
    proc = start_ping(h1, "10.2.0.10", 6)
    time.sleep(2)
    started = time.monotonic()
    line = hangup(x1, yaml.safe_dump(config, sort_keys=False), "reload of")
    print(f"reload logged {time.monotonic() - started:.2f} s after SIGHUP: {line}")
    assert " INFO " in line and f"+local {NEW['prefix']}" in line, line
    assert "3 local prefix(es) unchanged" in line, line
    sent, received, out = ping_result(proc)
    print(out.splitlines()[-2])
    assert sent == 60 and received == sent, out
    assert x1.controller.poll() is None
    decap = x1.ofctl(table3)
    assert "tun_id=0x3e8" in decap and "nw_dst=10.1.5.0/24" in decap, decap
    # served: x2 asks x1 for it, and h2 reaches the host behind x1
    sent, received, out = ping(h2, "10.1.5.10", count=3)
    assert received == sent, out
    entry = api(x2, "map", "get", "'[1000]10.1.5.10'")["mapping"]
    assert entry["prefix"] == "[1000]10.1.5.0/24"
    assert [loc["rloc"] for loc in entry["locators"]] == ["192.0.2.1"]


def test_a_broken_or_restart_needing_file_is_refused_and_nothing_changes(topo):
    x1 = topo.xtrs["x1"]
    h1 = topo.host("h1")
    sent, received, out = ping(h1, "10.2.0.10", count=3)
    assert received == sent, out
    running = x1.config_path.read_text()
    before = flows(x1)
    proc = start_ping(h1, "10.2.0.10", 5)
    time.sleep(1)
    broken = running.replace("priority: 1", "priority: 999", 1)
    line = hangup(x1, broken, "reload refused")
    assert " ERROR " in line and str(x1.config_path) in line, line
    assert "priority" in line and "999" in line and "the running configuration is kept" in line
    moved = yaml.safe_load(running)
    moved["underlay"]["mtu"] = 1400
    moved["eid_prefixes"] = [*moved["eid_prefixes"], {"prefix": "[1000]10.1.6.0/24"}]
    line = hangup(x1, yaml.safe_dump(moved, sort_keys=False), "needs a restart")
    assert " ERROR " in line and "needs a restart: field underlay.mtu" in line, line
    sent, received, out = ping_result(proc)
    assert sent == 50 and received == sent, out
    assert x1.controller.poll() is None
    assert flows(x1) == before
    x1.config_path.write_text(running)
