"""bench/msmr.py runs end to end on a short setting and prints its RESULT lines with numbers.

A smoke test: it checks that the benchmark works (the compiled client and echo, the Python echo,
lisp_app's switchless Map-Server/Map-Resolver with one and with many registrations, Open Overlay
Router's Map-Server, parsing, teardown), not what it measures. Its own namespace name lets it run
beside a full benchmark run.
"""

from __future__ import annotations

import pytest

from tests.integration.benchrun import NUMBER, run_bench

pytestmark = pytest.mark.integration

RESULT_LINES = [
    rf"RESULT msmr_client_ceiling_per_s={NUMBER}",
    rf"RESULT msmr_lisp_app_per_s={NUMBER} echo_per_s={NUMBER} ratio={NUMBER} \(goal >= 0.5\)",
    rf"RESULT msmr_lisp_app_per_s={NUMBER} oor_per_s={NUMBER} ratio={NUMBER} \(goal >= 1.0\)",
    rf"RESULT msmr_registrations=500 lisp_app_per_s={NUMBER} ratio_to_one={NUMBER}",
]


def test_quick_msmr_bench_prints_results(tmp_path):
    args = ["--quick", "--seconds", "0.5", "--registrations", "500", "--tag", "bmsq"]
    figures = run_bench("msmr.py", args, RESULT_LINES, tmp_path / "msmr.json", timeout=240)
    (row,) = figures["rounds"]
    assert row["lisp_app_big"]["registrations"] == 500
    assert row["lisp_app"]["valid"] > 0 and row["oor"]["valid"] > 0
