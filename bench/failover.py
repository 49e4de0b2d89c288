"""Failover time and loss with RLOC probing, for the default probing setting and the fast one,
in one run on the same topology (topologies/failover.py on topologies/two_sites.py, interface
tag "v"): x2's site has two locators, 198.51.100.1 (priority 1) and 198.51.100.2 (priority 2).
Each round: x1's controller is restarted with the setting (cold map-cache), h1 resolves h2's
mapping and x1 probes both locators up; then h1 pings h2 ten times a second, and after a random
delay within one probing interval (so that the cut falls anywhere in the probe cycle) the
underlay router blackholes the preferred locator; the flow moves when x1 marks it down; the
blackhole is then removed and the flow comes back when x1's probe is answered again. x2 does not
probe here: the blackhole also cuts its own return path (answers to its probes come back to
198.51.100.1), and it would mark x1 down (docs/architecture.rst, "What probing cannot tell").

Figures per round: seconds from the cut until the flow moved and until the first echo reply
came back (the outage), echo requests lost, seconds from the repair until the flow was back on
the preferred locator and the loss then. The baseline of each setting is its designed detection
bound, interval + misses x timeout (the last answered probe may have left just before the cut);
the RESULT lines give the median outage and its ratio to that bound (<= 1: within it).

    sudo .venv/bin/python bench/failover.py [--rounds R] [--quick] [--settings fast,default]
                                            [--json PATH] [--tag T]

--quick: one round per setting. The default run (2 rounds each) takes about 6 minutes, most of
it waiting for the default setting's 60-second probes.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import run_and_report  # noqa: E402

from lisp_app.config import ProbingConfig  # noqa: E402

DEFAULT = ProbingConfig()
SETTINGS = {
    "default": {"interval": DEFAULT.interval, "timeout": DEFAULT.timeout,
                "misses": DEFAULT.misses},
    "fast": {"interval": 1.0, "timeout": 0.5, "misses": 3},
}
_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench/failover {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr,
          flush=True)


def detection_bound(s: dict) -> float:
    return s["interval"] + s["misses"] * s["timeout"]


def restart_x1(topo, probing: dict) -> None:
    x1 = topo.xtrs["x1"]
    x1.stop_controller()
    x1.spec.extra = {"probing": probing}
    for bridge in ("br-lisp", "br-u"):
        x1.ofctl(f"del-flows {bridge}")
    x1.start_controller()
    x1.wait_programmed()


def run(args) -> dict:
    from topologies.failover import cut_and_restore, prepare
    from topologies.two_sites import TwoSites, site_spec

    rng = random.Random(args.seed)
    chosen = {name: SETTINGS[name] for name in args.settings}
    figures = {"parameters": {"rounds": args.rounds, "seed": args.seed, "tag": args.tag},
               "settings": chosen, "rounds": {name: [] for name in chosen}}
    progress(f"building the two-site topology (tag {args.tag!r})")
    x2 = site_spec(2, tag=args.tag, priorities=(1, 2))
    # x2 does not probe: the cut also takes its own return path (answers to its probes come back
    # to 198.51.100.1, its ITR-RLOC), so it would mark x1 down and drop h2's replies
    x2.extra = {"probing": {"enabled": False}}
    with TwoSites(site_spec(1, tag=args.tag), x2, tag=args.tag) as topo:
        for n in range(args.rounds):
            for name, s in chosen.items():
                label = f"round {n + 1}/{args.rounds} {name}"
                progress(f"{label}: x1 restarted with probing {s}")
                restart_x1(topo, s)
                prepare(topo, both_up_within=15)
                cut_after = rng.uniform(1.0, s["interval"])
                bound = detection_bound(s)
                progress(f"{label}: pinging, cut after {cut_after:.1f} s (detection bound "
                         f"{bound:.1f} s)")
                f = cut_and_restore(topo, detect_within=bound + 5,
                                    return_within=s["interval"] + s["timeout"] + 5,
                                    settle=2.0, cut_after=cut_after)
                f["cut_after_s"] = cut_after
                progress(f"{label}: flow moved {f['flow_moved_s']:.2f} s after the cut, traffic "
                         f"resumed after {f['outage_s']:.2f} s, {f['lost']} lost; back "
                         f"{f['flow_back_s']:.2f} s after the repair, {f['lost_on_return']} "
                         "lost")
                figures["rounds"][name].append(f)
        progress("tearing down")
    return figures


def report(figures: dict) -> None:
    print(f"parameters: {figures['parameters']}")
    for name, rounds in figures["rounds"].items():
        s = figures["settings"][name]
        for n, f in enumerate(rounds, 1):
            print(f"{name} round {n}: cut {f['cut_after_s']:.1f} s into the probe cycle; flow "
                  f"moved after {f['flow_moved_s']:.2f} s; traffic resumed after "
                  f"{f['outage_s']:.2f} s, {f['lost']} echo requests lost (10/s); back on the "
                  f"preferred locator {f['flow_back_s']:.2f} s after the repair, "
                  f"{f['lost_on_return']} lost")
    for name, rounds in figures["rounds"].items():
        s = figures["settings"][name]
        bound = detection_bound(s)
        outage = statistics.median(f["outage_s"] for f in rounds)
        lost = statistics.median(f["lost"] for f in rounds)
        back = statistics.median(f["flow_back_s"] for f in rounds)
        print(f"RESULT failover_{name} interval={s['interval']:g} timeout={s['timeout']:g} "
              f"misses={s['misses']} outage_s={outage:.2f} lost={lost:g} "
              f"bound_s={bound:.2f} ratio={outage / bound:.3f} back_s={back:.2f} "
              f"lost_on_return={max(f['lost_on_return'] or 0 for f in rounds)}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds per setting (default 2, --quick 1)")
    parser.add_argument("--quick", action="store_true", help="one round per setting")
    parser.add_argument("--seed", type=int, default=7, help="seeds the cut times")
    parser.add_argument("--settings", default="default,fast",
                        help="which probing settings to measure (default: default,fast)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON here")
    parser.add_argument("--tag", default="v",
                        help="interface-name prefix, so that topologies can coexist (default v)")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.settings = [s for s in args.settings.split(",") if s]
    unknown = [s for s in args.settings if s not in SETTINGS]
    if unknown or not args.settings:
        parser.error(f"--settings: choose among {', '.join(SETTINGS)}")
    if os.geteuid() != 0:
        print("bench/failover.py: run as root (Mininet and OVS need it)", file=sys.stderr)
        return 1
    return run_and_report("bench/failover.py", run, report, args, progress)


if __name__ == "__main__":
    sys.exit(main())
