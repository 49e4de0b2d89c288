"""bench/alt.py runs end to end on a short setting and prints its RESULT lines with numbers.

A smoke test: it checks that the benchmark works (topology, Map-Request and echo runs, route
learning by x1, by FRR and by a bare os-ken speaker, parsing, teardown), not what it measures. It uses its own interface
tag so that it can run beside a full benchmark run or the other topologies.
"""

from __future__ import annotations

import pytest

from tests.integration.benchrun import NUMBER, run_bench

pytestmark = pytest.mark.integration

# A ratio whose denominator is a CPU time (or a time after Established, polled every 0.25 s) can be
# nan at this size: 500 routes may cost FRR's bgpd less than one 10 ms clock tick (seen in CI:
# frr_cpu_s=0.00, ours_over_frr=nan); the bench prints nan rather than divide by zero, and the
# full-size run has figures far above the tick.
RATIO = rf"(?:{NUMBER}|nan)"

RESULT_LINES = [
    rf"RESULT alt_routes n=[0-9]+ ours_s={NUMBER} frr_s={NUMBER} ours_routes_per_s={NUMBER} "
    rf"frr_routes_per_s={NUMBER} ratio={NUMBER} ours_after_established_s={NUMBER} "
    rf"frr_after_established_s={NUMBER} ratio_after_established={RATIO}",
    rf"RESULT alt_routes_floor n=[0-9]+ floor_s={NUMBER} fixed_floor_s={NUMBER} "
    rf"ours_s={NUMBER} frr_s={NUMBER} floor_over_frr={NUMBER} fixed_floor_over_frr={NUMBER} "
    rf"ours_over_fixed_floor={NUMBER} floor_after_established_s={NUMBER} "
    rf"fixed_floor_after_established_s={NUMBER}",
    rf"RESULT alt_routes_cpu n=[0-9]+ ours_cpu_s={NUMBER} frr_cpu_s={NUMBER} "
    rf"frr_zebra_cpu_s={NUMBER} floor_cpu_s={NUMBER} fixed_floor_cpu_s={NUMBER} "
    rf"ours_over_frr={RATIO} ours_over_fixed_floor={RATIO}",
    rf"RESULT map_server_answers_per_s={NUMBER} echo_per_s={NUMBER} ratio={NUMBER} "
    rf"meter_pps={NUMBER}",
    rf"RESULT map_resolver_forwarded_per_s={NUMBER} echo_per_s={NUMBER} ratio={NUMBER} "
    rf"meter_pps={NUMBER}",
]


def test_quick_alt_bench_prints_results(tmp_path):
    args = ["--quick", "--routes", "500", "--seconds", "1", "--timeout", "60", "--tag", "abq"]
    figures = run_bench("alt.py", args, RESULT_LINES, tmp_path / "alt.json", timeout=240)
    assert {"route_learning", "map_requests"} <= set(figures)
    assert {"ours", "frr", "floor", "floor_fixed"} <= set(figures["route_learning"])
