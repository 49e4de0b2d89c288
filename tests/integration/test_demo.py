"""The README's demo command runs end to end and tears everything down."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_demo_shows_the_lisp_alt_story_and_leaves_nothing_behind():
    run = subprocess.run([sys.executable, str(REPO / "topologies" / "demo.py")],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert " 0% packet loss" in out
    assert "Map-Request" in out and "inside GRE (the ALT)" in out
    assert "Map-Reply" in out and "on the underlay" in out
    assert "153.16.38.0/24" in out and "Map-Requests sent" in out
    assert out.rstrip().endswith("done: nothing left running")
    leftovers = subprocess.run(["pgrep", "-f", "lisp-seed-alt-"], capture_output=True,
                               text=True).stdout
    assert leftovers == ""
