"""bench/flows.py runs end to end at a tiny size: the bulk API installs N mappings in one bundle,
the switch holds exactly N encapsulation flows (the bench checks it with dump-aggregate), and
``ovs-ofctl --bundle add-flows`` of the dumped flows gives the same count. A smoke test of the
benchmark and of the bulk path on real OVS, not of what it measures."""

from __future__ import annotations

import pytest

from tests.integration.benchrun import NUMBER, run_bench, run_plots

pytestmark = pytest.mark.integration


def test_quick_flows_bench_prints_results(tmp_path):
    sizes = [50, 300]
    result_lines = [rf"RESULT flows n={n} ours_s={NUMBER} ovs_ofctl_bundle_s={NUMBER} "
                    rf"ratio={NUMBER} \(goal >= 0\.8 at 100000\)" for n in sizes]
    figures = run_bench("flows.py", ["--sizes", ",".join(map(str, sizes)), "--rounds", "1",
                                     "--tag", "fq"], result_lines, tmp_path / "flows.json",
                        timeout=240)
    for run in figures["runs"]:
        assert run["answer"] == {"added": run["n"], "flows": run["n"], "groups": 0,
                                 "bundles": 1}
    assert set(figures["summary"]) == {"50", "300"}
    run_plots(tmp_path, "--flows", tmp_path / "flows.json")
