"""What the topology benchmarks share: run the measurement so that SIGTERM or Ctrl-C still tears
the topology down, print the RESULT report, and write the figures as JSON when asked."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path


def run_and_report(name: str, run, report, args, progress) -> int:
    """``run(args)`` returns the figures, ``report(figures)`` prints them; the exit status."""

    def stop_on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")  # unwinds through the topology's teardown
    signal.signal(signal.SIGTERM, stop_on_signal)

    try:
        figures = run(args)
    except KeyboardInterrupt as exc:
        print(f"{name}: interrupted ({exc or 'Ctrl-C'}); topology torn down", file=sys.stderr)
        return 130
    report(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, sort_keys=True,
                                              default=str) + "\n")
        progress(f"figures written to {args.json}")
    return 0


def best_time_per_call(function, budget: float, repeats: int) -> float:
    """Seconds per call: calls are batched so each repeat takes about budget/repeats seconds,
    and the fastest repeat counts (timeit's advice: the others only add noise)."""
    number = 1
    while True:  # calibrate the batch size
        started = time.perf_counter()
        for _ in range(number):
            function()
        elapsed = time.perf_counter() - started
        if elapsed >= 0.01 or number >= 1 << 20:
            break
        number *= 4
    number = max(1, int(number * (budget / repeats) / max(elapsed, 1e-9)))
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(number):
            function()
        best = min(best, (time.perf_counter() - started) / number)
    return best
