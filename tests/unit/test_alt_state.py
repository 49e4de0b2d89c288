"""ALT state: import filtering, max-prefix, duplicate updates, long 10-digit AS paths,
announcements reconciled from intent."""

from ipaddress import ip_address, ip_network

from lisp_app.alt.rib import PrefixList
from lisp_app.alt.state import (ESTABLISHED, MAX_PREFIX_EXCEEDED, AltState, NeighborState,
                                ShutDownNeighbor)

N1, N2 = "100.64.254.168", "100.64.254.170"
LONG_PATH = tuple([2147483671] + [4294967294 - i for i in range(21)])


def state(max_prefix=0):
    plist = PrefixList.default_import((ip_network("153.16.0.0/16"),))
    return AltState([NeighborState(N1, 2147483671, plist, max_prefix),
                     NeighborState(N2, 2147483672, plist, 0)])


def test_filtered_routes_are_counted_not_learned():
    s = state()
    s.route_event(N1, "0.0.0.0/0", N1, (2147483671,), False)
    s.route_event(N1, "153.16.38.0/24", N1, LONG_PATH, False)
    s.route_event(N1, "8.8.8.0/24", N1, (2147483671,), False)
    s.route_event(N1, "8.8.8.0/24", N1, (2147483671,), False)  # a duplicate update
    assert s.neighbors[N1].rejected == 2
    assert s.rib.lookup(ip_address("153.16.38.1")).as_path == LONG_PATH
    assert len(LONG_PATH) == 22 and max(LONG_PATH) == 4294967294
    assert s.rib.lookup(ip_address("8.8.8.8")).prefix == ip_network("0.0.0.0/0")


def test_max_prefix_shuts_the_neighbour_down_and_others_stay():
    s = state(max_prefix=3)
    s.route_event(N2, "153.16.99.0/24", N2, (2147483672,), False)
    actions = []
    for i in range(4):
        actions += s.route_event(N1, f"153.16.{i}.0/24", N1, (2147483671,), False)
        s.route_event(N1, f"153.16.{i}.0/24", N1, (2147483671,), False)  # duplicates don't count
    assert actions == [ShutDownNeighbor(N1, actions[0].reason)] and "3" in actions[0].reason
    assert s.neighbors[N1].state == MAX_PREFIX_EXCEEDED
    assert s.rib.count(N1) == 0 and s.rib.count(N2) == 1
    assert s.route_event(N1, "153.16.50.0/24", N1, (2147483671,), False) == []  # ignored now
    s.session_up(N1)
    assert s.neighbors[N1].state == MAX_PREFIX_EXCEEDED


def test_withdrawals_and_session_down():
    s = state()
    s.route_event(N1, "153.16.1.0/24", N1, (2147483671,), False)
    s.route_event(N1, "153.16.1.0/24", N1, (), True)
    assert s.rib.lookup(ip_address("153.16.1.1")) is None
    s.session_down(N1)
    assert s.neighbors[N1].state == "idle"
    s.route_event(N1, "153.16.2.0/24", N1, (2147483671,), False)
    assert s.neighbors[N1].state == ESTABLISHED  # routes prove the session is up
    s.session_down(N1)
    assert s.rib.lookup(ip_address("153.16.2.1")) is None


def test_unknown_neighbours_and_unreadable_prefixes_are_ignored():
    s = state()
    assert s.route_event("192.0.2.99", "153.16.1.0/24", "x", (), False) == []
    assert s.route_event(N1, "not-a-prefix", N1, (), False) == []
    assert s.rib.all_routes() == []


def test_announcements_reconcile_from_intent():
    s = state()
    s.announce("153.16.36.0/24")
    assert s.to_apply() == (["153.16.36.0/24"], [])
    s.applied.add("153.16.36.0/24")
    assert s.to_apply() == ([], [])
    s.withdraw("153.16.36.0/24")
    assert s.to_apply() == ([], ["153.16.36.0/24"])
