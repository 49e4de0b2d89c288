"""bench/xtr.py's header checks: the eBPF counters' deltas that tell GPE from classic headers."""

from __future__ import annotations

import pytest

from bench.xtr import check_classic_headers, check_gpe_headers, counter_delta


def counters(encap_rewritten, decap_rewritten, decap_gpe):
    progs = {"decap": {"rewritten": decap_rewritten, "gpe": decap_gpe, "dropped": 0, "other": 0}}
    if encap_rewritten is not None:
        progs["encap"] = {"rewritten": encap_rewritten, "other": 0}
    return progs


def test_delta_counts_programs_attached_in_between_from_zero():
    before = {"x1": counters(None, 0, 5)}
    after = {"x1": counters(7, 3, 5)}
    assert counter_delta(before, after) == {"x1": counters(7, 3, 0)}


def test_classic_phase_needs_classic_both_ways_and_no_gpe():
    good = {"x1": counters(10, 9, 0), "x2": counters(9, 10, 0)}
    result = check_classic_headers(good)
    assert result["ok"] and result["x1"]["classic_sent"] == 10
    for bad in ({"x1": counters(10, 9, 1), "x2": counters(9, 10, 0)},   # a GPE header arrived
                {"x1": counters(0, 9, 0), "x2": counters(9, 0, 0)}):    # one direction not classic
        with pytest.raises(RuntimeError, match="classic phase"):
            check_classic_headers(bad)


def test_gpe_phase_check():
    assert check_gpe_headers({"x2": counters(None, 0, 100)})["ok"]
    assert not check_gpe_headers({"x2": counters(None, 4, 100)})["ok"]
