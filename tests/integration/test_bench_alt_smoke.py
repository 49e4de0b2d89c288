"""bench/alt.py runs end to end on a short setting and prints its RESULT lines with numbers.

A smoke test: it checks that the benchmark works (topology, Map-Request and echo runs, route
learning by x1 and by FRR, parsing, teardown), not what it measures. It uses its own interface
tag so that it can run beside a full benchmark run or the other topologies.
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
    rf"RESULT alt_routes n=[0-9]+ ours_s={NUMBER} frr_s={NUMBER} ours_routes_per_s={NUMBER} "
    rf"frr_routes_per_s={NUMBER} ratio={NUMBER} ours_after_established_s={NUMBER} "
    rf"frr_after_established_s={NUMBER} ratio_after_established={NUMBER}",
    rf"RESULT map_server_answers_per_s={NUMBER} echo_per_s={NUMBER} ratio={NUMBER} "
    rf"meter_pps={NUMBER}",
    rf"RESULT map_resolver_forwarded_per_s={NUMBER} echo_per_s={NUMBER} ratio={NUMBER} "
    rf"meter_pps={NUMBER}",
]


def test_quick_alt_bench_prints_results(tmp_path):
    figures_path = tmp_path / "alt.json"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "alt.py"), "--quick", "--routes", "500",
         "--seconds", "1", "--timeout", "60", "--tag", "abq", "--json", str(figures_path)],
        cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the bench tears its topology down before exiting
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"bench/alt.py did not finish in 240 s:\n{out}\n{err[-3000:]}")
    assert proc.returncode == 0, f"{out}\n{err[-3000:]}"
    lines = [line for line in out.splitlines() if line.strip()]
    results = [line for line in lines if line.startswith("RESULT ")]
    for pattern in RESULT_LINES:
        assert any(re.fullmatch(pattern, line) for line in results), (pattern, results)
    assert lines[-len(results):] == results, "the RESULT lines must come last"
    figures = json.loads(figures_path.read_text())
    assert {"route_learning", "map_requests"} <= set(figures)
