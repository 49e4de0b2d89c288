"""Classic RFC 9300 data packets on real Open vSwitch (lisp_app.classic, docs/architecture.rst).

Two lisp_app sites (topologies/two_sites.py): x1 sends strict RFC 9300 headers
(``underlay.encapsulation: lisp``, a tc egress program on its uplink), x2 sends LISP-GPE; both
accept either (an XDP program on each uplink rewrites classic headers for OVS's GPE port). The
blue sites use instance-id 0 here, so that headers without the I bit have somewhere to go.
Classic packets with other flag mixes are built here and injected from the underlay router.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from tests.integration.lab import api, cold, ping, wait_ipv6_next_hops
from tests.integration.wire import Capture, find_problems, layers, outer_ip
from topologies.two_sites import TwoSites, site_spec

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PORT = 9999  # the receivers' UDP port on the site hosts


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    x1 = site_spec(1, blue_iid=0, encapsulation="lisp")
    x2 = site_spec(2, blue_iid=0)
    # the blue prefixes are written [0]...: instance-id 0 in sites whose instance_id is 1000
    with TwoSites(x1, x2, rundir=str(tmp_path_factory.mktemp("classic"))) as t:
        yield t


def counters(xtr):
    return api(xtr, "mapstat")["counters"]


def wait_counter(xtr, name, at_least, timeout=20.0):
    """mapstat's classic counters come from the statistics poll (every 5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = counters(xtr)[name]
        if value >= at_least or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def outer_ipv6(layer: dict) -> dict:
    """The outer IPv6 header, if the packet has one first (tshark lists both IP layers)."""
    if "ipv6" not in layer or (list(layer).index("ipv6") > list(layer).index("ip")
                               if "ip" in layer else False):
        return {}
    ip6 = layer["ipv6"]
    return ip6[0] if isinstance(ip6, list) else ip6


def flags(layer) -> int:
    return int(layer["lisp-data"]["lisp-data.flags"], 16)


class Receivers:
    """A UDP listener on port 9999 of each named host, recording what arrives."""

    SCRIPT = (
        "import socket, sys\n"
        "family = socket.AF_INET6 if sys.argv[2] == '6' else socket.AF_INET\n"
        "s = socket.socket(family, socket.SOCK_DGRAM)\n"
        "if family == socket.AF_INET6:\n"
        "    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n"
        "s.bind(('::' if family == socket.AF_INET6 else '0.0.0.0', %d))\n"
        "out = open(sys.argv[1], 'a')\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    data, _ = s.recvfrom(4096)\n"
        "    out.write(data.decode() + '\\n'); out.flush()\n" % PORT)

    def __init__(self, topo, tmp: Path, hosts: dict[str, str]):
        self.files = {name: tmp / f"{name}.received" for name in hosts}
        self.procs = []
        for name, family in hosts.items():
            self.files[name].write_text("")
            proc = topo.host(name).popen([sys.executable, "-c", self.SCRIPT,
                                          str(self.files[name]), family])
            assert proc.stdout.readline().strip() == b"ready"
            self.procs.append(proc)

    def received(self) -> dict[str, list[str]]:
        return {name: path.read_text().split() for name, path in self.files.items()}

    def stop(self):
        for proc in self.procs:
            proc.terminate()
            proc.wait(5)


INJECT = """
import socket, sys
from ipaddress import ip_address
sys.path.insert(0, {repo!r})
from lisp_app.protocol import DataHeader
from lisp_app.dataplane.frames import udp_frame

def inner(src, dst, text):
    # an IPv4 or IPv6 packet carrying a UDP datagram (udp_frame's Ethernet header stripped)
    return udp_frame('02:00:00:00:00:01', '02:00:00:00:00:02', ip_address(src), ip_address(dst),
                     40000, {port}, text.encode())[14:]

family = socket.AF_INET6 if ':' in {rloc!r} else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.bind(({source!r}, 0))
for header, packet in {packets}:
    s.sendto(bytes.fromhex(header) + (inner(*packet) if isinstance(packet, list)
                                       else bytes.fromhex(packet)), ({rloc!r}, 4341))
"""


def inject(topo, source: str, rloc: str, packets: list) -> None:
    """Send UDP 4341 datagrams from the underlay router: (header hex, [inner src, dst, text]) or
    (header hex, raw payload hex)."""
    script = INJECT.format(repo=str(REPO), port=PORT, rloc=rloc, source=source,
                           packets=repr(packets))
    out = topo.host("r").cmd(f"{sys.executable} - <<'EOF'\n{script}EOF")
    assert "Traceback" not in out, out


