"""Locator selection: best priority, weights, unusable and unreachable locators."""

from ipaddress import ip_address

from lisp_app.mapping.locators import Share, select_shares
from lisp_app.protocol import AfiListAddress, Locator


def loc(addr, priority=1, weight=50, **kw):
    return Locator(ip_address(addr), priority, weight, **kw)


def test_best_priority_shares_by_weight():
    shares = select_shares([loc("192.0.2.1", 1, 70), loc("192.0.2.2", 1, 30),
                            loc("192.0.2.3", 2, 100)])
    assert shares == (Share(ip_address("192.0.2.1"), 70), Share(ip_address("192.0.2.2"), 30))


def test_priority_255_and_unreachable_are_excluded_and_next_priority_takes_over():
    locs = [loc("192.0.2.1", 1, 50, reachable=False), loc("192.0.2.2", 255, 50),
            loc("192.0.2.3", 5, 10)]
    assert select_shares(locs) == (Share(ip_address("192.0.2.3"), 10),)


def test_locators_marked_down_by_probing_are_excluded():
    locs = [loc("192.0.2.1", 1), loc("192.0.2.2", 2)]
    down = {ip_address("192.0.2.1")}
    assert select_shares(locs, is_down=down.__contains__) == (Share(ip_address("192.0.2.2"), 50),)


def test_all_zero_weights_split_evenly_and_zero_beside_nonzero_gets_nothing():
    assert select_shares([loc("192.0.2.1", 1, 0), loc("192.0.2.2", 1, 0)]) == (
        Share(ip_address("192.0.2.1"), 1), Share(ip_address("192.0.2.2"), 1))
    assert select_shares([loc("192.0.2.1", 1, 0), loc("192.0.2.2", 1, 100)]) == (
        Share(ip_address("192.0.2.2"), 100),)


def test_families_and_afi_lists():
    v6 = loc("2001:db8::1", 1, 100)
    assert select_shares([v6]) == ()
    assert select_shares([v6], families=(4, 6)) == (Share(ip_address("2001:db8::1"), 100),)
    both = Locator(AfiListAddress((ip_address("2001:db8::1"), ip_address("192.0.2.9"))), 1, 100)
    assert select_shares([both]) == (Share(ip_address("192.0.2.9"), 100),)


def test_nothing_usable():
    assert select_shares([]) == ()
    assert select_shares([loc("192.0.2.1", 255)]) == ()
