"""bench/failover.py runs end to end with the fast probing setting and prints its RESULT line
with numbers. A smoke test of the benchmark (topology, controller restart, cut and repair,
parsing, teardown), not of what it measures; its own interface tag."""

from __future__ import annotations

import pytest

from tests.integration.benchrun import NUMBER, run_bench

pytestmark = pytest.mark.integration

RESULT_LINES = [
    rf"RESULT failover_fast interval=1 timeout=0\.5 misses=3 outage_s={NUMBER} lost={NUMBER} "
    rf"bound_s={NUMBER} ratio={NUMBER} back_s={NUMBER} lost_on_return={NUMBER}",
]


def test_quick_failover_bench_prints_results(tmp_path):
    figures = run_bench("failover.py", ["--quick", "--settings", "fast", "--tag", "fq"],
                        RESULT_LINES, tmp_path / "failover.json", timeout=300)
    (round_,) = figures["rounds"]["fast"]
    assert round_["state_after_cut"] == "down" and round_["outage_s"] > 0
