"""The ALT RIB: import prefix lists, longest-prefix lookup, withdrawals, uncovered space."""

import random
from ipaddress import ip_address, ip_network

import pytest

from lisp_app.alt.rib import AltRib, AltRoute, PrefixList, PrefixListEntry

N1, N2 = "100.64.254.168", "100.64.254.170"


def route(prefix, neighbor=N1, path=()):
    return AltRoute(ip_network(prefix), neighbor, neighbor, tuple(path))


def test_prefix_list_like_frr():
    plist = PrefixList((PrefixListEntry("deny", ip_network("153.16.36.0/24")),
                        PrefixListEntry("permit", ip_network("153.16.0.0/16"), le=24),
                        PrefixListEntry("permit", ip_network("10.0.0.0/8"), ge=16, le=20)))
    assert not plist.permits(ip_network("153.16.36.0/24"))
    assert plist.permits(ip_network("153.16.37.0/24"))
    assert plist.permits(ip_network("153.16.0.0/16"))
    assert not plist.permits(ip_network("153.16.37.0/25"))
    assert plist.permits(ip_network("10.1.0.0/16")) and plist.permits(ip_network("10.1.0.0/20"))
    assert not plist.permits(ip_network("10.0.0.0/8"))
    assert not plist.permits(ip_network("192.0.2.0/24"))  # implicit deny
    with pytest.raises(ValueError):
        PrefixListEntry("permit", ip_network("10.0.0.0/16"), ge=8)
    with pytest.raises(ValueError):
        PrefixListEntry("allow", ip_network("10.0.0.0/16"))


def test_default_import_accepts_the_default_route_and_the_eid_space_only():
    plist = PrefixList.default_import((ip_network("153.16.0.0/16"),))
    assert plist.permits(ip_network("0.0.0.0/0"))
    assert plist.permits(ip_network("153.16.36.0/24")) and plist.permits(ip_network("153.16.0.0/16"))
    assert not plist.permits(ip_network("8.8.8.0/24"))
    assert not plist.permits(ip_network("153.0.0.0/8"))


def test_longest_prefix_lookup_and_withdrawal():
    rib = AltRib()
    assert rib.update(route("0.0.0.0/0", N1))
    assert rib.update(route("153.16.0.0/16", N2, [2147483671, 4294967294]))
    assert not rib.update(route("153.16.0.0/16", N2, [2147483671, 4294967294]))  # duplicate
    assert rib.lookup(ip_address("153.16.36.1")).neighbor == N2
    assert rib.lookup(ip_address("8.8.8.8")).neighbor == N1
    assert rib.withdraw(N2, ip_network("153.16.0.0/16"))
    assert rib.lookup(ip_address("153.16.36.1")).neighbor == N1
    assert not rib.withdraw(N2, ip_network("153.16.0.0/16"))
    assert rib.count(N1) == 1 and rib.drop_neighbor(N1) == 1
    assert rib.lookup(ip_address("8.8.8.8")) is None


def test_same_prefix_from_two_neighbours_survives_one_withdrawal():
    rib = AltRib()
    rib.update(route("153.16.0.0/16", N1))
    rib.update(route("153.16.0.0/16", N2))
    rib.drop_neighbor(N1)
    assert rib.lookup(ip_address("153.16.1.1")).neighbor == N2


def test_uncovered_prefix_is_the_least_specific_space_no_route_touches():
    rib = AltRib()
    for p in ("153.16.36.0/24", "153.16.40.0/22", "10.0.0.0/8"):
        rib.update(route(p))
    assert rib.uncovered_prefix(ip_address("153.16.37.9")) == ip_network("153.16.37.0/24")
    assert rib.uncovered_prefix(ip_address("153.16.32.1")) == ip_network("153.16.32.0/22")
    assert rib.uncovered_prefix(ip_address("192.0.2.1")) == ip_network("192.0.0.0/2")
    assert rib.uncovered_prefix(ip_address("2001:db8::1")) == ip_network("::/0")
    with pytest.raises(ValueError, match="covered"):
        rib.uncovered_prefix(ip_address("153.16.36.5"))
    rib.withdraw(N1, ip_network("153.16.36.0/24"))
    assert rib.uncovered_prefix(ip_address("153.16.37.9")) == ip_network("153.16.32.0/21")



