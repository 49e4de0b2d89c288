"""Controller memory and lookup scale: RSS per 100,000 map-cache entries (two locators each, the
goal's case: 1,000,000 in 1 GiB, measured to 1M) and longest-prefix-match lookup time at
1,000,000 entries, against a plain dict lookup measured in the same run.

Everything runs in a fresh Python subprocess per variant, so that its RSS holds nothing but the
interpreter, lisp_app and the state under test. In it, one lisp_app xTR
(:class:`lisp_app.node.Xtr`, role xtr, instance-id 1000, Map-Requests straight to an ETR
address) with both bridges "connected" (lisp_bridge_ready / underlay_bridge_ready, next hop MAC
learned from an ARP reply packet-in) is filled with N mappings of two locators each (--entries,
default 1,000,000; --quick 50,000), then in a second process M mappings of one locator each
(--one-locator, default 100,000; --quick 10,000; 0 skips it), the way the running controller
learns them, through its packet-in entry point ``Xtr.on_packet_in``:

1. a cache-miss packet-in on the LISP bridge (an Ethernet/IPv4/UDP frame from site host
   10.1.0.10 to host .10 of the mapping's /24), which opens a pending request and produces the
   Map-Request packet-out (its nonce is read from that packet-out);
2. a control packet-in on the underlay bridge carrying the Map-Reply for that nonce: one record
   [1000]P/24, TTL 1440 minutes, authoritative, with two locators (or one, the second variant).

The ITR accepts the reply, inserts the CacheEntry into the map-cache (LPM table and expiry heap)
and the xTR compiles the mapping's encapsulation flow and keeps what compiles it again
(``FlowInstaller.installed``: a record shared by the mappings to the same locators, and the select
group's id). So the measured state is everything the controller holds per learned mapping:
map-cache entry, prefix objects, locators, expiry bookkeeping, the per-mapping flow record, and the
ITR's per-EID request bookkeeping. The Map-Reply path is used rather than ``Xtr.add_static``
because it is how an ITR's map-cache normally fills (and it keeps strictly more per mapping: expiry
and request state). Not simulated: the statistics poll (it keeps per-flow counters only for
mappings near their refresh point, and no mapping here is) and the os-ken side (it keeps no
per-mapping state).

EID prefixes are distinct /24s counted up from 32.0.0.0 (at most 2**20 of them, 32.0.0.0/4).
Mapping i's locator is RLOC number i mod R out of R distinct addresses in 100.64.0.0/10 (--rlocs,
default 1000: many EID prefixes per xTR, as in deployments); with two locators the second is
RLOC number (i + 1) mod R, so every mapping has a select group. The simulated clock advances by
1/miss_rate (10 ms at the default 100 misses/s the miss meter lets through) per mapping, and the
Map-Reply comes 5 ms after its miss; nothing expires (TTL 24 h > N * 10 ms for N <= 8.6 million).

The worker runs the controller's garbage-collector policy (:mod:`lisp_app.shell.gcpolicy`: the
survivors of each full collection are frozen; it changes pauses, not memory).
RSS is VmRSS from /proc/self/status after ``gc.collect()`` at 0 entries and every --step entries
(default 100,000; --quick 10,000). RSS per 100k entries = (RSS(N) - RSS(0)) / N * 100,000. The
1 GiB goal is checked against RSS at 1,000,000 entries with two locators each, measured when
--entries >= 1,000,000 (the default) and otherwise extrapolated linearly from the slope (the
output says which; the one-locator variant is extrapolated unless run to 1M).

Lookups (in the two-locator process): at N entries, ``MapCache.lookup(1000, address)`` (what the
ITR does on a miss) for L random addresses (--lookups, default 200,000): hits (one random host per
/24 of the cache, sampled in random order) and misses (addresses in 64.0.0.0/4, which no mapping
covers), each the best of --repeats timed passes (default 5). Baseline, same process, same
IPv4Address objects: a plain dict of N exact keys ``(1000, int(host))`` -> entry (the same hosts),
probed with ``dict.get((1000, int(address)))``. Ratio = dict time / LPM time: 1.0 means a
longest-prefix match costs no more than an exact-match dict probe; 0.5 means it costs twice as
much. (A lookup probes one dict per distinct prefix length in the table; here all are /24, so one.)

Progress goes to stderr; figures, then the RESULT lines last, to stdout.

    .venv/bin/python bench/scale.py [--entries N] [--step S] [--one-locator M] [--rlocs R]
                                    [--lookups L] [--repeats K] [--quick] [--json PATH]

--quick: 50,000 entries in steps of 10,000, 10,000 with one locator, 20,000 lookups, 3 repeats.
The default run takes about 4 minutes; its first worker peaks at about 1 GiB (the lookup phase
adds the baseline dict of N exact keys and N host addresses to the filled xTR).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import run_and_report  # noqa: E402

GIB = 1 << 30
MIB = 1 << 20
GOAL_ENTRIES = 1_000_000
MAX_ENTRIES = 1 << 20          # /24s in 32.0.0.0/4
INSTANCE_ID = 1000
EID_BASE = 32 << 24            # 32.0.0.0
MISS_BASE = 64 << 24           # 64.0.0.0/4: no mapping covers it
RLOC_BASE = (100 << 24) | (64 << 16)  # 100.64.0.0/10
MAX_RLOCS = 1 << 22
REPLY_DELAY = 0.005            # seconds from the miss to its Map-Reply (simulated clock)

CONFIG = """
role: xtr
instance_id: 1000
eid_prefixes: [{prefix: 10.1.0.0/24}]
lisp_bridge: {datapath_id: 1, site_ports: [{name: site}]}
underlay: {datapath_id: 2, rloc: 192.0.2.1, next_hop: 192.0.2.254, mtu: 1500}
site_gateway: {ipv4: 10.1.0.1, mac: "02:00:00:00:00:01"}
map_request_targets: [198.51.100.1]
"""
SITE_PORT, GPE_PORT, UPLINK_PORT = 1, 2, 7
HOST_MAC, GW_MAC = "02:aa:00:00:00:10", "02:00:00:00:00:01"
LOCAL_MAC, ROUTER_MAC = "02:bb:00:00:00:01", "02:cc:00:00:00:fe"
MAP_REQUEST_NONCE_AT = 14 + 20 + 8 + 4  # Ethernet, IPv4 (no options), UDP, then type/flags

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench/scale {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr,
          flush=True)


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


# -- the worker: runs in its own process --------------------------------------------------------

def new_xtr():
    """An xTR whose bridges have connected and whose underlay next hop is known."""
    from ipaddress import ip_address

    from lisp_app.config import parse_config
    from lisp_app.dataplane.effects import UNDERLAY
    from lisp_app.node import Xtr
    from lisp_app.dataplane import frames
    from lisp_app.dataplane.pipeline import K_PUNT_UNDERLAY_ARP, cookie

    xtr = Xtr(parse_config(CONFIG), random.Random(1))
    xtr.lisp_bridge_ready({"site": SITE_PORT, "gpe": GPE_PORT})
    xtr.underlay_bridge_ready({"uplink": UPLINK_PORT}, LOCAL_MAC)
    arp_reply = (frames.mac_to_bytes(LOCAL_MAC) + frames.mac_to_bytes(ROUTER_MAC) + b"\x08\x06"
                 + bytes.fromhex("0001080006040002") + frames.mac_to_bytes(ROUTER_MAC)
                 + ip_address("192.0.2.254").packed + frames.mac_to_bytes(LOCAL_MAC)
                 + ip_address("192.0.2.1").packed)
    xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_UNDERLAY_ARP), UPLINK_PORT, 0, arp_reply, 0.0)
    if xtr.next_hop.next_hop_mac != ROUTER_MAC:
        raise RuntimeError("the xTR did not learn its next hop from the ARP reply")
    return xtr


class Filler:
    """Feeds mappings to an xTR through packet-ins: miss, Map-Request out, Map-Reply in."""

    def __init__(self, xtr, locators: int, rlocs: int, miss_rate: float):
        from ipaddress import IPv4Address

        from lisp_app.dataplane.effects import LISP, UNDERLAY, FlowChange, PacketOut
        from lisp_app.dataplane import frames
        from lisp_app.dataplane.pipeline import K_PUNT_CONTROL, K_PUNT_MISS, cookie
        from lisp_app.protocol import (LISP_CONTROL_PORT, InstanceIdAddress, Locator, MapReply,
                                       MappingRecord)
        self.xtr, self.locators, self.rlocs = xtr, locators, rlocs
        self.IPv4Address, self.InstanceIdAddress = IPv4Address, InstanceIdAddress
        self.Locator, self.MappingRecord, self.MapReply = Locator, MappingRecord, MapReply
        self.PacketOut, self.FlowChange = PacketOut, FlowChange
        self.udp_frame, self.port = frames.udp_frame, LISP_CONTROL_PORT
        self.LISP, self.UNDERLAY = LISP, UNDERLAY
        self.miss_cookie, self.control_cookie = cookie(K_PUNT_MISS), cookie(K_PUNT_CONTROL)
        self.host = IPv4Address("10.1.0.10")
        self.rloc_self = IPv4Address("192.0.2.1")
        self.interval = 1.0 / miss_rate
        self.now = 1000.0
        self.done = 0
        self.tick_at = self.now  # the controller's timer loop runs at least every 0.1 s

    def rloc(self, n: int):
        return self.IPv4Address(RLOC_BASE + 1 + n % self.rlocs)

    def add(self, i: int) -> None:
        IPv4Address = self.IPv4Address
        network = EID_BASE + (i << 8)
        eid = IPv4Address(network + 10)
        self.now += self.interval
        if self.now >= self.tick_at:
            # as the timer loop does (lisp_app.shell.policy.TIMER_TICK): the ITR drops the
            # retransmission timers of answered requests from its heap (without this call they
            # pile up: about 14 objects per mapping, measured, that a controller never keeps)
            self.xtr.next_deadline()
            self.tick_at = self.now + 0.1
        miss_at, reply_at = self.now, self.now + REPLY_DELAY
        frame = self.udp_frame(HOST_MAC, GW_MAC, self.host, eid, 5000, 6000, bytes(18))
        effects = self.xtr.on_packet_in(self.LISP, self.miss_cookie, SITE_PORT, INSTANCE_ID,
                                        frame, miss_at)
        requests = [e for e in effects if isinstance(e, self.PacketOut)]
        if len(requests) != 1:
            raise RuntimeError(f"mapping {i}: the miss gave {effects!r}, not one Map-Request")
        data = requests[0].data
        nonce = int.from_bytes(data[MAP_REQUEST_NONCE_AT:MAP_REQUEST_NONCE_AT + 8], "big")
        locators = tuple(self.Locator(self.rloc(i + k), priority=1, weight=100 // self.locators)
                         for k in range(self.locators))
        record = self.MappingRecord(self.InstanceIdAddress(INSTANCE_ID, IPv4Address(network), 24),
                                    24, locators, ttl=1440, authoritative=True)
        payload = self.MapReply(nonce, (record,)).encode()
        reply = self.udp_frame(ROUTER_MAC, LOCAL_MAC, locators[0].address, self.rloc_self,
                               self.port, self.port, payload)
        effects = self.xtr.on_packet_in(self.UNDERLAY, self.control_cookie, UPLINK_PORT, 0,
                                        reply, reply_at)
        if not any(isinstance(e, self.FlowChange) for e in effects):
            raise RuntimeError(f"mapping {i}: the Map-Reply installed no flow: {effects!r}")
        self.done += 1

    def check_first(self) -> None:
        """The first exchange, decoded: the Map-Request asks for the EID and the entry is there."""
        from lisp_app.protocol import EidPrefix
        self.add(0)
        entry = self.xtr.cache.lookup(INSTANCE_ID, self.IPv4Address(EID_BASE + 1))
        want = EidPrefix.parse(f"[{INSTANCE_ID}]{self.IPv4Address(EID_BASE)}/24")
        if entry is None or entry.prefix != want or len(entry.locators) != self.locators:
            raise RuntimeError(f"first mapping not cached as expected: {entry!r}")
        if want not in self.xtr.installer.installed:
            raise RuntimeError("first mapping has no installed flow")


def timed_loop(function, items, repeats: int) -> float:
    """Best seconds per item over ``repeats`` passes of ``for x in items: function(x)``."""
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        for x in items:
            function(x)
        best = min(best, time.perf_counter() - started)
    return best / len(items)


def lookups(xtr, n: int, count: int, repeats: int) -> dict:
    from ipaddress import IPv4Address
    rng = random.Random(7)
    hosts = [IPv4Address(EID_BASE + (i << 8) + rng.randrange(1, 255)) for i in range(n)]
    hits = [hosts[rng.randrange(n)] for _ in range(count)]
    misses = [IPv4Address(MISS_BASE + rng.randrange(1 << 28)) for _ in range(count)]
    cache = xtr.cache
    exact = {(INSTANCE_ID, int(h)): cache.lookup(INSTANCE_ID, h) for h in hosts}
    del hosts
    if any(v is None for v in exact.values()) or len(exact) != n:
        raise RuntimeError("some cached prefix did not match its own host")
    if any(cache.lookup(INSTANCE_ID, a) is None for a in hits) or \
            any(cache.lookup(INSTANCE_ID, a) is not None for a in misses):
        raise RuntimeError("LPM answered a hit or a miss wrongly")
    if any(exact.get((INSTANCE_ID, int(a))) is not cache.lookup(INSTANCE_ID, a) for a in hits):
        raise RuntimeError("the dict and the LPM disagree")

    def lpm(address, lookup=cache.lookup, iid=INSTANCE_ID):
        return lookup(iid, address)

    def plain(address, get=exact.get, iid=INSTANCE_ID):
        return get((iid, int(address)))

    out = {"count": count, "repeats": repeats, "dict_size": len(exact)}
    for name, items in (("hit", hits), ("miss", misses)):
        ours = timed_loop(lpm, items, repeats)
        base = timed_loop(plain, items, repeats)
        out[name] = {"lpm_ns": ours * 1e9, "dict_ns": base * 1e9, "ratio": base / ours}
    return out


def worker(params: dict) -> dict:
    global _started
    _started = params["started"]
    n, step, locators = params["entries"], params["step"], params["locators"]
    label = f"{locators} locator{'s' if locators > 1 else ''}"
    from lisp_app.shell.gcpolicy import GcPolicy
    GcPolicy().install()  # the controller's collector policy, as lisp_app.app installs it
    xtr = new_xtr()
    filler = Filler(xtr, locators, params["rlocs"], xtr.config.miss_rate)
    gc.collect()
    points = [{"entries": 0, "rss": rss_bytes(), "seconds": 0.0}]
    progress(f"{label}: empty xTR, RSS {points[0]['rss'] / MIB:.1f} MiB; filling {n:,} "
             f"mappings through packet-ins")
    filler.check_first()
    started = time.perf_counter()
    target = min(step, n)
    while True:
        for i in range(filler.done, target):
            filler.add(i)
        elapsed = time.perf_counter() - started
        gc.collect()
        point = {"entries": target, "rss": rss_bytes(), "seconds": elapsed}
        points.append(point)
        progress(f"{label}: {target:>9,} mappings, RSS {point['rss'] / MIB:8.1f} MiB, "
                 f"{target / elapsed:,.0f} mappings/s")
        if target == n:
            break
        target = min(target + step, n)
    state = {"cache": len(xtr.cache), "installed": len(xtr.installer.installed),
             "groups": len(xtr.group_ids()), "itr_last_sent": len(xtr.itr.last_sent),
             "itr_pending": len(xtr.itr.pending)}
    if state["cache"] != n or state["installed"] != n:
        raise RuntimeError(f"expected {n} cached and installed mappings, got {state}")
    figures = {"locators": locators, "entries": n, "points": points, "state": state,
               "peak_rss": peak_rss_bytes(), "simulated_seconds": filler.now - 1000.0}
    if params["lookups"]:
        progress(f"{label}: {params['lookups']:,} LPM lookups (hits, misses) against a dict of "
                 f"{n:,} exact keys, best of {params['repeats']}")
        figures["lookups"] = lookups(xtr, n, params["lookups"], params["repeats"])
    return figures


# -- the parent: runs the workers and reports ---------------------------------------------------

def run_worker(params: dict) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker",
               json.dumps({**params, "started": _started})]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker for {params} failed with exit status {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def slope_per_100k(points: list[dict]) -> float:
    """(RSS at the last point - RSS at 0) per 100,000 entries, in bytes."""
    first, last = points[0], points[-1]
    return (last["rss"] - first["rss"]) / last["entries"] * 100_000


def rss_at(points: list[dict], entries: int) -> tuple[float, bool]:
    """RSS at ``entries`` (bytes) and whether it was measured (else extrapolated linearly)."""
    for p in points:
        if p["entries"] == entries:
            return p["rss"], True
    return points[0]["rss"] + slope_per_100k(points) * entries / 100_000, False


def run(args) -> dict:
    figures = {"python": platform.python_version(),
               "parameters": {"entries": args.entries, "step": args.step,
                              "one_locator": args.one_locator, "rlocs": args.rlocs,
                              "lookups": args.lookups, "repeats": args.repeats}}
    base = {"step": args.step, "rlocs": args.rlocs, "repeats": args.repeats}
    progress(f"worker 1: {args.entries:,} mappings with 2 locators, then {args.lookups:,} "
             f"lookups")
    figures["two"] = run_worker({**base, "entries": args.entries, "locators": 2,
                                 "lookups": args.lookups})
    if args.one_locator:
        progress(f"worker 2: {args.one_locator:,} mappings with 1 locator")
        figures["one"] = run_worker({**base, "entries": args.one_locator, "locators": 1,
                                     "step": min(args.step, args.one_locator), "lookups": 0})
    for key in ("two", "one"):
        if key in figures:
            v = figures[key]
            at_goal, measured = rss_at(v["points"], GOAL_ENTRIES)
            v["summary"] = {"rss_per_100k": slope_per_100k(v["points"]),
                            "bytes_per_entry": slope_per_100k(v["points"]) / 100_000,
                            "rss_at_1m": at_goal, "rss_at_1m_measured": measured,
                            "fits_1gib": at_goal <= GIB}
    progress("done")
    return figures


def report(figures: dict) -> None:
    p = figures["parameters"]
    print(f"bench/scale: Python {figures['python']}; lisp_app xTR fed through packet-ins (miss, "
          f"Map-Request, Map-Reply -> map-cache + encapsulation flow); /24 EID prefixes in "
          f"instance-id {INSTANCE_ID}; locators from {p['rlocs']:,} distinct RLOCs")
    for key in ("two", "one"):
        if key not in figures:
            continue
        v = figures[key]
        s = v["summary"]
        print(f"{v['locators']} locator(s) per mapping: {v['entries']:,} mappings over "
              f"{v['simulated_seconds']:,.0f} simulated seconds; state {v['state']}")
        print(f"  {'mappings':>10} {'RSS MiB':>9} {'+MiB':>8} {'B/mapping':>10} {'mappings/s':>11}")
        base = v["points"][0]["rss"]
        for point in v["points"]:
            n = point["entries"]
            per = f"{(point['rss'] - base) / n:10.0f}" if n else f"{'':10}"
            rate = f"{n / point['seconds']:11,.0f}" if point["seconds"] else f"{'':11}"
            print(f"  {n:>10,} {point['rss'] / MIB:9.1f} {(point['rss'] - base) / MIB:8.1f} "
                  f"{per} {rate}")
        how = "measured" if s["rss_at_1m_measured"] else "extrapolated"
        print(f"  RSS per 100k mappings {s['rss_per_100k'] / MIB:.1f} MiB "
              f"({s['bytes_per_entry']:.0f} B each); at 1,000,000: "
              f"{s['rss_at_1m'] / MIB:.0f} MiB ({how}), peak RSS {v['peak_rss'] / MIB:.0f} MiB")
    look = figures["two"].get("lookups")
    if look:
        print(f"lookups at {look['dict_size']:,} entries, {look['count']:,} random addresses, "
              f"best of {look['repeats']}:")
        for name, label in (("hit", "hits"), ("miss", "misses")):
            r = look[name]
            print(f"  {label:<7} MapCache.lookup {r['lpm_ns']:7.0f} ns   "
                  f"dict.get((iid, int(addr))) {r['dict_ns']:7.0f} ns   "
                  f"dict/LPM {r['ratio']:.2f}")
    two = figures["two"]["summary"]
    how = "measured" if two["rss_at_1m_measured"] else "extrapolated"
    print(f"RESULT memory_2_locators entries={figures['two']['entries']} "
          f"rss_mib_per_100k={two['rss_per_100k'] / MIB:.1f} "
          f"rss_mib_at_1m={two['rss_at_1m'] / MIB:.0f} ({how}) "
          f"fits_1gib={'yes' if two['fits_1gib'] else 'no'} "
          f"(goal: 1M entries with 2 locators in <= 1 GiB)")
    if "one" in figures:
        one = figures["one"]["summary"]
        how = "measured" if one["rss_at_1m_measured"] else "extrapolated"
        print(f"RESULT memory_1_locator entries={figures['one']['entries']} "
              f"rss_mib_per_100k={one['rss_per_100k'] / MIB:.1f} "
              f"rss_mib_at_1m={one['rss_at_1m'] / MIB:.0f} ({how}) "
              f"fits_1gib={'yes' if one['fits_1gib'] else 'no'}")
    if look:
        for name in ("hit", "miss"):
            r = look[name]
            print(f"RESULT lookup_{name} entries={look['dict_size']} lpm_ns={r['lpm_ns']:.0f} "
                  f"dict_ns={r['dict_ns']:.0f} ratio={r['ratio']:.2f} "
                  f"(dict/LPM; 1.0 = as fast as an exact-match dict)")
    sys.stdout.flush()


def count(text: str) -> int:
    """A non-negative count; 1,000,000 and 1_000_000 are accepted."""
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=count, default=None,
                        help=f"mappings of two locators each to fill (default 1,000,000, --quick "
                             f"50,000; at most {MAX_ENTRIES:,})")
    parser.add_argument("--step", type=count, default=None,
                        help="RSS is measured every STEP mappings (default 100,000, "
                             "--quick 10,000)")
    parser.add_argument("--one-locator", type=count, default=None, metavar="M",
                        help="mappings in the 1-locator variant, 0 to skip (default 100,000, "
                             "--quick 10,000)")
    parser.add_argument("--rlocs", type=count, default=1000,
                        help="distinct RLOCs the locators are drawn from (default 1000)")
    parser.add_argument("--lookups", type=count, default=None,
                        help="random addresses per lookup figure (default 200,000, "
                             "--quick 20,000)")
    parser.add_argument("--repeats", type=count, default=None,
                        help="timed passes per lookup figure, best kept (default 5, --quick 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
    q = args.quick
    args.entries = args.entries if args.entries is not None else (50_000 if q else 1_000_000)
    args.step = args.step if args.step is not None else (10_000 if q else 100_000)
    if args.one_locator is None:
        args.one_locator = 10_000 if q else 100_000
    args.lookups = args.lookups if args.lookups is not None else (20_000 if q else 200_000)
    args.repeats = args.repeats if args.repeats is not None else (3 if q else 5)
    if not 1 <= args.entries <= MAX_ENTRIES or args.one_locator > MAX_ENTRIES:
        parser.error(f"--entries must be between 1 and {MAX_ENTRIES:,} (/24s in 32.0.0.0/4), "
                     f"--one-locator at most that")
    if args.step < 1:
        parser.error("--step must be at least 1")
    if not 2 <= args.rlocs <= MAX_RLOCS:
        parser.error(f"--rlocs must be between 2 (two locators each) and {MAX_RLOCS:,}")
    if args.lookups < 1 or args.repeats < 1:
        parser.error("--lookups and --repeats must be at least 1")
    return run_and_report("bench/scale.py", run, report, args, progress)


if __name__ == "__main__":
    sys.exit(main())
