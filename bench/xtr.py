"""Data-plane figures of two OVS xTRs driven by lisp_app, against plain forwarding measured in the
same run, on the same namespaces, veths, OVS userspace datapaths and underlay router.

Topology: topologies/two_sites.py (h1 10.1.0.10 - x1 - r - x2 - h2 10.2.0.10, instance-id 1000),
built with interface tag "b" (--tag) so that it can run beside the integration tests. The hosts
keep MTU 1500 throughout.

The run alternates LISP (LISP-GPE headers, then classic RFC 9300 headers) and the baseline R
times (--rounds, default 3): throughput on these small shared machines varies by tens of percent
from one run to the next (measured: single runs of the same configuration between 0.47 and 0.93
Gbit/s), so the TCP and UDP figures are medians over the rounds and each round's ratios are
printed too. Each round:

1. LISP warm-up. The controllers start with empty map-caches (round 1: fresh topology; later
   rounds: restarted). A ping h1 -> h2 (its loss and first RTT are reported: the controller holds
   the first packet while it resolves the mapping), a ping h2 -> h1, then one
   ``ping -M do -s 1472`` each way so that the hosts learn the path MTU from the ICMP
   "fragmentation needed" our controller sends (1464 = 1500 - 36 bytes of outer IPv4, UDP and
   LISP headers). What follows measures this steady state.
2. Round 1 only:
   - warm RTT, the median of 10 pings h1 -> h2;
   - OpenFlow echo round trip: ``GET /echo?bridge=lisp&count=50`` on x1's API (LispClient.echo,
     run in x1's namespace): controller -> x1's br-lisp -> controller;
   - miss-to-flow-installed latency, S samples (--samples, default 30): x2's map-cache stays
     warm; x1's entry for [1000]10.2.0.0/24 is removed through the API (``lispctl map del``), then
     ONE ping h1 -> h2. Its RTT minus the warm RTT is the time from the miss (packet-in) through
     Map-Request, Map-Reply, flow installation and re-injection of the held packet. The samples
     are spaced by the ITR's per-EID Map-Request rate limit (timers.request_min_interval, 1 s,
     + 0.1 s): a miss sooner than that is dropped, not held. Reported: median and p99, p99
     interpolated linearly between the closest order statistics (numpy's default; with 30 samples
     it lies between the two largest, 71% of the way to the largest). x1's counters (misses,
     Map-Requests, re-injected packets) are reported so one can check they moved once a sample.
3. LISP traffic: warm RTT; TCP h1 -> h2 with iperf3 -J (server in h2, client in h1, N seconds,
   --seconds, default 8, one stream; the figure is the receiver's rate; ``ss -tin`` in h1 half-way
   through gives the MSS and path MTU in use); UDP with iperf3 -u -b 0 -l 64 for N/2 seconds
   (64-byte payloads, 92-byte IP packets, unlimited send rate; the figure is the packets the
   server received per second; --no-udp skips it).
   Header check: x2's XDP decapsulation program (attached in every phase, underlay.classic_decap
   is true by default) counts the UDP 4341 packets it saw as GPE and those it rewrote from classic
   headers; read through ``python -m lisp_app.classic show`` in x2's namespace before and after
   this phase, its "gpe" counter must move and its "rewritten" counter must not.
   Packet-ins per second over the TCP runs: packets that reached a punt-to-controller action on
   either bridge of either xTR, divided by the runs' duration. Counted exactly: for punt flows
   behind an OpenFlow meter (all of ours but the underlay ARP one) the meter's packet_in_count,
   for unmetered punt flows their n_packets. The plain sum of n_packets over flows whose actions
   contain CONTROLLER is printed too, but it is NOT a packet-in count: OVS translates both
   branches of ``check_pkt_larger`` and credits the MTU table's punt flow with every encapsulated
   packet, punted or not (measured here: its meter stays put while its n_packets follows the
   encapsulation flow's).
4. Classic LISP: both controllers are stopped, their flows deleted, and restarted with
   ``underlay.encapsulation: lisp``, so that the tc egress program on each uplink rewrites OVS's
   GPE header into a strict RFC 9300 one (flags 0x08, instance-id, no next-protocol byte) in both
   directions, x1 -> x2 and x2 -> x1, and each receiving ETR's XDP program rewrites it back into
   GPE before OVS reads the frame (lisp_app/classic.py). The same warm-up as in 1 (cold caches,
   the 1472-byte DF pings: the classic header is as long as GPE's, so the path MTU is 1464 again)
   and the same measurements as in 3 follow. Header check: the programs' counters (``python -m
   lisp_app.classic show`` in each xTR's namespace) before and after the TCP and UDP runs: each
   xTR's encapsulation program's "rewritten" (classic headers sent) and decapsulation program's
   "rewritten" (classic headers received) must have moved, the decapsulation programs' "gpe"
   must not (no GPE header reached either uplink); otherwise the run stops with an error. The
   specs are set back to ``encapsulation: gpe`` for the next LISP phase (the controllers are
   stopped in 5, and the tc program detached with them).
5. Baseline, plain forwarding: each xTR's controller is stopped and every flow on both its
   bridges deleted; a patch-port pair (plain-l on br-lisp, plain-u on br-u) joins the bridges,
   and static OpenFlow 1.3 flows make each xTR an IPv4 router for its site:
     br-lisp: ARP requests for the site gateway (10.n.0.1) are answered in the switch with the
       gateway MAC the host already has; IPv4 from the site port to the other site's /24 ->
       dec_ttl, eth_src = br-u's MAC, eth_dst = the router's MAC, out plain-l; IPv4 from plain-l
       to the site host -> dec_ttl, eth_src = gateway MAC, eth_dst = host MAC, out the site port.
     br-u: from plain-u -> out the uplink; IPv4 from the uplink to the site's /24 -> out plain-u;
       everything else NORMAL (ARP between the router and the RLOC address on br-u's LOCAL port).
   The router r gets routes 10.1.0.0/24 via 192.0.2.1 and 10.2.0.0/24 via 198.51.100.1 (the
   xTRs' RLOCs). The hosts' route caches are flushed so that they forget the LISP path MTU and
   use 1500 (checked with a 1472-byte DF ping each way). Baseline packets thus cross the same
   veths, userspace datapaths (both bridges of each xTR, joined by a patch port instead of the
   VXLAN-GPE port and OVS's native tunnelling) and kernel router, unencapsulated. The same warm
   RTT, TCP and UDP measurements follow. The next round removes the patch ports, flows and
   routes and restarts the controllers.

4b. With --xdp-cost only: GPE without the uplink programs. Both controllers are restarted with
   ``underlay.classic_decap: false`` (no XDP program attached: the site accepts LISP-GPE only)
   and the same warm-up and measurements as in 3 follow, so that the cost of the XDP program on
   the GPE path is a ratio of one run (GPE with the program / GPE without it). The next LISP
   phase puts the program back.

The RESULT lines come last; ratios are LISP / plain (the GPE phase) and classic / GPE, from
medians over this run's rounds (with --xdp-cost, GPE / GPE without XDP too).
Progress goes to stderr.

    sudo .venv/bin/python bench/xtr.py [--seconds N] [--samples S] [--rounds R] [--quick]
                                       [--no-udp] [--xdp-cost] [--json PATH]

--quick: 3-second TCP runs, 5 latency samples, 1 round unless --seconds / --samples / --rounds
say otherwise. The default run takes about 3.5 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import run_and_report  # noqa: E402

from lisp_app.config import TimersConfig  # noqa: E402

H1_ADDR, H2_ADDR = "10.1.0.10", "10.2.0.10"
SITE_ADDR = {1: H1_ADDR, 2: H2_ADDR}
RLOC = {1: "192.0.2.1", 2: "198.51.100.1"}
REMOTE_PREFIX = "[1000]10.2.0.0/24"  # x1's map-cache entry removed for each latency sample
PATCH_LISP, PATCH_UNDERLAY = "plain-l", "plain-u"
ECHO_COUNT = 50
WARM_PINGS = 10
UDP_PAYLOAD = 64
DEFAULT_GATEWAY_MAC = "02:00:00:00:00:01"
DUMP_SEPARATOR = "==meters=="
REQUEST_SPACING = TimersConfig.request_min_interval + 0.1  # seconds between two latency samples

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench/xtr {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr,
          flush=True)


# -- small parsers ---------------------------------------------------------------------------------

def ping_rtts_ms(output: str) -> list[float]:
    return [float(v) for v in re.findall(r"time=([\d.]+) ms", output)]


def ping_counts(output: str) -> tuple[int, int]:
    m = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    if not m:
        raise RuntimeError(f"cannot read ping output: {output!r}")
    return int(m.group(1)), int(m.group(2))


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest order statistics (numpy's default method)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def parse_flows(dump: str) -> list[dict]:
    """``ovs-ofctl dump-flows`` lines as {n_packets, actions, text}."""
    flows = []
    for line in dump.splitlines():
        m = re.search(r"n_packets=(\d+).* actions=(\S+)", line)
        if m:
            flows.append({"n_packets": int(m.group(1)), "actions": m.group(2),
                          "text": line.strip()})
    return flows


def flow_key(line: str) -> str:
    """A dump-flows line without its statistics: identifies the flow across two dumps."""
    return re.sub(r"\b(duration|n_packets|n_bytes|idle_age|hard_age)=[^, ]+,? ?", "", line)


def parse_meter_packets(dump: str) -> dict[int, int]:
    """``ovs-ofctl meter-stats``: meter id -> packet_in_count."""
    return {int(m.group(1)): int(m.group(2))
            for m in re.finditer(r"meter:(\d+) flow_count:\d+ packet_in_count:(\d+)", dump)}


def parse_ss(output: str) -> list[dict]:
    """``ss -tin``: per connection, the numeric fields we care about."""
    conns = []
    for block in re.split(r"\n(?=\S)", output):
        info = {}
        for key in ("mss", "pmtu", "advmss", "bytes_sent", "bytes_acked"):
            m = re.search(rf"\b{key}:(\d+)", block)
            if m:
                info[key] = int(m.group(1))
        if "mss" in info:
            conns.append(info)
    return conns


def mac_of(node, intf: str) -> str:
    return node.cmd(f"cat /sys/class/net/{intf}/address").strip()


# -- punt counting ---------------------------------------------------------------------------------

def punt_snapshot(topo) -> dict:
    """Per xTR and bridge: exact punts (meters + unmetered punt flows) and the naive sum of
    n_packets over every flow whose actions contain CONTROLLER (see the module docstring)."""
    snap = {}
    for name, xtr in sorted(topo.xtrs.items()):
        for bridge in ("br-lisp", "br-u"):
            # one shell command, so that the two dumps are as close in time as they can be
            mgmt = f"unix:{xtr.dir}/{bridge}.mgmt"
            flow_dump, _, meter_dump = xtr.ofctl(
                f"dump-flows {mgmt} && echo {DUMP_SEPARATOR} && "
                f"ovs-ofctl -O OpenFlow13 meter-stats {mgmt}").partition(DUMP_SEPARATOR)
            flows = [f for f in parse_flows(flow_dump) if "CONTROLLER" in f["actions"]]
            meters_used = set()
            unmetered = 0
            for f in flows:
                m = re.search(r"meter:(\d+)", f["actions"])
                if m:
                    meters_used.add(int(m.group(1)))
                else:
                    unmetered += f["n_packets"]
            meter_packets = parse_meter_packets(meter_dump)
            exact = unmetered + sum(meter_packets.get(m, 0) for m in meters_used)
            snap[f"{name}/{bridge}"] = {
                "exact": exact, "naive": sum(f["n_packets"] for f in flows),
                "flows": {flow_key(f["text"]): f["n_packets"] for f in flows}}
    return snap


def punt_delta(before: dict, after: dict, seconds: float) -> dict:
    exact = sum(after[k]["exact"] - before[k]["exact"] for k in after)
    naive = sum(after[k]["naive"] - before[k]["naive"] for k in after)
    moved = {}
    for k in after:
        for flow, n in after[k]["flows"].items():
            d = n - before[k]["flows"].get(flow, 0)
            if d:
                moved[f"{k}: {flow}"] = d
    return {"packet_ins": exact, "packet_ins_per_s": exact / seconds,
            "controller_flow_n_packets": naive,
            "controller_flow_n_packets_per_s": naive / seconds,
            "controller_flows_that_moved": moved, "seconds": seconds}


# -- measurements ----------------------------------------------------------------------------------

def ping_ok(host, dst: str, count: int = 3, extra: str = "") -> str:
    out = host.cmd(f"ping -c {count} -i 0.2 -W 3 {extra} {dst}")
    sent, received = ping_counts(out)
    if received != sent:
        raise RuntimeError(f"ping {dst} lost packets: {out}")
    return out


def warm_up(topo) -> dict:
    h1, h2 = topo.host("h1"), topo.host("h2")
    cold = h1.cmd(f"ping -c 3 -i 0.2 -W 3 {H2_ADDR}")
    sent, received = ping_counts(cold)
    rtts = ping_rtts_ms(cold)
    first_seq = re.search(r"icmp_seq=(\d+)", cold)
    ping_ok(h2, H1_ADDR)
    pmtu = {}
    for name, host, dst in (("h1", h1, H2_ADDR), ("h2", h2, H1_ADDR)):
        out = host.cmd(f"ping -c 1 -W 2 -M do -s 1472 {dst}")
        m = re.search(r"mtu ?= ?(\d+)", out)
        pmtu[name] = int(m.group(1)) if m else None
    ping_ok(h1, H2_ADDR, count=2)
    return {"cold_ping_sent": sent, "cold_ping_received": received,
            "cold_first_reply_seq": int(first_seq.group(1)) if first_seq else None,
            "cold_first_rtt_ms": rtts[0] if rtts else None,
            "icmp_frag_needed_mtu": pmtu}


def warm_rtt_ms(topo) -> dict:
    out = topo.host("h1").cmd(f"ping -c {WARM_PINGS} -i 0.1 -W 2 {H2_ADDR}")
    rtts = ping_rtts_ms(out)
    if not rtts:
        raise RuntimeError(f"no warm ping replies: {out}")
    ttl = re.search(r"ttl=(\d+)", out)
    return {"p50": statistics.median(rtts), "min": min(rtts), "max": max(rtts),
            "replies": len(rtts), "sent": WARM_PINGS, "reply_ttl": int(ttl.group(1))}


def echo_rtt_ms(topo) -> dict:
    from topologies.lispnode import API_PORT
    code = ("import json; from lisp_app.api.client import LispClient; "
            f"print(json.dumps(LispClient('http://127.0.0.1:{API_PORT}')"
            f".echo('lisp', {ECHO_COUNT})))")
    out = topo.xtrs["x1"].sh(f"{sys.executable} -c \"{code}\"")
    rtts = [1000.0 * v for v in json.loads(out.strip().splitlines()[-1])["rtt"]]
    if not rtts:
        raise RuntimeError("the echo endpoint returned no round trips")
    return {"p50": statistics.median(rtts), "p99": percentile(rtts, 99), "min": min(rtts),
            "count": len(rtts)}


UDP_ECHO_PORT = 7777
UDP_ECHO_SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
"""
UDP_PING = r"""
import json, socket, sys, time
src, dst, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
s.settimeout(1.0)
payload = bytes(64)  # about a Map-Request's size
rtts, lost = [], 0
for i in range(count):
    start = time.perf_counter()
    s.sendto(payload, (dst, port))
    try:
        s.recvfrom(2048)
        rtts.append(time.perf_counter() - start)
    except socket.timeout:
        lost += 1
    time.sleep(0.01)
print(json.dumps({"rtt": rtts, "lost": lost}))
"""


