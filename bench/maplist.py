"""The REST API at a big map-cache: how long one request holds the controller's loop while
``GET /map`` is paged through 1,000,000 entries, against the whole-list ``GET /map`` that lisp_app
answered before issue 14, measured in the same run.

The controller serves the API in a green thread of its one eventlet hub: a request's handler,
from parsing to the JSON body, runs without yielding, so its duration is how long packet-ins,
timers and BGP wait. This benchmark times exactly that: the WSGI application
(:class:`lisp_app.api.server.Api`, called with a WSGI environ as eventlet's server calls it,
``time.perf_counter`` around the call and the joining of the body) over a real
:class:`lisp_app.node.Xtr`, without a switch or sockets (the socket writes are eventlet's and
yield).

The xTR is filled the way bench/scale.py fills it (and with its code): through packet-ins, a
cache miss, the Map-Request, a Map-Reply for its nonce; /24 EID prefixes in instance-id 1000,
one locator each out of 1,000 RLOCs, RLOC probing on (so that every locator is tracked).

1. At --before entries (default 100,000; --quick 10,000): the old whole list, ``{"cache":
   [every entry's view], "database": [...]}`` encoded with ``json.dumps(indent=1)``, what
   ``GET /map`` did until issue 14 (best of --repeats, default 2); then ``GET /map`` paged through
   at the default page size, every page timed. Ratio = whole list / longest page.
2. At --entries (default 1,000,000; --quick 50,000): ``GET /map`` paged through at the default
   page size (1000, also the largest): the longest, the 99th percentile and the median page, in
   wall-clock time and in CPU time of the process (the same unless other processes take the
   CPU); then paged at the default size with one mapping removed (the operator's DELETE
   /map path, ``Xtr.remove_mapping``) before every page, which forces the slowest resume (the
   cursor's prefix length has seen a removal, so the cursor's prefix is found by a scan). The goal:
   no page holds the loop more than 50 ms.
3. At --entries: the other GETs, best and worst of --repeats: /locators, /metrics, /mapstat,
   /map/lookup. (/flows is not measured here: it needs a switch; its answer is the whole flow
   table, see docs/benchmarks.rst.) And one full garbage collection (``gc.collect()``): the API
   keeps the collector off while it builds an answer, so that no request sets one off, but
   anything else that makes many long-lived objects does. The benchmark's process runs the
   controller's collector policy (:class:`lisp_app.shell.gcpolicy.GcPolicy`, installed before
   the fill as the controller installs it at start: the survivors of every full collection are
   frozen), so this is the pause the controller's loop takes; then, in the same process, one
   full collection with everything given back to the collector (``gc.unfreeze()``), the pause
   without the policy. Also the longest of the full collections that the collector started by
   itself while the map-cache filled from --before to --entries (under the policy).

Progress goes to stderr; figures, then the RESULT lines last, to stdout.

    .venv/bin/python bench/maplist.py [--entries N] [--before M] [--repeats K] [--quick]
                                      [--json PATH]

The default run takes about 3 minutes and peaks at about 1.5 GiB.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import run_and_report  # noqa: E402
from bench.scale import EID_BASE, MAX_ENTRIES, Filler, count, new_xtr  # noqa: E402

GOAL_MS = 50.0

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench/maplist {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr,
          flush=True)


class App:
    """What the API needs of the os-ken app, for GETs of the map-cache."""

    def __init__(self, xtr):
        self.xtr, self.datapaths = xtr, {}

    def execute(self, effects):
        pass


def request(api, path: str, query: str = "") -> tuple[float, str, bytes, float]:
    """(seconds the handler held the loop, status, body, CPU seconds of this process meanwhile)
    of one GET. The CPU time says what the request costs on a machine that other processes
    share: the wall-clock hold is longer when they take the CPU away."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
               "HTTP_HOST": "127.0.0.1:8080", "CONTENT_LENGTH": "0",
               "wsgi.input": io.BytesIO(b"")}
    status = []
    cpu, started = time.process_time(), time.perf_counter()
    body = b"".join(api(environ, lambda s, _headers: status.append(s)))
    return (time.perf_counter() - started, status[0], body, time.process_time() - cpu)


