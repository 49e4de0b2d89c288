"""bench/xtr.py's header checks: the eBPF counters' deltas that tell GPE from classic headers."""

from __future__ import annotations

import pytest

from bench import xtr
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


def _phase(gbps, kpps):
    return {"tcp": {"gbps": gbps}, "udp": {"received_pps": kpps * 1e3},
            "punts_tcp": {"seconds": 1.0, "packet_ins": 0, "controller_flow_n_packets": 0},
            "punts_udp": {"packet_ins": 0}}


def test_xdp_cost_ratios_are_gpe_with_the_program_over_gpe_without_it():
    rounds = [{"lisp": _phase(0.8, 40), "classic": _phase(0.8, 40), "plain": _phase(1.0, 50),
               "gpe_no_xdp": _phase(1.0, 50)},
              {"lisp": _phase(0.9, 45), "classic": _phase(0.9, 45), "plain": _phase(1.0, 50),
               "gpe_no_xdp": _phase(0.9, 60)}]
    figures = {"rounds": rounds, "miss": {"p50": 3.0, "p99": 4.0},
               "echo_rtt_ms": {"p50": 0.3}, "udp_rtt_ms": {"p50": 0.4}}
    summary = xtr.summarize(figures)
    assert summary["tcp_xdp_ratio_per_round"] == [0.8, 1.0]
    assert summary["udp_xdp_ratio_per_round"] == [0.8, 0.75]
    assert summary["udp_xdp_ratio"] == 42.5 / 55
    del rounds[0]["gpe_no_xdp"], rounds[1]["gpe_no_xdp"]
    assert "tcp_xdp_ratio" not in xtr.summarize(figures)
