"""bench/scale.py and bench/mapserver.py at tiny sizes: the figures, the JSON and the RESULT lines
come out well-formed and consistent with each other, and bad arguments are refused. No timing
assertions: the figures depend on the machine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCALE = REPO / "bench" / "scale.py"
MAPSERVER = REPO / "bench" / "mapserver.py"
NUMBER = r"(\d+(?:\.\d+)?)"


def run(script: Path, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=REPO)


def result_lines(stdout: str) -> list[str]:
    """The RESULT lines, which must be the last lines of the output."""
    lines = stdout.strip().splitlines()
    results = [line for line in lines if line.startswith("RESULT ")]
    assert results and lines[-len(results):] == results, stdout
    return results


def test_scale_reports_memory_and_lookups(tmp_path):
    out = tmp_path / "scale.json"
    done = run(SCALE, "--entries", "6000", "--step", "2000", "--one-locator", "2000",
               "--lookups", "500", "--repeats", "1", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert re.search(r"^\[bench/scale +\d+\.\ds\] ", done.stderr, re.M), done.stderr
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr
    two, one, hit, miss = result_lines(done.stdout)

    memory = re.fullmatch(
        rf"RESULT memory_2_locators entries=6000 rss_mib_per_100k={NUMBER} "
        rf"rss_mib_at_1m={NUMBER} \(extrapolated\) fits_1gib=(yes|no) "
        rf"\(goal: 1M entries with 2 locators in <= 1 GiB\)", two)
    assert memory, two
    per_100k, at_1m = float(memory.group(1)), float(memory.group(2))
    assert per_100k > 0 and at_1m > per_100k
    assert (memory.group(3) == "yes") == (at_1m <= 1024)
    assert re.fullmatch(rf"RESULT memory_1_locator entries=2000 rss_mib_per_100k={NUMBER} "
                        rf"rss_mib_at_1m={NUMBER} \(extrapolated\) fits_1gib=(yes|no)", one), one
    for line, name in ((hit, "hit"), (miss, "miss")):
        m = re.fullmatch(rf"RESULT lookup_{name} entries=6000 lpm_ns={NUMBER} dict_ns={NUMBER} "
                         rf"ratio={NUMBER} \(dict/LPM; 1\.0 = as fast as an exact-match dict\)",
                         line)
        assert m, line
        lpm, plain, ratio = (float(g) for g in m.groups())
        assert lpm > 0 and plain > 0 and ratio > 0
        assert abs(ratio - plain / lpm) <= 0.01 + 0.01 * ratio  # printed figures are rounded

    figures = json.loads(out.read_text())
    first, second = figures["two"], figures["one"]
    assert [p["entries"] for p in first["points"]] == [0, 2000, 4000, 6000]
    assert [p["entries"] for p in second["points"]] == [0, 2000]
    assert all(p["rss"] > 0 for p in first["points"] + second["points"])
    # every mapping is cached and has its flow; with 2 locators each has a select group
    assert first["state"]["cache"] == first["state"]["installed"] == first["state"]["groups"] \
        == 6000
    assert first["state"]["itr_pending"] == 0
    assert second["state"]["cache"] == second["state"]["installed"] == 2000
    assert second["state"]["groups"] == 0
    # the ITR's per-EID request times are swept: it does not keep one per mapping
    assert first["state"]["itr_last_sent"] < 6000
    assert first["lookups"]["dict_size"] == 6000
    assert first["summary"]["rss_at_1m_measured"] is False


def test_scale_refuses_bad_arguments():
    for args, complaint in ((["--entries", "0"], "--entries must be between 1 and"),
                            (["--entries", "2000000"], "--entries must be between 1 and"),
                            (["--entries", "many"], "'many' is not a whole number"),
                            (["--step", "0"], "--step must be at least 1"),
                            (["--rlocs", "1"], "--rlocs must be between 2 (two locators")):
        done = run(SCALE, *args, timeout=60)
        assert done.returncode == 2, (args, done.stdout)
        assert complaint in done.stderr, (args, done.stderr)
        assert not done.stdout


def test_mapserver_reports_rates_against_the_echo_loop(tmp_path):
    out = tmp_path / "mapserver.json"
    done = run(MAPSERVER, "--seconds", "0.2", "--rounds", "1", "--window", "8",
               "--alt-routes", "50", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert re.search(r"^\[bench/mapserver +\d+\.\ds\] ", done.stderr, re.M), done.stderr
    assert "Traceback" not in done.stderr
    results = result_lines(done.stdout)
    assert [line.split("=")[0] for line in results] == [
        "RESULT ms_proxy_per_s", "RESULT mr_negative_per_s", "RESULT mr_forward_per_s",
        "RESULT switchless_per_s"]
    for line in results:
        m = re.fullmatch(rf"RESULT \w+_per_s={NUMBER} echo_per_s={NUMBER} ratio={NUMBER} "
                         rf"\(goal >= 0\.5\)", line)
        assert m, line
        ours, echo, ratio = (float(g) for g in m.groups())
        assert ours > 0 and echo > 0
        assert abs(ratio - ours / echo) <= 0.002 + 0.01 * ratio

    figures = json.loads(out.read_text())
    expected = {"ms-proxy": "proxy_replies", "mr-negative": "mr_negative_replies",
                "mr-forward": "mr_forwarded", "switchless": "proxy_replies"}
    assert set(figures["modes"]) == set(expected)
    for mode, counter in expected.items():
        v = figures["modes"][mode]
        (ours,), (echo,) = v["ours"], v["echo"]
        assert ours["answered"] > 0 and echo["answered"] > 0
        assert ours["answered"] + ours["lost"] <= ours["sent"]
        # every answer the client counted was the engine's own doing
        assert set(ours["counters"]) == {counter}
        assert ours["counters"][counter] >= ours["answered"]
        assert v["in_process"]["server_us"] > 0 and v["in_process"]["codec_us"] > 0
        assert v["summary"]["ratio"] == v["summary"]["ours_per_s"] / v["summary"]["echo_per_s"]


def test_mapserver_refuses_bad_arguments():
    for args, complaint in ((["--seconds", "0"], "--seconds must be positive"),
                            (["--rounds", "0"], "--rounds must be at least 1"),
                            (["--window", "0"], "--window must be between 1 and 256"),
                            (["--alt-routes", "-1"], "--alt-routes must be between 0 and")):
        done = run(MAPSERVER, *args, timeout=60)
        assert done.returncode == 2, (args, done.stdout)
        assert complaint in done.stderr, (args, done.stderr)
        assert not done.stdout