def old_whole_list(xtr, now: float) -> float:
    """Seconds of GET /map as it was before issue 14: every entry in one JSON answer."""
    from lisp_app.node.queries import entry_view, local_view
    started = time.perf_counter()
    result = {"cache": [entry_view(e, now, xtr.prober) for e in xtr.cache],
              "database": [local_view(m) for m in xtr.database]}
    body = json.dumps(result, indent=1).encode()
    seconds = time.perf_counter() - started
    if len(result["cache"]) != len(xtr.cache) or not body:
        raise RuntimeError("the whole list missed entries")
    return seconds


def page_through(api, xtr, limit: int | None, churn=None) -> dict:
    """GET /map page after page; each page's handler time. ``churn(i)`` runs before page i > 0
    (outside the timing). Checks that every entry present throughout came."""
    times, cpus, prefixes, after, i = [], [], set(), None, 0
    while True:
        query = "&".join(([f"limit={limit}"] if limit else [])
                         + ([f"after={after}"] if after else []))
        seconds, status, body, cpu = request(api, "/map", query)
        if not status.startswith("200"):
            raise RuntimeError(f"GET /map?{query}: {status} {body[:200]!r}")
        page = json.loads(body)
        times.append(seconds)
        cpus.append(cpu)
        prefixes.update(m["prefix"] for m in page["cache"])
        after = page["next"]
        if after is None:
            break
        i += 1
        if churn is not None:
            churn(i)
    return {"pages": len(times), "listed": len(prefixes), "max_ms": max(times) * 1e3,
            "p99_ms": sorted(times)[int(0.99 * (len(times) - 1))] * 1e3,
            "median_ms": statistics.median(times) * 1e3, "total_s": sum(times),
            "cpu_max_ms": max(cpus) * 1e3, "cpu_median_ms": statistics.median(cpus) * 1e3}


def other_gets(api, repeats: int) -> dict:
    out = {}
    for path, query in (("/locators", ""), ("/metrics", ""), ("/mapstat", ""),
                        ("/map/lookup", "eid=[1000]32.0.1.10")):
        times = []
        for _ in range(repeats):
            seconds, status, body, _cpu = request(api, path, query)
            if not status.startswith("200"):
                raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
            times.append(seconds)
        out[path] = {"best_ms": min(times) * 1e3, "worst_ms": max(times) * 1e3,
                     "bytes": len(body)}
    return out


class FullCollections:
    """A gc callback: the duration of each full collection (generation 2) while registered."""

    def __init__(self):
        self.seconds: list[float] = []
        self._started = None

    def __call__(self, phase: str, info: dict) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.seconds.append(time.perf_counter() - self._started)
            self._started = None


def fill(filler, target: int) -> None:
    started, first = time.perf_counter(), filler.done
    for i in range(first, target):
        filler.add(i)
        if (i + 1) % 100_000 == 0:
            rate = (i + 1 - first) / (time.perf_counter() - started)
            progress(f"  {i + 1:,} mappings ({rate:,.0f}/s)")


