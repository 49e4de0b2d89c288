"""bench/xtr.py runs end to end on a short setting and prints its RESULT lines with numbers.

A smoke test: it checks that the benchmark works (topology, LISP-GPE, classic-header and baseline
phases, parsing, teardown), not what it measures. It uses its own interface tag so that it can run
beside a full benchmark run or the other topologies.
"""

from __future__ import annotations

import pytest

from tests.integration.benchrun import NUMBER, run_bench, run_plots

pytestmark = pytest.mark.integration

RESULT_LINES = [
    rf"RESULT tcp_lisp_gbps={NUMBER} tcp_plain_gbps={NUMBER} ratio={NUMBER}",
    rf"RESULT packet_ins_per_s={NUMBER}",
    rf"RESULT miss_latency_ms p50={NUMBER} p99={NUMBER} echo_rtt_ms p50={NUMBER} "
    rf"ratio_p50={NUMBER} udp_rtt_ms p50={NUMBER} overhead_p50_ms={NUMBER} \(goal <= 2\)",
    rf"RESULT classic_tcp_gbps={NUMBER} gpe_tcp_gbps={NUMBER} ratio={NUMBER} \(goal >= 0\.9\)",
    rf"RESULT classic_udp_kpps={NUMBER} gpe_udp_kpps={NUMBER} ratio={NUMBER} \(goal >= 0\.9\)",
]


def test_quick_bench_prints_results(tmp_path):
    args = ["--quick", "--seconds", "2", "--samples", "2", "--tag", "bq"]
    summary = run_bench("xtr.py", args, RESULT_LINES, tmp_path / "xtr.json",
                        timeout=300)["summary"]
    assert {"tcp_lisp_gbps", "tcp_plain_gbps", "tcp_ratio", "packet_ins_per_s",
            "miss_latency_p50_ms", "echo_rtt_p50_ms", "udp_rtt_p50_ms",
            "miss_overhead_p50_ms", "tcp_classic_gbps", "tcp_classic_ratio",
            "udp_classic_kpps", "udp_classic_ratio"} <= set(summary)
    assert summary["miss_baseline_p50_ms"] == pytest.approx(
        summary["echo_rtt_p50_ms"] + summary["udp_rtt_p50_ms"])
    run_plots(tmp_path, "--xtr", tmp_path / "xtr.json")
