"""The negative-reply prefix (lisp_app.mapping.space) checked against netaddr's own set arithmetic.

Our code works on integers and a sorted list of prefix starts, so that a Map-Resolver or a
Map-Server answers in O(log n); netaddr's IPSet does the same arithmetic the slow, general way,
which makes it an independent oracle: the prefix we answer must contain the EID, overlap none of
the set (IPSet intersection empty) and be the least specific such prefix (its supernet overlaps
the set). docs/architecture.rst says why netaddr stays out of the hot path.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import netaddr
from hypothesis import given, settings
from hypothesis import strategies as st

from lisp_app.mapping.space import PrefixStarts

WIDTH = {4: 32, 6: 128}


def prefixes(version: int):
    width = WIDTH[version]
    net = IPv4Network if version == 4 else IPv6Network
    # clustered values, so that the prefixes nest and touch instead of being scattered
    base = 0x99100000 if version == 4 else 0x20010DB8 << 96
    span = 1 << (20 if version == 4 else 100)
    value = st.integers(min_value=0, max_value=span - 1).map(lambda v: base + v)
    return st.builds(lambda v, plen: net((v >> (width - plen) << (width - plen), plen)),
                     value, st.integers(min_value=8, max_value=width))


def oracle_check(version: int, networks, address_value: int) -> None:
    address = (IPv4Address if version == 4 else IPv6Address)(address_value)
    taken = netaddr.IPSet(str(n) for n in networks)
    if netaddr.IPAddress(str(address)) in taken:
        return  # covered: not a negative answer
    starts = PrefixStarts(version)
    for n in networks:
        starts.add(n)
    free = starts.free_around(address)
    answer = netaddr.IPNetwork(str(free))
    assert netaddr.IPAddress(str(address)) in answer
    assert not (netaddr.IPSet([answer]) & taken), f"{free} overlaps {taken}"
    if answer.prefixlen > 0:  # least specific: one bit shorter would overlap the set
        wider = answer.supernet(answer.prefixlen - 1)[0]
        assert netaddr.IPSet([wider]) & taken, f"{free} is not the least specific free prefix"


@settings(max_examples=300, deadline=None)
@given(st.lists(prefixes(4), max_size=40), st.integers(min_value=0, max_value=(1 << 21) - 1))
def test_ipv4_negative_prefix_agrees_with_netaddr(networks, offset):
    oracle_check(4, networks, 0x99100000 - (1 << 20) + offset)


@settings(max_examples=200, deadline=None)
@given(st.lists(prefixes(6), max_size=40), st.integers(min_value=0, max_value=(1 << 101) - 1))
def test_ipv6_negative_prefix_agrees_with_netaddr(networks, offset):
    oracle_check(6, networks, (0x20010DB8 << 96) - (1 << 100) + offset)


def test_removing_a_prefix_widens_the_answer_as_netaddr_says():
    starts = PrefixStarts(4)
    a, b = IPv4Network("153.16.36.0/24"), IPv4Network("153.16.37.128/25")
    starts.add(a)
    starts.add(b)
    eid = IPv4Address("153.16.37.1")
    assert starts.free_around(eid) == IPv4Network("153.16.37.0/25")
    starts.discard(b)
    free = netaddr.IPNetwork(str(starts.free_around(eid)))
    assert not (netaddr.IPSet([free]) & netaddr.IPSet([str(a)]))
    assert netaddr.IPSet([free.supernet(free.prefixlen - 1)[0]]) & netaddr.IPSet([str(a)])
    assert free == netaddr.IPNetwork("153.16.37.0/24")
