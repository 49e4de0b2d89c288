"""bench/codec.py runs: a tiny measuring budget, then the figures and the ratio lines (no timing
assertions: the figures depend on the machine)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "codec.py"
RATIO_LINE = re.compile(r"^ratio (\S+): codec/os-ken = (\d+\.\d\d) \(goal <= 1\.0\)$")


def test_bench_prints_figures_and_ratios():
    run = subprocess.run([sys.executable, str(BENCH), "--seconds", "0.04", "--repeats", "2",
                          "--rounds", "3"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    ratios = [RATIO_LINE.match(line) for line in lines[-2:]]
    assert all(ratios), run.stdout
    assert [m.group(1) for m in ratios] == ["map-request", "map-reply-2-locators"]
    assert all(float(m.group(2)) > 0 for m in ratios)
    assert sum("codec decode+encode" in line for line in lines) == 2
    assert sum("os-ken Packet(frame)" in line for line in lines) == 2
    rounds = [re.search(r"ratio per round: ([\d., ]+) \(lowest", line) for line in lines]
    per_round = [m.group(1).split(", ") for m in rounds if m]
    assert [len(r) for r in per_round] == [3, 3], run.stdout  # paired rounds, each reported
    assert "Warning" not in run.stderr


def test_bench_refuses_a_bad_budget():
    run = subprocess.run([sys.executable, str(BENCH), "--seconds", "0"], capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode != 0
    assert "--seconds" in run.stderr
    run = subprocess.run([sys.executable, str(BENCH), "--rounds", "0"], capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode != 0 and "--rounds" in run.stderr
