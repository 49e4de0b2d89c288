"""Run a benchmark script as the smoke tests do: to completion (SIGTERM on overrun, so that it
tears its topology down), then check that its RESULT lines match and come last."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"


def run_bench(script: str, args: list[str], result_patterns: list[str], json_path: Path,
              timeout: float) -> dict:
    """Run ``bench/<script>`` with ``args`` and ``--json json_path``; return the figures."""
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / script), *args, "--json", str(json_path)],
        cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the bench tears its topology down before exiting
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"bench/{script} did not finish in {timeout:.0f} s:\n{out}\n{err[-3000:]}")
    assert proc.returncode == 0, f"{out}\n{err[-3000:]}"
    lines = [line for line in out.splitlines() if line.strip()]
    results = [line for line in lines if line.startswith("RESULT ")]
    for pattern in result_patterns:
        assert any(re.fullmatch(pattern, line) for line in results), (pattern, results)
    assert lines[-len(results):] == results, "the RESULT lines must come last"
    return json.loads(json_path.read_text())


def run_plots(tmp_path: Path, option: str, json_path: Path) -> None:
    """bench/plots.py draws its PNG from a real run's JSON."""
    out = tmp_path / "plots"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "plots.py"), option,
                           str(json_path), "--out", str(out)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    pngs = list(out.glob("*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:4] == b"\x89PNG"