def hdr(**fields) -> str:
    from lisp_app.protocol import DataHeader
    return DataHeader(**fields).encode().hex()


def test_classic_and_gpe_sites_ping_both_ways_with_cold_caches(topo, tmp_path):
    x1, x2 = topo.xtrs["x1"], topo.xtrs["x2"]
    before1, before2 = counters(x1), counters(x2)
    for first, second, dst in (("h1", "h2", "10.2.0.10"), ("h2", "h1", "10.1.0.10")):
        cold(topo)
        cap = Capture(topo, tmp_path / f"{first}.pcap")
        sent, received, out = ping(topo.host(first), dst, count=5)
        packets = cap.stop()
        assert (sent, received) == (5, 5), out
        assert not find_problems(packets)
        data = layers(packets, "lisp-data")
        from_x1 = [d for d in data if outer_ip(d)["ip.src"] == "192.0.2.1"]
        from_x2 = [d for d in data if outer_ip(d)["ip.src"] == "198.51.100.1"]
        assert len(from_x1) >= 5 and len(from_x2) >= 5, (len(from_x1), len(from_x2))
        # x1: strict RFC 9300 (I bit only: P bit and next protocol zero); x2: LISP-GPE (I and P)
        assert {flags(d) for d in from_x1} == {0x08}
        assert {flags(d) for d in from_x2} == {0x0C}
        for d in data:
            assert d["lisp-data"]["lisp-data.iid"] == "1000"
    assert wait_counter(x1, "classic_sent", before1["classic_sent"] + 10) \
        >= before1["classic_sent"] + 10
    assert wait_counter(x2, "classic_received", before2["classic_received"] + 10) \
        >= before2["classic_received"] + 10
    after2 = counters(x2)
    assert after2["classic_dropped"] == before2["classic_dropped"]
    assert after2["received"] > before2["received"]  # the decapsulation flows counted them too


def test_injected_classic_packets_reach_the_host_of_their_instance_id(topo, tmp_path):
    """Every flag mix of RFC 9300 reaches the host of the header's instance-id (0 without the
    I bit): nonces, map-versions and locator-status bits are never read as an instance-id."""
    x2 = topo.xtrs["x2"]
    ping(topo.host("h1"), "10.2.0.10", count=1)  # x2 knows h2 (and learns the site MACs)
    ping(topo.host("hb1"), "10.2.0.10", count=1)
    before = counters(x2)
    rx = Receivers(topo, tmp_path, {"h2": "6", "hb2": "4"})
    v4, v6 = ("10.1.0.10", "10.2.0.10"), ("2001:db8:1::10", "2001:db8:2::10")
    cases = [
        (hdr(instance_id=1000), [*v4, "h2-i"]),
        (hdr(instance_id=1000, nonce=0x123456), [*v4, "h2-ni"]),
        (hdr(instance_id=1000, nonce=0xABCDEF, lsbs=3), [*v4, "h2-nli"]),
        (hdr(instance_id=1000, nonce=0x000001, echo_nonce=True), [*v4, "h2-nei"]),
        (hdr(instance_id=1000, map_version=(1, 2), lsbs=1), [*v4, "h2-vli"]),
        (hdr(instance_id=1000, nonce=0x42), [*v6, "h2-ni-v6"]),
        (hdr(), [*v4, "hb2-plain"]),
        (hdr(nonce=1000), [*v4, "hb2-n"]),      # a nonce of 1000 is no instance-id
        (hdr(lsbs=0x3E8), [*v4, "hb2-l"]),      # nor are 32 locator-status bits
        (hdr(instance_id=0, nonce=7), [*v4, "hb2-ni0"]),
        (hdr(instance_id=1000, next_protocol=1), [*v4, "h2-gpe"]),  # GPE passes untouched
    ]
    try:
        inject(topo, "198.51.100.254", "198.51.100.1", cases)
        deadline = time.monotonic() + 10
        want_h2 = sorted(c[1][2] for c in cases if c[1][2].startswith("h2"))
        want_hb2 = sorted(c[1][2] for c in cases if c[1][2].startswith("hb2"))
        while time.monotonic() < deadline:
            got = rx.received()
            if sorted(got["h2"]) == want_h2 and sorted(got["hb2"]) == want_hb2:
                break
            time.sleep(0.3)
    finally:
        rx.stop()
    got = rx.received()
    assert sorted(got["h2"]) == want_h2
    assert sorted(got["hb2"]) == want_hb2
    classic = len(cases) - 1
    assert wait_counter(x2, "classic_received", before["classic_received"] + classic) \
        >= before["classic_received"] + classic
    assert counters(x2)["classic_dropped"] == before["classic_dropped"]