def udp_rtt_ms(topo, count: int = ECHO_COUNT) -> dict:
    """One UDP round trip on the Map-Request's path: x1's RLOC -> underlay -> x2's RLOC and
    back, through both underlay bridges and the router (a plain echo server in x2's namespace,
    a client in x1's; 64-byte payloads, one at a time)."""
    x1, x2 = topo.xtrs["x1"], topo.xtrs["x2"]
    server_py = topo.rundir / "udp_echo.py"
    server_py.write_text(UDP_ECHO_SERVER)
    client_py = topo.rundir / "udp_ping.py"
    client_py.write_text(UDP_PING)
    server = x2.host.popen([sys.executable, str(server_py), RLOC[2], str(UDP_ECHO_PORT)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("UDP echo server did not start")
        out = x1.sh(f"{sys.executable} {client_py} {RLOC[1]} {RLOC[2]} {UDP_ECHO_PORT} {count}")
    finally:
        server.terminate()
        server.wait(5)
    result = json.loads(out.strip().splitlines()[-1])
    rtts = [1000.0 * v for v in result["rtt"]]
    if not rtts:
        raise RuntimeError("no UDP echo replies between the RLOCs")
    return {"p50": statistics.median(rtts), "p99": percentile(rtts, 99), "min": min(rtts),
            "count": len(rtts), "lost": result["lost"]}


def x1_counters(topo) -> dict:
    return json.loads(topo.xtrs["x1"].lispctl("--json", "mapstat"))["counters"]


def miss_latency_ms(topo, samples: int, warm_ms: float) -> dict:
    x1, h1 = topo.xtrs["x1"], topo.host("h1")
    before = x1_counters(topo)
    rtts, lost = [], 0
    last_miss = time.monotonic()  # the warm-up pings asked for the same EID
    for i in range(samples):
        # the ITR sends at most one Map-Request per EID per request_min_interval and drops a
        # miss that comes sooner: space the samples out
        time.sleep(max(0.0, last_miss + REQUEST_SPACING - time.monotonic()))
        x1.lispctl("map", "del", f"'{REMOTE_PREFIX}'")
        last_miss = time.monotonic()
        out = h1.cmd(f"ping -c 1 -W 3 {H2_ADDR}")
        got = ping_rtts_ms(out)
        if got:
            rtts.append(got[0])
        else:
            lost += 1
            ping_ok(h1, H2_ADDR, count=1)  # the mapping must be back before the next sample
            last_miss = time.monotonic()
        if (i + 1) % 5 == 0 or i + 1 == samples:
            progress(f"miss latency: {i + 1}/{samples} samples"
                     + (f", last RTT {rtts[-1]:.2f} ms" if rtts else ""))
    after = x1_counters(topo)
    moved = {k: after[k] - before[k] for k in ("misses", "requests_sent", "requests_answered",
                                                "reinjected", "buffered")}
    if moved["misses"] < samples or moved["requests_sent"] < samples:
        progress(f"WARNING: x1's counters moved less than once per sample: {moved}")
    latencies = [max(r - warm_ms, 0.0) for r in rtts]
    return {"samples": samples, "lost": lost, "rtt_ms": rtts, "latency_ms": latencies,
            "warm_rtt_ms": warm_ms,
            "p50": statistics.median(latencies) if latencies else math.nan,
            "p99": percentile(latencies, 99), "max": max(latencies) if latencies else math.nan,
            "p99_method": "linear interpolation between closest order statistics",
            "x1_counter_deltas": moved}


def iperf3_json(output: str, what: str) -> dict:
    try:
        return json.loads(output)
    except ValueError:
        raise RuntimeError(f"iperf3 ({what}) did not print JSON: {output[-2000:]!r}") from None


def tcp_throughput(topo, seconds: int) -> dict:
    h1 = topo.host("h1")
    client = h1.popen(["iperf3", "-c", H2_ADDR, "-t", str(seconds), "-J"],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(seconds / 2 + 0.3)
    connections = parse_ss(h1.cmd(f"ss -tin dst {H2_ADDR}"))
    out, _ = client.communicate(timeout=seconds + 60)
    data = iperf3_json(out, "tcp")
    if "error" in data:
        raise RuntimeError(f"iperf3 tcp: {data['error']}")
    end = data["end"]
    data_conn = max(connections, key=lambda c: c.get("bytes_acked", 0), default={})
    return {"gbps": end["sum_received"]["bits_per_second"] / 1e9,
            "sender_gbps": end["sum_sent"]["bits_per_second"] / 1e9,
            "retransmits": end["sum_sent"].get("retransmits"),
            "seconds": end["sum_received"]["seconds"],
            "tcp_mss_default": data["start"].get("tcp_mss_default"),
            "mss_mid_run": data_conn.get("mss"), "pmtu_mid_run": data_conn.get("pmtu"),
            "sender_cpu_percent": end.get("cpu_utilization_percent", {}).get("host_total"),
            "receiver_cpu_percent": end.get("cpu_utilization_percent", {}).get("remote_total")}


def udp_rate(topo, seconds: int) -> dict:
    out = topo.host("h1").cmd(f"iperf3 -c {H2_ADDR} -u -b 0 -l {UDP_PAYLOAD} -t {seconds} -J")
    data = iperf3_json(out, "udp")
    if "error" in data:
        raise RuntimeError(f"iperf3 udp: {data['error']}")
    total = data["end"]["sum"]
    received = total["packets"] - total["lost_packets"]
    return {"received_pps": received / total["seconds"], "sent_pps": total["packets"] /
            total["seconds"], "lost_percent": total["lost_percent"], "seconds": total["seconds"],
            "payload_bytes": UDP_PAYLOAD}


def traffic(topo, label: str, seconds: int, udp_seconds: int) -> dict:
    """Warm RTT, TCP and (if udp_seconds) UDP h1 -> h2, counting punts over each run."""
    result = {"rtt_ms": warm_rtt_ms(topo)}
    progress(f"{label}: TCP h1 -> h2 for {seconds} s")
    before, start = punt_snapshot(topo), time.monotonic()
    result["tcp"] = tcp_throughput(topo, seconds)
    result["punts_tcp"] = punt_delta(before, punt_snapshot(topo), time.monotonic() - start)
    progress(f"{label}: TCP {result['tcp']['gbps']:.3f} Gbit/s, "
             f"{result['punts_tcp']['packet_ins']} packet-ins")
    if udp_seconds:
        progress(f"{label}: UDP {UDP_PAYLOAD}-byte payloads for {udp_seconds} s")
        before, start = punt_snapshot(topo), time.monotonic()
        result["udp"] = udp_rate(topo, udp_seconds)
        result["punts_udp"] = punt_delta(before, punt_snapshot(topo), time.monotonic() - start)
    return result


# -- switching between LISP and the no-LISP baseline -----------------------------------------------

def to_plain(topo) -> None:
    """Stop the controllers and make both xTRs static-flow IPv4 routers (module docstring, 5)."""
    r = topo.host("r")
    for n, other in ((1, 2), (2, 1)):
        xtr = topo.xtrs[f"x{n}"]
        host = topo.host(f"h{n}")
        xtr.stop_controller()
        gw_ip = f"10.{n}.0.1"
        neigh = re.search(r"lladdr (\S+)", host.cmd(f"ip neigh show {gw_ip}"))
        gw_mac = neigh.group(1) if neigh else DEFAULT_GATEWAY_MAC
        host_mac = mac_of(host, topo.intf(f"h{n}"))
        router_mac = mac_of(r, topo.intf(f"r{n}"))
        underlay_mac = xtr.sh("cat /sys/class/net/br-u/address").strip()
        site = xtr.spec.site_ports[0].intf
        uplink = xtr.spec.uplink
        for bridge in ("br-lisp", "br-u"):
            xtr.ofctl(f"del-flows {bridge}")
        xtr.vsctl(f"add-port br-lisp {PATCH_LISP} -- set interface {PATCH_LISP} type=patch "
                  f"options:peer={PATCH_UNDERLAY} -- add-port br-u {PATCH_UNDERLAY} "
                  f"-- set interface {PATCH_UNDERLAY} type=patch options:peer={PATCH_LISP}")
        arp_reply = ("move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],"
                     f"set_field:{gw_mac}->eth_src,set_field:2->arp_op,"
                     "move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],"
                     "move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],"
                     f"set_field:{gw_mac}->arp_sha,set_field:{gw_ip}->arp_spa,IN_PORT")
        flows = {
            "br-lisp": [
                f"priority=100,arp,in_port={site},arp_op=1,arp_tpa={gw_ip},actions={arp_reply}",
                f"priority=100,ip,in_port={site},nw_dst=10.{other}.0.0/24,actions=dec_ttl,"
                f"set_field:{underlay_mac}->eth_src,set_field:{router_mac}->eth_dst,"
                f"output:{PATCH_LISP}",
                f"priority=100,ip,in_port={PATCH_LISP},nw_dst={SITE_ADDR[n]},actions=dec_ttl,"
                f"set_field:{gw_mac}->eth_src,set_field:{host_mac}->eth_dst,output:{site}",
            ],
            "br-u": [
                f"priority=100,in_port={PATCH_UNDERLAY},actions=output:{uplink}",
                f"priority=100,ip,in_port={uplink},nw_dst=10.{n}.0.0/24,"
                f"actions=output:{PATCH_UNDERLAY}",
                "priority=0,actions=NORMAL",
            ],
        }
        for bridge, lines in flows.items():
            for line in lines:
                xtr.ofctl(f"add-flow {bridge} '{line}'")
        r.cmd(f"ip route replace 10.{n}.0.0/24 via {RLOC[n]}")
    h1, h2 = topo.host("h1"), topo.host("h2")
    for host in (h1, h2):
        host.cmd("ip route flush cache")  # forget the LISP path MTU
    ping_ok(h1, H2_ADDR)
    ping_ok(h2, H1_ADDR)
    ping_ok(h1, H2_ADDR, count=1, extra="-M do -s 1472")  # the whole 1500-byte path
    ping_ok(h2, H1_ADDR, count=1, extra="-M do -s 1472")


def to_lisp(topo) -> None:
    """Undo to_plain: no patch ports, flows or router routes of ours; the controllers restarted
    (they come back with empty map-caches and reprogram their bridges)."""
    r = topo.host("r")
    for n in (1, 2):
        xtr = topo.xtrs[f"x{n}"]
        xtr.vsctl(f"del-port br-lisp {PATCH_LISP} -- del-port br-u {PATCH_UNDERLAY}")
        for bridge in ("br-lisp", "br-u"):
            xtr.ofctl(f"del-flows {bridge}")
        r.cmd(f"ip route del 10.{n}.0.0/24")
        xtr.start_controller()
    for xtr in topo.xtrs.values():
        xtr.wait_programmed()


# -- classic RFC 9300 headers (underlay.encapsulation: lisp) ---------------------------------------

def classic_counters(topo) -> dict:
    """Per xTR, the classic-LISP programs' counters as ``python -m lisp_app.classic show`` prints
    them: {"x1": {"decap": {...}, "encap": {...}}, ...} (encap only where it is attached)."""
    out = {}
    for name, xtr in sorted(topo.xtrs.items()):
        text = xtr.sh(f"{sys.executable} -m lisp_app.classic show --config {xtr.config_path}")
        out[name] = json.loads(text[text.index("{"):])
    return out


def counter_delta(before: dict, after: dict) -> dict:
    return {xtr: {prog: {k: v - before.get(xtr, {}).get(prog, {}).get(k, 0)
                         for k, v in counters.items()}
                  for prog, counters in progs.items()}
            for xtr, progs in after.items()}


def set_encapsulation(topo, encapsulation: str, classic_decap: bool = True) -> None:
    """Restart both controllers with ``underlay.encapsulation`` and ``underlay.classic_decap``
    set (flows deleted first, as in to_lisp: they come back with empty map-caches and reprogram
    their bridges)."""
    for xtr in topo.xtrs.values():
        xtr.stop_controller()
        xtr.spec.encapsulation = encapsulation
        xtr.spec.classic_decap = classic_decap
        for bridge in ("br-lisp", "br-u"):
            xtr.ofctl(f"del-flows {bridge}")
        xtr.start_controller()
    for xtr in topo.xtrs.values():
        xtr.wait_programmed()


def check_gpe_headers(moved: dict) -> dict:
    """The GPE phase: x2's decapsulation program saw GPE headers and rewrote no classic one."""
    decap = moved["x2"]["decap"]
    ok = decap["gpe"] > 0 and decap["rewritten"] == 0
    if not ok:
        progress(f"WARNING: GPE phase, x2's XDP counters moved {decap}: expected gpe > 0 and "
                 "rewritten == 0")
    return {"ok": ok, "x2_decap": decap}


def check_classic_headers(moved: dict) -> dict:
    """The classic phase: classic headers sent and received by both xTRs, no GPE on the wire."""
    per_xtr = {}
    for name, progs in moved.items():
        per_xtr[name] = {"classic_sent": progs.get("encap", {}).get("rewritten", 0),
                         "classic_received": progs["decap"]["rewritten"],
                         "gpe_received": progs["decap"]["gpe"],
                         "dropped": progs["decap"]["dropped"]}
    ok = all(v["classic_sent"] > 0 and v["classic_received"] > 0 and v["gpe_received"] == 0
             for v in per_xtr.values())
    if not ok:
        raise RuntimeError(f"classic phase: the eBPF counters do not show classic headers both "
                           f"ways and no GPE: {per_xtr}")
    return {"ok": ok, **per_xtr}


# -- driver ----------------------------------------------------------------------------------------

def environment() -> dict:
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return None
    return {"cpus": os.cpu_count(), "kernel": platform.release(),
            "ovs": first_line(["ovs-vswitchd", "--version"]),
            "iperf3": first_line(["iperf3", "--version"]), "python": platform.python_version()}


def run(args) -> dict:
    from topologies.two_sites import TwoSites, site_spec

    udp_seconds = 0 if args.no_udp else max(1, args.seconds // 2)
    figures = {"parameters": {"seconds": args.seconds, "udp_seconds": udp_seconds,
                              "samples": args.samples, "rounds": args.rounds, "tag": args.tag},
               "environment": environment(), "rounds": []}
    progress(f"building the two-site topology (tag {args.tag!r})")
    with TwoSites(site_spec(1, tag=args.tag), site_spec(2, tag=args.tag), tag=args.tag) as topo:
        server = topo.host("h2").popen(["iperf3", "-s", "-B", H2_ADDR],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for n in range(args.rounds):
                label = f"round {n + 1}/{args.rounds}"
                if n:
                    progress(f"{label}: back to LISP (restarting the controllers)")
                    to_lisp(topo)
                progress(f"{label}: warming map-caches and path MTU (pings both ways)")
                warm = warm_up(topo)
                if n == 0:
                    rtt = warm_rtt_ms(topo)
                    progress("OpenFlow echo round trips through x1's API")
                    figures["echo_rtt_ms"] = echo_rtt_ms(topo)
                    progress("UDP round trips between the RLOCs (the Map-Request's path)")
                    figures["udp_rtt_ms"] = udp_rtt_ms(topo)
                    progress(f"miss latency: {args.samples} samples, "
                             f"{REQUEST_SPACING:.1f} s apart")
                    figures["miss"] = miss_latency_ms(topo, args.samples, rtt["p50"])
                before = classic_counters(topo)
                lisp = traffic(topo, f"{label} LISP", args.seconds, udp_seconds)
                lisp["warm_up"] = warm
                lisp["headers"] = check_gpe_headers(
                    counter_delta(before, classic_counters(topo)))
                progress(f"{label}: classic RFC 9300 headers (controllers restarted with "
                         "encapsulation: lisp)")
                set_encapsulation(topo, "lisp")
                try:
                    progress(f"{label} classic: warming map-caches and path MTU")
                    classic_warm = warm_up(topo)
                    before = classic_counters(topo)
                    classic = traffic(topo, f"{label} classic", args.seconds, udp_seconds)
                    classic["warm_up"] = classic_warm
                    classic["headers"] = check_classic_headers(
                        counter_delta(before, classic_counters(topo)))
                finally:
                    for xtr in topo.xtrs.values():
                        xtr.spec.encapsulation = "gpe"  # to_plain stops the controllers
                no_xdp = None
                if args.xdp_cost:
                    progress(f"{label}: GPE without the XDP program (classic_decap: false)")
                    set_encapsulation(topo, "gpe", classic_decap=False)
                    try:
                        no_xdp_warm = warm_up(topo)
                        no_xdp = traffic(topo, f"{label} GPE without XDP", args.seconds,
                                         udp_seconds)
                        no_xdp["warm_up"] = no_xdp_warm
                    finally:
                        for xtr in topo.xtrs.values():
                            xtr.spec.classic_decap = True
                progress(f"{label}: baseline (controllers stopped, static router flows)")
                to_plain(topo)
                plain = traffic(topo, f"{label} plain", args.seconds, udp_seconds)
                figures["rounds"].append({"lisp": lisp, "classic": classic, "plain": plain,
                                          **({"gpe_no_xdp": no_xdp} if no_xdp else {})})
        finally:
            server.terminate()
            server.wait(10)
        progress("tearing down")
    figures["load_average"] = os.getloadavg()
    figures["summary"] = summarize(figures)
    return figures


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def summarize(figures: dict) -> dict:
    rounds = figures["rounds"]
    lisp_tcp = [r["lisp"]["tcp"]["gbps"] for r in rounds]
    plain_tcp = [r["plain"]["tcp"]["gbps"] for r in rounds]
    punt_windows = [r["lisp"]["punts_tcp"] for r in rounds]
    seconds = sum(w["seconds"] for w in punt_windows)
    summary = {
        "tcp_lisp_gbps": statistics.median(lisp_tcp),
        "tcp_plain_gbps": statistics.median(plain_tcp),
        "tcp_ratio_per_round": [ratio(a, b) for a, b in zip(lisp_tcp, plain_tcp)],
        "packet_ins": sum(w["packet_ins"] for w in punt_windows),
        "packet_ins_per_s": sum(w["packet_ins"] for w in punt_windows) / seconds,
        "controller_flow_n_packets_per_s":
            sum(w["controller_flow_n_packets"] for w in punt_windows) / seconds,
        "miss_latency_p50_ms": figures["miss"]["p50"],
        "miss_latency_p99_ms": figures["miss"]["p99"],
        "echo_rtt_p50_ms": figures["echo_rtt_ms"]["p50"],
        "udp_rtt_p50_ms": figures["udp_rtt_ms"]["p50"],
    }
    summary["miss_baseline_p50_ms"] = summary["echo_rtt_p50_ms"] + summary["udp_rtt_p50_ms"]
    summary["miss_overhead_p50_ms"] = (summary["miss_latency_p50_ms"]
                                       - summary["miss_baseline_p50_ms"])
    summary["tcp_ratio"] = ratio(summary["tcp_lisp_gbps"], summary["tcp_plain_gbps"])
    classic_tcp = [r["classic"]["tcp"]["gbps"] for r in rounds]
    summary["tcp_classic_gbps"] = statistics.median(classic_tcp)
    summary["tcp_classic_ratio"] = ratio(summary["tcp_classic_gbps"], summary["tcp_lisp_gbps"])
    summary["tcp_classic_ratio_per_round"] = [ratio(a, b) for a, b in zip(classic_tcp, lisp_tcp)]
    summary["miss_to_echo_ratio_p50"] = ratio(summary["miss_latency_p50_ms"],
                                              summary["echo_rtt_p50_ms"])
    if "udp" in rounds[0]["lisp"]:
        summary["udp_lisp_kpps"] = statistics.median(
            r["lisp"]["udp"]["received_pps"] / 1e3 for r in rounds)
        summary["udp_plain_kpps"] = statistics.median(
            r["plain"]["udp"]["received_pps"] / 1e3 for r in rounds)
        summary["udp_ratio"] = ratio(summary["udp_lisp_kpps"], summary["udp_plain_kpps"])
        summary["packet_ins_udp"] = sum(r["lisp"]["punts_udp"]["packet_ins"] for r in rounds)
        classic_udp = [r["classic"]["udp"]["received_pps"] / 1e3 for r in rounds]
        summary["udp_classic_kpps"] = statistics.median(classic_udp)
        summary["udp_classic_ratio"] = ratio(summary["udp_classic_kpps"],
                                             summary["udp_lisp_kpps"])
        summary["udp_classic_ratio_per_round"] = [
            ratio(a, r["lisp"]["udp"]["received_pps"] / 1e3) for a, r in zip(classic_udp, rounds)]
    if "gpe_no_xdp" in rounds[0]:
        no_xdp_tcp = [r["gpe_no_xdp"]["tcp"]["gbps"] for r in rounds]
        summary["tcp_no_xdp_gbps"] = statistics.median(no_xdp_tcp)
        summary["tcp_xdp_ratio"] = ratio(summary["tcp_lisp_gbps"], summary["tcp_no_xdp_gbps"])
        summary["tcp_xdp_ratio_per_round"] = [ratio(a, b) for a, b in zip(lisp_tcp, no_xdp_tcp)]
        if "udp" in rounds[0]["gpe_no_xdp"]:
            no_xdp_udp = [r["gpe_no_xdp"]["udp"]["received_pps"] / 1e3 for r in rounds]
            summary["udp_no_xdp_kpps"] = statistics.median(no_xdp_udp)
            summary["udp_xdp_ratio"] = ratio(summary["udp_lisp_kpps"],
                                             summary["udp_no_xdp_kpps"])
            summary["udp_xdp_ratio_per_round"] = [
                ratio(r["lisp"]["udp"]["received_pps"] / 1e3, b)
                for r, b in zip(rounds, no_xdp_udp)]
    return summary


def report(figures: dict) -> None:
    miss, echo, summary = figures["miss"], figures["echo_rtt_ms"], figures["summary"]
    print(f"environment: {figures['environment']}, load average after the run "
          f"{', '.join(f'{v:.2f}' for v in figures['load_average'])}")
    print(f"parameters: {figures['parameters']}")
    for n, rnd in enumerate(figures["rounds"], 1):
        wu = rnd["lisp"]["warm_up"]
        print(f"round {n}: cold ping h1 -> h2 {wu['cold_ping_received']}/{wu['cold_ping_sent']} "
              f"replies, first reply icmp_seq={wu['cold_first_reply_seq']} RTT "
              f"{wu['cold_first_rtt_ms']} ms; ICMP fragmentation-needed MTU "
              f"{wu['icmp_frag_needed_mtu']}")
        wu = rnd["classic"]["warm_up"]
        print(f"round {n} classic: cold ping h1 -> h2 {wu['cold_ping_received']}/"
              f"{wu['cold_ping_sent']} replies, first reply icmp_seq={wu['cold_first_reply_seq']} "
              f"RTT {wu['cold_first_rtt_ms']} ms; ICMP fragmentation-needed MTU "
              f"{wu['icmp_frag_needed_mtu']}")
        for name in ("lisp", "classic", "gpe_no_xdp", "plain"):
            if name not in rnd:
                continue
            run_ = rnd[name]
            tcp, rtt = run_["tcp"], run_["rtt_ms"]
            print(f"round {n} {name:<7} RTT p50 {rtt['p50']:.3f} ms ({rtt['replies']}/"
                  f"{rtt['sent']}, reply ttl {rtt['reply_ttl']}); TCP {tcp['gbps']:.3f} Gbit/s "
                  f"over {tcp['seconds']:.1f} s (retransmits {tcp['retransmits']}, mss "
                  f"{tcp['mss_mid_run']}, pmtu {tcp['pmtu_mid_run']}, iperf3 tcp_mss_default "
                  f"{tcp['tcp_mss_default']})")
            if "udp" in run_:
                udp = run_["udp"]
                print(f"round {n} {name:<7} UDP {udp['payload_bytes']}-byte payload: received "
                      f"{udp['received_pps'] / 1e3:.1f} kpps (sent {udp['sent_pps'] / 1e3:.1f} "
                      f"kpps, lost {udp['lost_percent']:.1f}%)")
        gpe, cl = rnd["lisp"]["headers"], rnd["classic"]["headers"]
        print(f"round {n} headers, LISP (GPE) phase: x2's XDP program saw {gpe['x2_decap']['gpe']} "
              f"GPE packets, rewrote {gpe['x2_decap']['rewritten']} classic ones")
        print(f"round {n} headers, classic phase (eBPF counters): " + "; ".join(
            f"{x} sent {cl[x]['classic_sent']} classic, received {cl[x]['classic_received']} "
            f"classic and {cl[x]['gpe_received']} GPE" for x in ("x1", "x2")))
        punts = rnd["lisp"]["punts_tcp"]
        print(f"round {n} punts during LISP TCP: {punts['packet_ins']} packet-ins (meters and "
              f"unmetered punt flows); n_packets summed over CONTROLLER flows "
              f"+{punts['controller_flow_n_packets']}:")
        for flow, moved in punts["controller_flows_that_moved"].items():
            print(f"    +{moved}: {flow}")
    print("    (check_pkt_larger: OVS credits the MTU table's punt flow with every encapsulated "
          "packet it translates, punted or not; the meters count real punts)")
    if "packet_ins_udp" in summary:
        print(f"punts during LISP UDP: {summary['packet_ins_udp']} packet-ins")
    print(f"miss latency: {len(miss['latency_ms'])}/{miss['samples']} samples answered "
          f"({miss['lost']} lost), p50 {miss['p50']:.3f} ms, p99 {miss['p99']:.3f} ms "
          f"({miss['p99_method']}), max {miss['max']:.3f} ms, warm RTT subtracted "
          f"{miss['warm_rtt_ms']:.3f} ms; x1 counters moved {miss['x1_counter_deltas']}")
    print(f"OpenFlow echo RTT ({echo['count']} through GET /echo): p50 {echo['p50']:.3f} ms, "
          f"p99 {echo['p99']:.3f} ms, min {echo['min']:.3f} ms")
    udp = figures["udp_rtt_ms"]
    print(f"UDP RTT between the RLOCs ({udp['count']} echoes, {udp['lost']} lost): p50 "
          f"{udp['p50']:.3f} ms, p99 {udp['p99']:.3f} ms, min {udp['min']:.3f} ms")
    print(f"miss baseline = echo RTT + UDP RTT = {summary['miss_baseline_p50_ms']:.3f} ms (p50); "
          f"miss overhead {summary['miss_overhead_p50_ms']:.3f} ms (goal <= 2 ms)")
    print(f"TCP ratio per round: "
          f"{', '.join(f'{v:.3f}' for v in summary['tcp_ratio_per_round'])} "
          f"(RESULT uses the medians over rounds)")
    print(f"classic / GPE per round: TCP "
          f"{', '.join(f'{v:.3f}' for v in summary['tcp_classic_ratio_per_round'])}"
          + (f"; UDP packets/s "
             f"{', '.join(f'{v:.3f}' for v in summary['udp_classic_ratio_per_round'])}"
             if "udp_classic_ratio_per_round" in summary else "")
          + " (RESULT uses the medians over rounds)")
    print(f"RESULT tcp_lisp_gbps={summary['tcp_lisp_gbps']:.3f} "
          f"tcp_plain_gbps={summary['tcp_plain_gbps']:.3f} ratio={summary['tcp_ratio']:.3f}")
    if "udp_ratio" in summary:
        print(f"RESULT udp_lisp_kpps={summary['udp_lisp_kpps']:.1f} "
              f"udp_plain_kpps={summary['udp_plain_kpps']:.1f} ratio={summary['udp_ratio']:.3f}")
    print(f"RESULT packet_ins_per_s={summary['packet_ins_per_s']:.3f}")
    print(f"RESULT miss_latency_ms p50={summary['miss_latency_p50_ms']:.3f} "
          f"p99={summary['miss_latency_p99_ms']:.3f} "
          f"echo_rtt_ms p50={summary['echo_rtt_p50_ms']:.3f} "
          f"ratio_p50={summary['miss_to_echo_ratio_p50']:.1f} "
          f"udp_rtt_ms p50={summary['udp_rtt_p50_ms']:.3f} "
          f"overhead_p50_ms={summary['miss_overhead_p50_ms']:.3f} (goal <= 2)")
    print(f"RESULT classic_tcp_gbps={summary['tcp_classic_gbps']:.3f} "
          f"gpe_tcp_gbps={summary['tcp_lisp_gbps']:.3f} "
          f"ratio={summary['tcp_classic_ratio']:.3f} (goal >= 0.9)")
    if "udp_classic_ratio" in summary:
        print(f"RESULT classic_udp_kpps={summary['udp_classic_kpps']:.1f} "
              f"gpe_udp_kpps={summary['udp_lisp_kpps']:.1f} "
              f"ratio={summary['udp_classic_ratio']:.3f} (goal >= 0.9)")
    if "tcp_xdp_ratio" in summary:
        print(f"GPE with / without the XDP program per round: TCP "
              f"{', '.join(f'{v:.3f}' for v in summary['tcp_xdp_ratio_per_round'])}"
              + (f"; UDP packets/s "
                 f"{', '.join(f'{v:.3f}' for v in summary['udp_xdp_ratio_per_round'])}"
                 if "udp_xdp_ratio_per_round" in summary else ""))
        print(f"RESULT xdp_cost_tcp gpe_gbps={summary['tcp_lisp_gbps']:.3f} "
              f"gpe_no_xdp_gbps={summary['tcp_no_xdp_gbps']:.3f} "
              f"ratio={summary['tcp_xdp_ratio']:.3f}")
        if "udp_xdp_ratio" in summary:
            print(f"RESULT xdp_cost_udp gpe_kpps={summary['udp_lisp_kpps']:.1f} "
                  f"gpe_no_xdp_kpps={summary['udp_no_xdp_kpps']:.1f} "
                  f"ratio={summary['udp_xdp_ratio']:.3f}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=None,
                        help="length of each TCP run; UDP runs last half as long "
                             "(default 8, --quick 3)")
    parser.add_argument("--samples", type=int, default=None,
                        help="miss-latency samples (default 30, --quick 5)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="LISP/classic/plain alternations; throughput figures are "
                             "medians over them (default 3, --quick 1)")
    parser.add_argument("--quick", action="store_true", help="short runs, few samples, 1 round")
    parser.add_argument("--no-udp", action="store_true", help="skip the UDP packet-rate runs")
    parser.add_argument("--xdp-cost", action="store_true",
                        help="also measure GPE without the uplink's XDP program "
                             "(classic_decap: false) in every round")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON here")
    parser.add_argument("--tag", default="b",
                        help="interface-name prefix, so that topologies can coexist (default b)")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 3 if args.quick else 8
    if args.samples is None:
        args.samples = 5 if args.quick else 30
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if min(args.seconds, args.samples, args.rounds) < 1:
        parser.error("--seconds, --samples and --rounds must be at least 1")
    if os.geteuid() != 0:
        print("bench/xtr.py: run as root (Mininet and OVS need it)", file=sys.stderr)
        return 1

    return run_and_report("bench/xtr.py", run, report, args, progress)


if __name__ == "__main__":
    sys.exit(main())