def run(args) -> dict:
    from ipaddress import IPv4Address

    import lisp_app.api.server as server
    from lisp_app.api.server import Api
    from lisp_app.protocol import EidPrefix
    from lisp_app.shell.gcpolicy import GcPolicy
    gc_policy = GcPolicy()  # as lisp_app.app installs it at start
    gc_policy.install()
    xtr = new_xtr()
    if xtr.prober is None:
        raise RuntimeError("RLOC probing is off in the benchmark's xTR")
    filler = Filler(xtr, 1, args.rlocs, xtr.config.miss_rate)
    api = Api(App(xtr), clock=lambda: filler.now)
    figures = {"python": platform.python_version(),
               "parameters": {"entries": args.entries, "before": args.before,
                              "repeats": args.repeats, "rlocs": args.rlocs,
                              "page": server.MAP_PAGE, "page_max": server.MAP_PAGE_MAX}}
    progress(f"filling {args.before:,} mappings through packet-ins")
    fill(filler, args.before)
    progress(f"the old whole-list GET /map at {len(xtr.cache):,} entries, best of "
             f"{args.repeats}")
    whole = min(old_whole_list(xtr, filler.now) for _ in range(args.repeats))
    paged = page_through(api, xtr, None)
    figures["before"] = {"entries": len(xtr.cache), "whole_list_ms": whole * 1e3,
                         "paged": paged}
    progress(f"  whole list {whole * 1e3:,.0f} ms; paged: longest page "
             f"{paged['max_ms']:.1f} ms")
    progress(f"filling to {args.entries:,} mappings")
    collections = FullCollections()  # the ones the collector starts by itself while filling
    gc.callbacks.insert(0, collections)
    try:
        fill(filler, args.entries)
    finally:
        gc.callbacks.remove(collections)
    n = len(xtr.cache)
    after = {"entries": n, "fill_full_gcs": len(collections.seconds),
             "fill_full_gc_max_ms": max(collections.seconds, default=0.0) * 1e3}
    progress(f"paging through {n:,} entries, limit {server.MAP_PAGE}")
    after["default"] = page_through(api, xtr, None)
    if after["default"]["listed"] != n:
        raise RuntimeError(f"{after['default']['listed']} of {n} entries listed")
    removed = []

    def churn(i):  # remove an entry listed already, so that the cursor's resume must scan
        network = IPv4Address(EID_BASE + ((i * server.MAP_PAGE - 1) << 8))
        prefix = EidPrefix.parse(f"[1000]{network}/24")
        if not xtr.remove_mapping(prefix, filler.now):
            raise RuntimeError(f"{prefix} was not in the map-cache")
        removed.append(prefix)

    progress(f"paging through {n:,} entries, limit {server.MAP_PAGE}, one removal before "
             "each page")
    after["churn"] = page_through(api, xtr, None, churn)
    after["churn"]["removed"] = len(removed)
    if after["churn"]["listed"] < n - len(removed) or len(xtr.cache) != n - len(removed):
        raise RuntimeError(f"paging with removals listed {after['churn']['listed']} entries, "
                           f"{len(removed)} removed of {n}")
    progress(f"the other GETs, {args.repeats} each")
    after["others"] = other_gets(api, args.repeats)
    progress("one full garbage collection under the controller's policy, then one with "
             "nothing frozen")
    started = time.perf_counter()
    gc.collect()
    after["full_gc_ms"] = (time.perf_counter() - started) * 1e3
    after["gc_frozen"] = gc_policy.frozen()
    gc_policy.remove()
    after["gc_tracked"] = len(gc.get_objects())
    started = time.perf_counter()
    gc.collect()
    after["full_gc_unfrozen_ms"] = (time.perf_counter() - started) * 1e3
    figures["after"] = after
    progress("done")
    return figures


