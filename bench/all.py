"""Run every benchmark once, one after the other, and keep what they print: the input of
docs/benchmarks.rst.

Each benchmark's stdout (figures, then RESULT / ratio lines) goes to ``OUT/<name>.txt`` and, where
it writes JSON, ``OUT/<name>.json``; its progress (stderr) shows on the terminal as it runs.
``OUT/machine.json`` records the machine, the versions and the date; the plots go to
``OUT/miss_latency.png`` and ``OUT/flows_per_second.png``; the goals, met or missed, are printed
last and go to ``OUT/goals.txt`` (bench/goals.py). A benchmark that fails is reported and
the others still run; the exit status says whether all succeeded.

    sudo .venv/bin/python bench/all.py [--out DIR] [--only NAME,...] [--quick]

Root is needed for the topology benchmarks (xtr, flows, alt, msmr, failover, flood). About 24 minutes in
all.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

# name -> (script, arguments for a full run, arguments for --quick, writes JSON)
BENCHMARKS = {
    "codec": ("codec.py", [], ["--seconds", "0.5", "--repeats", "2"], False),
    "scale": ("scale.py", [], ["--quick"], True),
    "maplist": ("maplist.py", [], ["--quick"], True),
    "mapserver": ("mapserver.py", [], ["--quick"], True),
    "msmr": ("msmr.py", [], ["--quick"], True),
    "xtr": ("xtr.py", [], ["--quick"], True),
    "flows": ("flows.py", [], ["--quick"], True),
    "alt": ("alt.py", [], ["--quick"], True),
    "failover": ("failover.py", [], ["--quick"], True),
    "flood": ("flood.py", [], ["--quick"], True),
}


def command_output(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) \
        else "unavailable"


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "os": command_output(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "ovs": command_output(["ovs-vswitchd", "--version"]),
        "frr": command_output(["sh", "-c", "/usr/lib/frr/bgpd --version 2>&1 | head -1"]),
        "load_average_before": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"),
                        help="directory for the outputs (default ./bench-results)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="each benchmark's quick setting")
    args = parser.parse_args(argv)
    names = list(BENCHMARKS) if not args.only else args.only.split(",")
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    info = machine()
    (args.out / "machine.json").write_text(json.dumps(info, indent=1) + "\n")
    failed = []
    for name in names:
        script, full, quick, writes_json = BENCHMARKS[name]
        command = [sys.executable, str(BENCH / script), *(quick if args.quick else full)]
        if writes_json:
            command += ["--json", str(args.out / f"{name}.json")]
        print(f"== {name}: {' '.join(command)}", file=sys.stderr, flush=True)
        started = time.monotonic()
        with open(args.out / f"{name}.txt", "w") as out:
            status = subprocess.run(command, stdout=out, check=False).returncode
        seconds = time.monotonic() - started
        print(f"== {name}: exit {status} after {seconds:.0f} s", file=sys.stderr, flush=True)
        if status != 0:
            failed.append(name)
    plots = [sys.executable, str(BENCH / "plots.py"), "--out", str(args.out)]
    for name, option in (("xtr", "--xtr"), ("flows", "--flows")):
        if (args.out / f"{name}.json").exists() and name not in failed:
            plots += [option, str(args.out / f"{name}.json")]
    if len(plots) > 4:
        subprocess.run(plots, check=False)
    goals = subprocess.run([sys.executable, str(BENCH / "goals.py"), "--out", str(args.out)],
                           capture_output=True, text=True, check=False).stdout
    (args.out / "goals.txt").write_text(goals)
    print("goals:\n" + goals, file=sys.stderr)
    print(f"outputs in {args.out}" + (f"; FAILED: {', '.join(failed)}" if failed else ""),
          file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
