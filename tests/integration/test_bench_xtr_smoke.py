"""bench/xtr.py runs end to end on a short setting and prints its RESULT lines with numbers.

A smoke test: it checks that the benchmark works (topology, LISP and baseline phases, parsing,
teardown), not what it measures. It uses its own interface tag so that it can run beside a full
benchmark run or the other topologies.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
RESULT_LINES = [
    rf"RESULT tcp_lisp_gbps={NUMBER} tcp_plain_gbps={NUMBER} ratio={NUMBER}",
    rf"RESULT packet_ins_per_s={NUMBER}",
    rf"RESULT miss_latency_ms p50={NUMBER} p99={NUMBER} echo_rtt_ms p50={NUMBER} "
    rf"ratio_p50={NUMBER}",
]


def test_quick_bench_prints_results(tmp_path):
    figures_path = tmp_path / "xtr.json"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "xtr.py"), "--quick", "--seconds", "2",
         "--samples", "2", "--tag", "bq", "--json", str(figures_path)],
        cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the bench tears its topology down before exiting
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"bench/xtr.py did not finish in 300 s:\n{out}\n{err[-3000:]}")
    assert proc.returncode == 0, f"{out}\n{err[-3000:]}"
    lines = [line for line in out.splitlines() if line.strip()]
    results = [line for line in lines if line.startswith("RESULT ")]
    for pattern in RESULT_LINES:
        assert any(re.fullmatch(pattern, line) for line in results), (pattern, results)
    assert lines[-len(results):] == results, "the RESULT lines must come last"
    summary = json.loads(figures_path.read_text())["summary"]
    assert {"tcp_lisp_gbps", "tcp_plain_gbps", "tcp_ratio", "packet_ins_per_s",
            "miss_latency_p50_ms", "echo_rtt_p50_ms"} <= set(summary)
