"""The performance goals, read off one bench/all.py run: each goal with the figure that decides it
and whether it is met, from the RESULT lines the benchmarks printed to ``OUT/<name>.txt``.

    .venv/bin/python bench/goals.py [--out DIR]

bench/all.py prints this table at its end and writes it to ``OUT/goals.txt``. A goal whose
benchmark did not run (or printed no RESULT line for it) is reported as "not measured", never as
met. The exit status is 0 when every measured goal is met (the ALT line is a report, not a goal
check: it is met when the ratio is <= 2).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

MET, MISSED, UNMEASURED = "met", "MISSED", "not measured"


@dataclass(frozen=True)
class Goal:
    name: str
    status: str
    figure: str


def results(text: str) -> dict[str, dict[str, str]]:
    """RESULT lines by their first word: ``RESULT flows n=100000 ratio=0.81`` gives
    ``{"flows n=100000": ...}`` for lines whose second word holds ``n=``, else the first word
    (a second line of the same first word: that and its second key, ``msmr_lisp_app_per_s
    oor_per_s``);
    the values are the line's ``key=value`` pairs (the value's text up to the next blank or
    parenthesis; the first of a repeated key)."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if not line.startswith("RESULT "):
            continue
        words = line.split()
        if len(words) < 2:
            continue
        key = words[1].split("=")[0]
        if len(words) > 2 and words[2].startswith("n="):
            key = f"{key} {words[2]}"
        elif key in out and len(words) > 2:  # a second line of that name: told by its 2nd key
            key = f"{key} {words[2].split('=')[0]}"
        values: dict[str, str] = {}
        for name, value in re.findall(r"(\w+)=([^\s(]+)", line[len("RESULT "):]):
            values.setdefault(name, value)  # the first: "p50=" may come again for the baseline
        out[key] = values
    return out


def _number(values: dict[str, str], key: str) -> float | None:
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


def _read(out_dir: Path, name: str) -> dict[str, dict[str, str]]:
    path = out_dir / f"{name}.txt"
    return results(path.read_text(errors="replace")) if path.exists() else {}


def goals(out_dir: Path) -> list[Goal]:
    found: list[Goal] = []

    flows = _read(out_dir, "flows")
    big = flows.get("flows n=100000")
    ratio = _number(big, "ratio") if big else None
    if ratio is None:
        found.append(Goal("flows: bulk API vs ovs-ofctl --bundle at 100k >= 0.8", UNMEASURED, ""))
    else:
        small = ", ".join(f"{n}: {v.get('ratio')}" for k, v in flows.items()
                          for n in [k.split("n=")[-1]] if k != "flows n=100000")
        found.append(Goal("flows: bulk API vs ovs-ofctl --bundle at 100k >= 0.8",
                          MET if ratio >= 0.8 else MISSED,
                          f"ratio {ratio:.2f} ({big.get('ours_s')} s vs "
                          f"{big.get('ovs_ofctl_bundle_s')} s)" + (f"; {small}" if small else "")))

    miss = _read(out_dir, "xtr").get("miss_latency_ms")
    over = _number(miss, "overhead_p50_ms") if miss else None
    p50 = _number(miss, "p50") if miss else None
    p99 = _number(miss, "p99") if miss else None
    if over is None or p50 is None or p99 is None:
        found.append(Goal("miss: overhead <= 2 ms at p50, p99 <= 2x p50", UNMEASURED, ""))
    else:
        ok = over <= 2.0 and p99 <= 2 * p50
        found.append(Goal("miss: overhead <= 2 ms at p50, p99 <= 2x p50", MET if ok else MISSED,
                          f"overhead {over:.3f} ms; p50 {p50:.3f} ms, p99 {p99:.3f} ms "
                          f"({p99 / p50:.2f}x)"))

    mapserver = _read(out_dir, "mapserver")
    modes = {k: _number(v, "ratio") for k, v in mapserver.items() if k.endswith("_per_s")}
    if not modes or any(v is None for v in modes.values()):
        found.append(Goal("MS/MR engines vs the echo loop >= 0.5", UNMEASURED, ""))
    else:
        ok = all(v >= 0.5 for v in modes.values())
        found.append(Goal("MS/MR engines vs the echo loop >= 0.5", MET if ok else MISSED,
                          ", ".join(f"{k[:-len('_per_s')]} {v:.3f}" for k, v in modes.items())))

    msmr = _read(out_dir, "msmr")
    echo = msmr.get("msmr_lisp_app_per_s")
    ratio = _number(echo, "ratio") if echo else None
    name = "switchless ms-mr over its sockets (msmr.py) vs a Python echo >= 0.5"
    if ratio is None:
        found.append(Goal(name, UNMEASURED, ""))
    else:
        found.append(Goal(name, MET if ratio >= 0.5 else MISSED,
                          f"ratio {ratio:.2f} ({echo.get('msmr_lisp_app_per_s')}/s against "
                          f"{echo.get('echo_per_s')}/s)"))

    two = _read(out_dir, "scale").get("memory_2_locators")
    rss = _number(two, "rss_mib_at_1m") if two else None
    entries = _number(two, "entries") if two else None
    if rss is None or entries is None:
        found.append(Goal("scale: 1M entries, 2 locators, <= 1 GiB RSS (measured)", UNMEASURED, ""))
    else:
        measured = entries >= 1_000_000
        ok = measured and rss <= 1024
        found.append(Goal("scale: 1M entries, 2 locators, <= 1 GiB RSS (measured)",
                          MET if ok else MISSED,
                          f"{rss:.0f} MiB at {int(entries):,} entries"
                          + ("" if measured else " (extrapolated: not a measurement to 1M)")))

    alt = _read(out_dir, "alt")
    routes = next((v for k, v in alt.items() if k.startswith("alt_routes n=")), None)
    floor = next((v for k, v in alt.items() if k.startswith("alt_routes_floor")), None)
    ratio = _number(routes, "ratio") if routes else None
    if ratio is None:
        found.append(Goal("ALT: route learning vs FRR <= 2x (with os-ken's floor)", UNMEASURED, ""))
    else:
        text = f"ours/FRR {ratio:.2f}"
        if floor:
            text += "; " + ", ".join(f"{k} {v}" for k, v in floor.items()
                                     if k.endswith("_over_frr") or k.startswith("ours_over"))
        found.append(Goal("ALT: route learning vs FRR <= 2x (with os-ken's floor)",
                          MET if ratio <= 2.0 else MISSED, text))
    return found


def table(found: list[Goal]) -> str:
    width = max(len(g.name) for g in found)
    return "\n".join(f"{g.name:<{width}}  {g.status:<12}  {g.figure}" for g in found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"),
                        help="bench/all.py's output directory (default ./bench-results)")
    args = parser.parse_args(argv)
    found = goals(args.out)
    print(table(found))
    return 0 if all(g.status != MISSED for g in found) else 1


if __name__ == "__main__":
    sys.exit(main())