def shortest_free_prefix(rib, address):
    """The definition: the shortest address/plen inside which no route starts."""
    starts = [int(r.prefix.network_address) for r in rib.all_routes()]
    for plen in range(33):
        candidate = ip_network((address, plen), strict=False)
        first, last = int(candidate.network_address), int(candidate.broadcast_address)
        if not any(first <= s <= last for s in starts):
            return candidate
    raise AssertionError("no free prefix")


def test_uncovered_prefix_agrees_with_trying_every_length():
    rng = random.Random(4)
    for _ in range(40):
        rib = AltRib()
        base = rng.getrandbits(32) & 0xFFFF0000
        for _ in range(rng.randrange(0, 60)):
            network = (base + (rng.randrange(512) << 8), rng.randrange(14, 33))
            rib.update(route(str(ip_network(network, strict=False))))
        for _ in range(200):
            address = ip_address((base + rng.randrange(-80000, 80000)) & 0xFFFFFFFF)
            if rib.lookup(address) is None:
                assert rib.uncovered_prefix(address) == shortest_free_prefix(rib, address)


def test_prefix_list_permits_as_its_first_matching_entry_says_on_many_routes():
    """permits() works on integers; it must agree with the entries' own matches() (the first
    matching entry decides, no match denies), IPv4 and IPv6 mixed, with ge/le and exact entries."""
    rng = random.Random(16)

    def network(version):
        width = 32 if version == 4 else 128
        plen = rng.choice([0, 1, 7, 8, 16, 23, 24, 25, 32, width, rng.randint(0, width)])
        value = rng.getrandbits(width) >> (width - plen) << (width - plen) if plen else 0
        if rng.random() < 0.3:  # near the entries: 100.0.0.0/7, 153.16.0.0/16, 2001:db8::/32
            value = {4: rng.choice([0x64000000, 0x65ff0000, 0x99100000, 0x66000000]),
                     6: 0x20010db8 << 96}[version]
            value = value >> (width - plen) << (width - plen) if plen else 0
        return ip_network((value, plen))

    for _ in range(200):
        entries = []
        for _ in range(rng.randint(0, 5)):
            net = network(rng.choice((4, 6)))
            ge = rng.choice([None, None, min(net.max_prefixlen, net.prefixlen + rng.randint(0, 8))])
            le = rng.choice([None, None, net.max_prefixlen,
                             max(ge or net.prefixlen, min(net.max_prefixlen, net.prefixlen + 4))])
            if ge is not None and le is not None and le < ge:
                le = ge
            entries.append(PrefixListEntry(rng.choice(("permit", "deny")), net, ge, le))
        plist = PrefixList(tuple(entries))
        for _ in range(50):
            route = network(rng.choice((4, 6)))
            first = next((e for e in entries if e.matches(route)), None)
            assert plist.permits(route) == (first is not None and first.action == "permit"), \
                (entries, route)


def test_prefix_lists_compare_by_their_entries_only():
    a = PrefixList.default_import((ip_network("153.16.0.0/16"),))
    b = PrefixList.default_import((ip_network("153.16.0.0/16"),))
    c = PrefixList.default_import((ip_network("100.0.0.0/7"),))
    assert a == b and a != c
    assert "_compiled" not in repr(a)


def test_route_count_counts_every_neighbours_routes():
    rib = AltRib()
    assert rib.route_count() == 0
    for neighbor in ("n1", "n2"):
        for i in range(3):
            rib.update(AltRoute(ip_network(f"153.16.{i}.0/24"), neighbor, neighbor))
    rib.withdraw("n1", ip_network("153.16.0.0/24"))
    assert rib.route_count() == len(rib.all_routes()) == 5