def test_garbage_on_4341_is_dropped_and_counted(topo, tmp_path):
    x2 = topo.xtrs["x2"]
    before = counters(x2)
    rx = Receivers(topo, tmp_path, {"h2": "6"})
    garbage = [
        (hdr(instance_id=1000), "00" * 28),                      # inner neither IPv4 nor IPv6
        (hdr(instance_id=1000), "45000014"),                     # too short for IPv4
        (hdr(instance_id=1000), "60000000" + "00" * 20),         # too short for IPv6
        ("88000001" + "0003e800", "ff" * 40),                    # version nibble 15
        ("9800000100" + "03e800", "45" + "00" * 27),             # N and V together
    ]
    try:
        inject(topo, "198.51.100.254", "198.51.100.1", garbage)
        assert wait_counter(x2, "classic_dropped", before["classic_dropped"] + len(garbage)) \
            == before["classic_dropped"] + len(garbage)
    finally:
        rx.stop()
    assert rx.received()["h2"] == []
    text = x2.lispctl("mapstat")
    assert "UDP 4341 packets dropped (not a valid LISP packet)" in text


def test_ipv6_rlocs_carry_classic_headers(tmp_path):
    """IPv6 outer headers (the UDP checksum is mandatory there and fixed incrementally on both
    rewrites): x1 sends RFC 9300 headers over IPv6 RLOCs, and classic packets injected over IPv6
    reach the host."""
    x1 = site_spec(1, ipv6_rloc=True, encapsulation="lisp")
    x2 = site_spec(2, ipv6_rloc=True)
    with TwoSites(x1, x2, rundir=str(tmp_path)) as t:
        wait_ipv6_next_hops(t)
        cap = Capture(t, tmp_path / "v6.pcap")
        sent, received, out = ping(t.host("h1"), "10.2.0.10", count=5)
        sent6, received6, out6 = ping(t.host("h2"), "2001:db8:1::10", count=5)
        packets = cap.stop()
        assert (sent, received) == (5, 5), out
        assert (sent6, received6) == (5, 5), out6
        assert not find_problems(packets)
        over_v6 = [d for d in layers(packets, "lisp-data")
                   if outer_ipv6(d).get("ipv6.src") == "2001:db8:ff01::1"]
        assert len(over_v6) >= 10 and {flags(d) for d in over_v6} == {0x08}, len(over_v6)
        rx = Receivers(t, tmp_path, {"h2": "6"})
        try:
            inject(t, "2001:db8:ff02::254", "2001:db8:ff02::1", [
                (hdr(instance_id=1000, nonce=0x5A5A5A, lsbs=1), ["10.1.0.10", "10.2.0.10",
                                                                 "v6-nli"]),
                (hdr(instance_id=1000), ["2001:db8:1::10", "2001:db8:2::10", "v6-i-v6"]),
                (hdr(instance_id=1000), "00" * 30),
            ])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(rx.received()["h2"]) < 2:
                time.sleep(0.3)
        finally:
            rx.stop()
        assert sorted(rx.received()["h2"]) == ["v6-i-v6", "v6-nli"]
        assert wait_counter(t.xtrs["x2"], "classic_dropped", 1) == 1


def test_the_programs_go_with_the_controller_and_a_failed_attach_stops_it(topo):
    """The controller attaches the programs at start, removes them on exit, and refuses to run
    when it cannot attach them (naming the interface and the reason)."""
    import yaml
    x1 = topo.xtrs["x1"]
    intf = x1.spec.uplink

    def attached():
        link = json.loads(x1.sh(f"ip -j -d link show dev {intf}"))[0]
        tc = x1.sh(f"tc filter show dev {intf} egress")
        return "xdp" in link, "lisp_encap" in tc

    assert attached() == (True, True)
    x1.stop_controller()
    assert attached() == (False, False)
    bad = x1.config()
    bad["underlay"]["uplink_interface"] = "nosuch0"
    path = x1.dir / "bad.yaml"
    path.write_text(yaml.safe_dump(bad, sort_keys=False))
    out = x1.sh(f"cd {REPO} && {sys.executable} run_controller.py --config {path} 2>&1; "
                f"echo rc=$?", check=False)
    assert "rc=3" in out, out
    assert "interface nosuch0" in out and "no such interface" in out, out
    assert "classic_decap: false" in out, out
    x1.start_controller()
    x1.wait_programmed()
    assert attached() == (True, True)
    sent, received, out = ping(topo.host("h1"), "10.2.0.10", count=3)
    assert received == sent, out
