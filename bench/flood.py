"""Floods against one site, with the no-flood baseline in the same run (topologies/floods.py on
topologies/two_sites.py with a second blue prefix at x2, interface tag "y"; the generator is
bench/udpflood.c).

Three scenarios, each measured first without, then with the flood, in every round:

- miss: h1 floods uncached destinations from 10.1.0.10 as fast as the lab goes; hb1, the
  site's other host (its own port), pings over a cached mapping 20 times a second and after 2 s
  makes a first contact to 10.22.0.10, cold in x1's map-cache;
- control: the underlay router sends 50,000 datagrams a second that are no LISP message to x1's
  RLOC, UDP 4342 (50 times the control meter's rate, 200 times one source's share); after 2 s
  h2 makes a first contact to 10.1.0.10, cold in x2's map-cache, so that x2's Map-Request must
  get through to x1;
- control_max: the same as fast as the router goes. At that rate x1's uplink (OVS's receive
  queue) drops packets before any flow sees them, so the genuine request is lost with the
  garbage at random: no meter in the switch can choose (docs/troubleshooting.rst).

Figures: datagrams offered (and per second), dropped by the switch's meters (policed), punted
to x1's controller (misses) or classified by it as malformed, the cached ping's loss, and the
first contact's time to its first reply. The RESULT lines give the medians over the rounds and
the ratio of the first contact's time under flood to its baseline; the goal (issue 15) is a
first contact within 1 s under the miss and control floods, and a cached ping losing less
than 5%.

    sudo .venv/bin/python bench/flood.py [--seconds S] [--rounds R] [--quick] [--json PATH]
                                         [--tag T]

--quick: one round of 6 s floods (about 1.5 minutes). The default (3 rounds of 10 s) takes about
5 minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import run_and_report  # noqa: E402

_started = time.monotonic()
CONTROL_RATE = 50000  # datagrams/s of the control scenario
SCENARIOS = ("miss", "control", "control_max")


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f} s] {message}", file=sys.stderr, flush=True)


def run(args) -> dict:
    from functools import partial

    from topologies import floods
    from topologies.two_sites import TwoSites, site_spec

    figures = {"parameters": {"seconds": args.seconds, "rounds": args.rounds,
                              "control_rate": CONTROL_RATE},
               "miss": [], "control": [], "control_max": []}
    scenarios = (("miss", floods.miss_scenario),
                 ("control", partial(floods.control_scenario, rate=CONTROL_RATE)),
                 ("control_max", partial(floods.control_scenario, rate=0)))
    with tempfile.TemporaryDirectory(prefix="lisp-flood-") as work:
        tool = floods.build_tool(Path(work))
        with TwoSites(site_spec(1, tag=args.tag), floods.x2_spec(args.tag),
                      rundir=work, tag=args.tag) as topo:
            floods.prepare(topo)
            for n in range(1, args.rounds + 1):
                for name, scenario in scenarios:
                    pair = {}
                    for label, flood in (("baseline", False), ("flood", True)):
                        progress(f"round {n}: {name} {label}")
                        f = scenario(topo, tool, args.seconds, flood=flood)
                        f.pop("first_contact_output")
                        pair[label] = f
                    figures[name].append(pair)
            progress("tearing down")
    return figures


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _s(value) -> str:
    return "none" if value is None else f"{value:.3f}"


def report(figures: dict) -> None:
    print(f"parameters: {figures['parameters']}")
    for name in SCENARIOS:
        for n, pair in enumerate(figures[name], 1):
            b, f = pair["baseline"], pair["flood"]
            extra = (f"punted {f['punted']}, cached ping {f['cached_received']}/"
                     f"{f['cached_sent']}" if name == "miss" else
                     f"classified malformed {f['malformed']}, answered {f['answered']}")
            print(f"{name} round {n}: offered {f['offered']} ({f['offered_pps']:.0f}/s), "
                  f"policed {f['policed']}, {extra}; first contact {_s(f['first_contact_s'])} s "
                  f"(baseline {_s(b['first_contact_s'])} s)")
    for name in SCENARIOS:
        pairs = figures[name]
        flood = [p["flood"] for p in pairs]
        first = [f["first_contact_s"] for f in flood]
        worst = None if None in first else max(first)
        base = _median(p["baseline"]["first_contact_s"] for p in pairs)
        med = _median(first)
        ratio = "none" if med is None or not base else f"{med / base:.1f}"
        line = (f"RESULT flood_{name} offered_pps={_median(f['offered_pps'] for f in flood):.0f} "
                f"policed={_median(f['policed'] for f in flood):.0f} "
                f"first_contact_s={_s(med)} worst_s={_s(worst)} "
                f"baseline_s={_s(base)} ratio={ratio}")
        if name == "miss":
            line += (f" punted={_median(f['punted'] for f in flood):.0f} "
                     f"cached_loss={max(f['cached_loss'] for f in flood):.3f}")
        else:
            line += f" malformed={_median(f['malformed'] for f in flood):.0f}"
        print(line)
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None,
                        help="length of each flood (default 10, --quick 6)")
    parser.add_argument("--rounds", type=int, default=None, help="default 3, --quick 1")
    parser.add_argument("--quick", action="store_true", help="one round of 6 s floods")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON here")
    parser.add_argument("--tag", default="y",
                        help="interface-name prefix, so that topologies can coexist (default y)")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (6.0 if args.quick else 10.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if not 6 <= args.seconds <= 60 or args.rounds < 1:  # the probes need 2 + 3 s of flood
        parser.error("--seconds must be within 6..60 and --rounds at least 1")
    if os.geteuid() != 0:
        print("bench/flood.py: run as root (Mininet and OVS need it)", file=sys.stderr)
        return 1
    return run_and_report("bench/flood.py", run, report, args, progress)


if __name__ == "__main__":
    sys.exit(main())
