"""bench/plots.py draws the report's PNGs from the benchmarks' JSON (shapes as the benchmarks
write them; the integration smoke tests feed it real runs too)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

PLOTS = Path(__file__).resolve().parents[2] / "bench" / "plots.py"

XTR = {"miss": {"latency_ms": [2.1, 2.4, 2.5, 2.7, 3.9, 2.6]},
       "summary": {"miss_baseline_p50_ms": 1.1, "miss_latency_p50_ms": 2.55}}
FLOWS = {"summary": {str(n): {"ours_flows_per_s": 20000.0 - n / 10,
                              "baseline_flows_per_s": 80000.0} for n in (1000, 10000, 100000)}}


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def run(*args):
    return subprocess.run([sys.executable, str(PLOTS), *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_both_plots_are_drawn(tmp_path):
    (tmp_path / "xtr.json").write_text(json.dumps(XTR))
    (tmp_path / "flows.json").write_text(json.dumps(FLOWS))
    out = tmp_path / "out"
    result = run("--xtr", str(tmp_path / "xtr.json"), "--flows", str(tmp_path / "flows.json"),
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert png_size(out / "miss_latency.png") == (1000, 400)
    assert png_size(out / "flows_per_second.png") == (600, 400)


def test_figures_without_samples_are_refused(tmp_path):
    bad = dict(XTR, miss={"latency_ms": []})
    (tmp_path / "xtr.json").write_text(json.dumps(bad))
    result = run("--xtr", str(tmp_path / "xtr.json"), "--out", str(tmp_path))
    assert result.returncode == 1 and "no miss latency samples" in result.stderr
    assert not (tmp_path / "miss_latency.png").exists()


def test_nothing_to_plot_is_an_error():
    result = run()
    assert result.returncode == 2 and "--xtr and/or --flows" in result.stderr
