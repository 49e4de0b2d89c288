"""The benchmark suite stays whole: every benchmark script is listed by bench/all.py and has a test
that runs it at a tiny size (so that none can rot unnoticed); bench/all.py refuses what it does not
know."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HELPERS = {"harness.py", "plots.py", "all.py", "goals.py"}  # not benchmarks themselves


def benchmark_scripts() -> set[str]:
    return {p.name for p in (REPO / "bench").glob("*.py")} - HELPERS


def test_every_benchmark_is_in_the_suite_runner():
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import all as suite  # bench/all.py
    finally:
        sys.path.pop(0)
    listed = {script for script, _full, _quick, _json in suite.BENCHMARKS.values()}
    assert listed == benchmark_scripts()


def test_every_benchmark_has_a_tiny_run_in_the_tests():
    texts = "\n".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py"))
    for script in benchmark_scripts():
        runs = re.search(rf'run_bench\("{re.escape(script)}"|"bench" / "{re.escape(script)}"',
                         texts)
        assert runs, f"no test runs bench/{script}"


def test_the_runner_refuses_unknown_benchmarks(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "bench" / "all.py"), "--out", str(tmp_path),
                          "--only", "codec,nosuch"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 2 and "unknown benchmark(s) nosuch" in out.stderr
