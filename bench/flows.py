"""Installing mappings: N static mappings through lisp_app's API until the switch holds their flows,
against ``ovs-ofctl --bundle add-flows`` of the very same flows (OVS's fastest bulk path), measured
in the same run on the same OVS.

Topology: topologies/two_sites.py (interface tag "f", --tag); only x1 is used. For each N
(--sizes, default 1000,10000,100000) and each round (--rounds, default 3):

1. lisp_app. x1's controller has just been (re)started with an empty map-cache. A client in x1's
   namespace times ``LispClient.map_add_many`` of N mappings ``[1000]20.a.b.c/32 -> 198.51.100.1``
   (one locator, so one encapsulation flow each), the path ``lispctl map load`` takes: the
   client's JSON in the API's compact bulk form (the prefixes, each distinct locator set once;
   docs/inspection.rst), HTTP, validation, the map-cache, flow compilation, the ONF bundle (open,
   N flow-mods streamed while later mappings are compiled, commit) and the barrier after the
   commit.
   The API answers after that barrier, so the time ends when the switch holds the flows. Then
   ``ovs-ofctl dump-aggregate`` checks that br-lisp's table 1 holds exactly N encapsulation flows.
2. Baseline. The controller is stopped (fail_mode=secure keeps the flows), the N flows are dumped
   (``dump-flows --no-stats``: the same matches, actions and cookies), deleted, and installed
   again, timed: ``ovs-ofctl -O OpenFlow13 --bundle add-flows br-lisp FILE`` (ovs-ofctl parses the
   text, OVS installs the bundle); the same count check follows. The flows are then deleted and
   the controller restarted for the next round.

Reported per N: the median over rounds of each time and of flows per second, and the ratio
baseline time / lisp_app time (1.0: as fast as ovs-ofctl; the goal is >= 0.8 at 100k). Progress
goes to stderr; figures, then the RESULT lines last, to stdout.

    sudo .venv/bin/python bench/flows.py [--sizes 1000,10000,100000] [--rounds R] [--quick]
                                         [--json PATH]

--quick: sizes 200,2000 and one round. The default run takes about 2 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import run_and_report  # noqa: E402
from lisp_app.dataplane.pipeline import COOKIE_MASK, K_ENCAP, T_ENCAP, cookie  # noqa: E402

ENCAP_COOKIE = f"{cookie(K_ENCAP):#x}/{COOKIE_MASK | 0xFF000000:#x}"
RLOC = "198.51.100.1"
GOAL = 0.8

CLIENT = r'''
import json, sys, time
from lisp_app.api.client import LispClient
n, url = int(sys.argv[1]), sys.argv[2]
mappings = [{"prefix": f"[1000]20.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32",
             "locators": [{"rloc": "%s"}]} for i in range(1, n + 1)]
client = LispClient(url, timeout=600)
start = time.perf_counter()
answer = client.map_add_many(mappings)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "answer": answer}))
''' % RLOC

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench/flows {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr,
          flush=True)


def flow_count(xtr) -> int:
    out = xtr.ofctl(f"dump-aggregate unix:{xtr.dir}/br-lisp.mgmt "
                    f"'table={T_ENCAP},cookie={ENCAP_COOKIE}'")
    m = re.search(r"flow_count=(\d+)", out)
    if not m:
        raise RuntimeError(f"cannot read dump-aggregate: {out!r}")
    return int(m.group(1))


def delete_encap_flows(xtr) -> None:
    xtr.ofctl(f"del-flows unix:{xtr.dir}/br-lisp.mgmt 'table={T_ENCAP},cookie={ENCAP_COOKIE}'")


def restart_controller(xtr) -> None:
    xtr.stop_controller()
    xtr.start_controller()
    xtr.wait_programmed()


def ours(xtr, client_path: Path, n: int) -> dict:
    from topologies.lispnode import API_PORT
    out = xtr.sh(f"{sys.executable} {client_path} {n} http://127.0.0.1:{API_PORT}")
    result = json.loads(out.strip().splitlines()[-1])
    held = flow_count(xtr)
    if held != n:
        raise RuntimeError(f"after the API answered the switch holds {held} of {n} flows")
    return {"seconds": result["seconds"], "answer": result["answer"]}


def baseline(xtr, flows_file: Path, n: int) -> dict:
    mgmt = f"unix:{xtr.dir}/br-lisp.mgmt"
    dump = xtr.ofctl(f"dump-flows --no-stats {mgmt} 'table={T_ENCAP},cookie={ENCAP_COOKIE}'")
    lines = [line.strip() for line in dump.splitlines() if "actions=" in line]
    if len(lines) != n:
        raise RuntimeError(f"dumped {len(lines)} flows, expected {n}")
    flows_file.write_text("\n".join(lines) + "\n")
    delete_encap_flows(xtr)
    if flow_count(xtr) != 0:
        raise RuntimeError("the flows did not go away")
    out = xtr.sh(f"s=$(date +%s.%N); ovs-ofctl -O OpenFlow13 --bundle add-flows {mgmt} "
                 f"{flows_file} && e=$(date +%s.%N) && echo \"elapsed $s $e\"")
    m = re.search(r"elapsed (\S+) (\S+)", out)
    if not m:
        raise RuntimeError(f"ovs-ofctl failed: {out}")
    held = flow_count(xtr)
    if held != n:
        raise RuntimeError(f"after ovs-ofctl the switch holds {held} of {n} flows")
    return {"seconds": float(m.group(2)) - float(m.group(1))}


def run(args) -> dict:
    from topologies.two_sites import TwoSites
    figures = {"sizes": args.sizes, "rounds": args.rounds, "runs": []}
    progress("building the two-site topology (x1 is used)")
    with TwoSites(tag=args.tag) as topo:
        x1 = topo.xtrs["x1"]
        for xtr in topo.xtrs.values():
            xtr.wait_programmed()
        client_path = topo.rundir / "bulk_client.py"
        client_path.write_text(CLIENT)
        flows_file = topo.rundir / "flows.txt"
        for n in args.sizes:
            for rnd in range(1, args.rounds + 1):
                progress(f"N={n} round {rnd}/{args.rounds}: lisp_app API (bundle)")
                mine = ours(x1, client_path, n)
                progress(f"  {mine['seconds']:.3f} s; ovs-ofctl --bundle add-flows of the same "
                         f"flows")
                x1.stop_controller()
                base = baseline(x1, flows_file, n)
                progress(f"  {base['seconds']:.3f} s; restarting the controller")
                delete_encap_flows(x1)
                restart_controller(x1)
                figures["runs"].append({"n": n, "round": rnd, "ours_s": mine["seconds"],
                                        "baseline_s": base["seconds"], "answer": mine["answer"]})
    summary = {}
    for n in args.sizes:
        runs = [r for r in figures["runs"] if r["n"] == n]
        ours_s = statistics.median(r["ours_s"] for r in runs)
        base_s = statistics.median(r["baseline_s"] for r in runs)
        summary[str(n)] = {"ours_s": ours_s, "baseline_s": base_s,
                           "ours_flows_per_s": n / ours_s, "baseline_flows_per_s": n / base_s,
                           "ratio": base_s / ours_s}
    figures["summary"] = summary
    return figures


def report(figures: dict) -> None:
    print(f"bench/flows: {figures['rounds']} round(s) per size; medians")
    print(f"{'N':>8} {'lisp_app API':>14} {'flows/s':>10} {'ovs-ofctl --bundle':>20} "
          f"{'flows/s':>10} {'ratio':>6}")
    for n in figures["sizes"]:
        s = figures["summary"][str(n)]
        print(f"{n:>8} {s['ours_s']:>12.3f} s {s['ours_flows_per_s']:>10.0f} "
              f"{s['baseline_s']:>18.3f} s {s['baseline_flows_per_s']:>10.0f} "
              f"{s['ratio']:>6.2f}")
    for r in figures["runs"]:
        print(f"  N={r['n']} round {r['round']}: lisp_app {r['ours_s']:.3f} s, "
              f"ovs-ofctl {r['baseline_s']:.3f} s")
    for n in figures["sizes"]:
        s = figures["summary"][str(n)]
        print(f"RESULT flows n={n} ours_s={s['ours_s']:.3f} ovs_ofctl_bundle_s="
              f"{s['baseline_s']:.3f} ratio={s['ratio']:.2f} (goal >= {GOAL} at 100000)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None,
                        help="comma-separated mapping counts (default 1000,10000,100000; "
                             "--quick 200,2000)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds per size, medians reported (default 3, --quick 1)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON here")
    parser.add_argument("--tag", default="f",
                        help="interface-name prefix, so that topologies can coexist (default f)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(v) for v in (args.sizes or ("200,2000" if args.quick
                                                      else "1000,10000,100000")).split(",")]
    except ValueError:
        parser.error("--sizes must be comma-separated numbers")
    if not all(1 <= n <= 1 << 20 for n in args.sizes):
        parser.error("--sizes must be between 1 and 1048576")
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if os.geteuid() != 0:
        print("bench/flows.py: run as root (Mininet and OVS need it)", file=sys.stderr)
        return 1
    return run_and_report("bench/flows.py", run, report, args, progress)


if __name__ == "__main__":
    sys.exit(main())
