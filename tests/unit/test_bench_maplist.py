"""bench/maplist.py at a tiny size: the figures, the JSON and the RESULT lines come out
well-formed and consistent with each other, every entry was listed, and bad arguments are
refused. No timing assertions: the figures depend on the machine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAPLIST = REPO / "bench" / "maplist.py"
NUMBER = r"(\d+(?:\.\d+)?)"


def run(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAPLIST), *args], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=REPO)


def test_maplist_reports_page_holds_against_the_whole_list(tmp_path):
    out = tmp_path / "maplist.json"
    done = run("--entries", "4500", "--before", "2500", "--repeats", "1", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert re.search(r"^\[bench/maplist +\d+\.\ds\] ", done.stderr, re.M), done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.strip().splitlines()
    before, paged, others, pause = lines[-4:]
    m = re.fullmatch(rf"RESULT map_list_before entries=2500 whole_list_ms={NUMBER} "
                     rf"paged_longest_ms={NUMBER} ratio={NUMBER} \(whole list / longest page\)",
                     before)
    assert m, before
    whole, longest, ratio = (float(g) for g in m.groups())
    assert whole > 0 and longest > 0 and abs(ratio - whole / longest) <= 0.5 + 0.01 * ratio
    m = re.fullmatch(rf"RESULT map_list_paged entries=4500 longest_ms={NUMBER} "
                     rf"default_longest_ms={NUMBER} churn_longest_ms={NUMBER} "
                     rf"longest_cpu_ms={NUMBER} ratio={NUMBER} \(longest / 50 ms; goal <= 1\)",
                     paged)
    assert m, paged
    top, default, churn, cpu, goal_ratio = (float(g) for g in m.groups())
    assert top == max(default, churn) and cpu > 0 and abs(goal_ratio - top / 50) <= 0.01
    assert re.fullmatch(rf"RESULT other_gets entries=4500 locators_ms={NUMBER} "
                        rf"metrics_ms={NUMBER} mapstat_ms={NUMBER} map_lookup_ms={NUMBER} "
                        rf"\(worst of 1\)", others), others
    m = re.fullmatch(rf"RESULT gc_pause entries=4500 full_gc_ms={NUMBER} "
                     rf"fill_longest_ms={NUMBER} nothing_frozen_ms={NUMBER} ratio={NUMBER} "
                     rf"\(one full collection with nothing frozen / under the controller's "
                     rf"policy\)", pause)
    assert m, pause

    figures = json.loads(out.read_text())
    page = figures["parameters"]["page"]
    assert figures["before"]["entries"] == 2500
    assert figures["before"]["paged"]["pages"] == -(-2500 // page)
    after = figures["after"]
    assert after["entries"] == 4500
    assert after["default"]["listed"] == 4500
    assert after["default"]["pages"] == -(-4500 // page)
    churn = after["churn"]
    assert churn["removed"] == churn["pages"] - 1 and churn["listed"] >= 4500 - churn["removed"]
    assert after["full_gc_ms"] > 0 and after["full_gc_unfrozen_ms"] > 0
    # the controller's policy froze the filled xTR: a full collection looks at few objects
    assert after["gc_frozen"] > 4500 * 3 > after["gc_tracked"] - after["gc_frozen"]


def test_maplist_refuses_bad_arguments():
    for args, complaint in ((["--entries", "10", "--before", "20"], "need 1 <= --before"),
                            (["--entries", "2000000"], "need 1 <= --before <= --entries"),
                            (["--repeats", "0"], "--repeats must be at least 1"),
                            (["--entries", "many"], "'many' is not a whole number")):
        done = run(*args, timeout=60)
        assert done.returncode == 2, (args, done.stdout)
        assert complaint in done.stderr, (args, done.stderr)
        assert not done.stdout