def report(figures: dict) -> None:
    p, before, after = figures["parameters"], figures["before"], figures["after"]
    print(f"bench/maplist: Python {figures['python']}; lisp_app xTR fed through packet-ins as in "
          f"bench/scale.py, /24s in instance-id 1000, 1 locator each of {p['rlocs']:,} RLOCs, "
          f"probing on; each figure is one request's handler time (how long it holds the "
          f"controller's loop)")
    b = before["paged"]
    print(f"at {before['entries']:,} entries: the old whole-list GET /map "
          f"{before['whole_list_ms']:,.0f} ms (best of {p['repeats']}); paged "
          f"({b['pages']} pages of {p['page']}): longest {b['max_ms']:.1f} ms, median "
          f"{b['median_ms']:.1f} ms")
    print(f"at {after['entries']:,} entries, GET /map paged through:")
    print(f"  {'pages of':<28} {'pages':>6} {'longest ms':>11} {'p99 ms':>8} {'median ms':>10} "
          f"{'all pages s':>12} {'CPU ms: longest':>16} {'median':>7}")
    for name, label in (("default", f"{p['page']} (default, largest)"),
                        ("churn", f"{p['page']}, a removal before each")):
        v = after[name]
        print(f"  {label:<28} {v['pages']:>6} {v['max_ms']:>11.1f} {v['p99_ms']:>8.1f} "
              f"{v['median_ms']:>10.1f} {v['total_s']:>12.2f} {v['cpu_max_ms']:>16.1f} "
              f"{v['cpu_median_ms']:>7.1f}")
    print(f"other GETs at {after['entries']:,} entries (best / worst of {p['repeats']}):")
    for path, v in after["others"].items():
        print(f"  {path:<12} {v['best_ms']:8.1f} / {v['worst_ms']:8.1f} ms  "
              f"({v['bytes']:,} bytes)")
    print(f"one full garbage collection at {after['entries']:,} entries: "
          f"{after['full_gc_ms']:,.1f} ms under the controller's policy ({after['gc_frozen']:,} "
          f"objects frozen), {after['full_gc_unfrozen_ms']:,.0f} ms with nothing frozen "
          f"({after['gc_tracked']:,} objects tracked) (the API sets none off; the growth of "
          f"long-lived objects does, anywhere in the controller); the collector started "
          f"{after['fill_full_gcs']:,} while filling to {after['entries']:,}, the longest "
          f"{after['fill_full_gc_max_ms']:,.1f} ms")
    longest = max(after[name]["max_ms"] for name in ("default", "churn"))
    cpu = max(after[name]["cpu_max_ms"] for name in ("default", "churn"))
    print(f"RESULT map_list_before entries={before['entries']} "
          f"whole_list_ms={before['whole_list_ms']:.0f} paged_longest_ms={b['max_ms']:.1f} "
          f"ratio={before['whole_list_ms'] / b['max_ms']:.0f} (whole list / longest page)")
    print(f"RESULT map_list_paged entries={after['entries']} "
          f"longest_ms={longest:.1f} default_longest_ms={after['default']['max_ms']:.1f} "
          f"churn_longest_ms={after['churn']['max_ms']:.1f} longest_cpu_ms={cpu:.1f} "
          f"ratio={longest / GOAL_MS:.2f} (longest / {GOAL_MS:.0f} ms; goal <= 1)")
    o = after["others"]
    print(f"RESULT other_gets entries={after['entries']} "
          + " ".join(f"{path.strip('/').replace('/', '_')}_ms={v['worst_ms']:.1f}"
                     for path, v in o.items()) + f" (worst of {p['repeats']})")
    print(f"RESULT gc_pause entries={after['entries']} full_gc_ms={after['full_gc_ms']:.1f} "
          f"fill_longest_ms={after['fill_full_gc_max_ms']:.1f} "
          f"nothing_frozen_ms={after['full_gc_unfrozen_ms']:.1f} "
          f"ratio={after['full_gc_unfrozen_ms'] / max(after['full_gc_ms'], 1e-3):.0f} "
          f"(one full collection with nothing frozen / under the controller's policy)")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=count, default=None,
                        help=f"mappings to fill (default 1,000,000, --quick 50,000; at most "
                             f"{MAX_ENTRIES:,})")
    parser.add_argument("--before", type=count, default=None,
                        help="entries at which the old whole list is timed (default 100,000, "
                             "--quick 10,000)")
    parser.add_argument("--repeats", type=count, default=None,
                        help="timed runs of the whole list and the other GETs (default 2, "
                             "--quick 1)")
    parser.add_argument("--rlocs", type=count, default=1000,
                        help="distinct RLOCs the locators are drawn from (default 1000)")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON here")
    args = parser.parse_args(argv)
    q = args.quick
    args.entries = args.entries if args.entries is not None else (50_000 if q else 1_000_000)
    args.before = args.before if args.before is not None else (10_000 if q else 100_000)
    args.repeats = args.repeats if args.repeats is not None else (1 if q else 2)
    if not 1 <= args.before <= args.entries <= MAX_ENTRIES:
        parser.error(f"need 1 <= --before <= --entries <= {MAX_ENTRIES:,}")
    if args.repeats < 1 or not 1 <= args.rlocs <= 1 << 22:
        parser.error("--repeats must be at least 1, --rlocs between 1 and 4,194,304")
    return run_and_report("bench/maplist.py", run, report, args, progress)


if __name__ == "__main__":
    sys.exit(main())
