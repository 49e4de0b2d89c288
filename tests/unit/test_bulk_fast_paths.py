"""The bulk install's fast paths give exactly what the general ones give: the API's prefix
parser (lisp_app.api.server._parse_prefix) against EidPrefix.parse, same prefix or same error,
and ofwire's address encoder against ipaddress."""

from __future__ import annotations

import random
from dataclasses import replace
from ipaddress import ip_address

import pytest

from lisp_app.api.server import _parse_prefix
from lisp_app.dataplane.ofwire import _ip
from lisp_app.protocol.addresses import EidPrefix

ODD = ["[1000]10.1.0.0/24", "10.1.0.0/24", "[0]10.0.0.0/8", "[1000]0.0.0.0/0", "0.0.0.0/0",
       "[16777215]255.255.255.255/32", "[16777216]10.0.0.0/8", "[1000]10.1.0.1/24",
       "[1000]10.1.0.0/024", "[1000]10.1.0.0/33", "[1000]10.1.0.0/", "[1000]10.1.0.0",
       "[1000]010.1.0.0/24", "[1000]10.1.0/24", "[1000]10.1.0.256/32", " [1000]10.1.0.0/24",
       "[1000]10.1.0.0/24 ", "[ 1000]10.1.0.0/24", "[+1000]10.1.0.0/24", "[1_000]10.1.0.0/24",
       "[1000 10.1.0.0/24", "[]10.1.0.0/24", "[x]10.1.0.0/24", "[1000]10.1.0.0/255.255.255.0",
       "[1000]2001:db8::/32", "2001:db8::1/128", "[1000]2001:db8::1/64", "[1000]/24", "",
       "[1000]10.1.0.0/٢٤", "[١٠٠٠]10.1.0.0/24", "[1000]10.1.0.0/+24", "[1000]1.2.3.4/0",
       "[1000]10.1.0.0//24", "[1000]10.1.0.0/24/", "[1000]::ffff:10.1.0.0/120"]


def outcome(parse, text):
    try:
        return parse(text, 1000)
    except ValueError as exc:
        return f"error: {exc}"


@pytest.mark.parametrize("text", ODD)
def test_the_fast_prefix_parser_agrees_on_odd_input(text):
    assert outcome(_parse_prefix, text) == outcome(EidPrefix.parse, text)


def test_the_fast_prefix_parser_agrees_on_many_prefixes():
    rng = random.Random(16)
    for _ in range(5000):
        plen = rng.randrange(33)
        value = rng.getrandbits(32) & ~(0xFFFFFFFF >> plen) if rng.random() < 0.8 \
            else rng.getrandbits(32)
        iid = rng.choice(["", "[0]", f"[{rng.randrange(1 << 24)}]", f"[{rng.randrange(1 << 30)}]"])
        text = f"{iid}{ip_address(value)}/{plen}"
        got = outcome(_parse_prefix, text)
        assert got == outcome(EidPrefix.parse, text), text
        if not isinstance(got, str):
            assert type(got.network) is type(EidPrefix.parse(text, 1000).network)


@pytest.mark.parametrize("text", ["10.1.2.3", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::",
                                  "::ffff:10.1.2.3", "fe80::1%eth0", "ff:ff::ff"])
def test_the_address_encoder_agrees_with_ipaddress(text):
    assert _ip(text) == ip_address(text).packed
    assert _ip(ip_address(text)) == ip_address(text).packed


@pytest.mark.parametrize("text", ["10.1.2", "010.1.2.3", "10.1.2.256", "2001:db8::g", "", "x"])
def test_the_address_encoder_refuses_what_ipaddress_refuses(text):
    with pytest.raises(ValueError):
        ip_address(text)
    with pytest.raises(ValueError):
        _ip(text)


# -- the bulk encoder: one bundle-add message per flow, written in one go ----------------------

def varied_mappings(rng: random.Random, n: int):
    """(prefix, locators) of every kind a bulk load holds: IPv4 and IPv6 EIDs of any length,
    several instance-ids, 1 to 8 locators (IPv4 and IPv6 RLOCs), priorities and weights."""
    from lisp_app.protocol import Locator
    out = []
    for i in range(n):
        iid = rng.choice([1000, 1000, 0, 7, 0xFFFFFF])
        if rng.random() < 0.6:
            plen = rng.randrange(33)
            net = f"{ip_address(rng.getrandbits(32) & ~(0xFFFFFFFF >> plen))}/{plen}"
        else:
            plen = rng.randrange(129)
            mask = ((1 << 128) - 1) ^ ((1 << (128 - plen)) - 1)
            net = f"{ip_address(rng.getrandbits(128) & mask).compressed}/{plen}"
        locators = tuple(
            Locator(ip_address(rng.choice([f"198.51.100.{rng.randrange(1, 9)}",
                                           f"2001:db8:ff::{rng.randrange(1, 9)}"])),
                    rng.choice([1, 1, 2, 255]), rng.choice([0, 1, 30, 70, 100, 255]))
            for _ in range(rng.randrange(1, 9)))
        out.append((EidPrefix.parse(f"[{iid}]{net}"), locators))
    return out


def test_the_bulk_encoder_writes_what_bundle_add_of_flow_add_writes():
    from lisp_app.dataplane.effects import FlowChange
    from lisp_app.dataplane.ofwire import Encoder, bundle_add
    from tests.xtrkit import make_xtr
    xtr = make_xtr("""
role: xtr
instance_id: 1000
eid_prefixes: [{prefix: 10.1.0.0/24}]
lisp_bridge: {datapath_id: 1, site_ports: [{name: site}]}
underlay: {datapath_id: 2, rloc: 192.0.2.1, rloc_ipv6: "2001:db8:1::1", next_hop: 192.0.2.254,
           next_hop_ipv6: "2001:db8:1::fe",
           mtu: 1500}
site_gateway: {ipv4: 10.1.0.1, mac: "02:00:00:00:00:01"}
map_request_targets: [198.51.100.1]
""")
    rng = random.Random(1616)
    mappings = varied_mappings(rng, 3000)
    flows = [f for e in xtr.add_static_many(mappings, 0.0) if isinstance(e, FlowChange)
             for f in e.add]
    assert len({len(f.write) for f in flows}) > 1 and len(flows) >= 2500  # groups and not
    fresh, bulk = Encoder(), Encoder()
    for xid, flow in enumerate(flows):
        bundle = rng.randrange(1, 1 << 32)
        expected = bundle_add(fresh.flow_add(flow, xid), bundle)
        assert bulk.bundled_flow_add(flow, xid, bundle) == expected
        # the same flow again (now from the memos), and an equal one made anew
        assert bulk.bundled_flow_add(flow, xid, bundle) == expected
        twin = replace(flow, apply=tuple(flow.apply), write=tuple(list(flow.write)))
        assert bulk.bundled_flow_add(twin, xid, bundle) == expected
        assert bulk.flow_add(flow, xid) == fresh.flow_add(flow, xid)


def test_select_shares_of_one_locator_agrees_with_the_general_way():
    """select_shares' shortcut for a tuple of one locator (every bulk-loaded mapping of one
    RLOC) against the general way, which a list of the same locator takes."""
    from lisp_app.mapping.locators import select_shares
    from lisp_app.protocol import Locator
    from lisp_app.protocol.addresses import AfiListAddress
    rng = random.Random(9)
    addresses = [ip_address("198.51.100.1"), ip_address("2001:db8::1"),
                 AfiListAddress((ip_address("2001:db8::2"), ip_address("198.51.100.2"))),
                 AfiListAddress((ip_address("2001:db8::3"),))]
    down = {ip_address("198.51.100.2")}
    for _ in range(3000):
        loc = Locator(rng.choice(addresses), rng.choice([0, 1, 2, 254, 255]),
                      rng.choice([-1, 0, 1, 50, 255]), reachable=rng.random() < 0.8)
        is_down = rng.choice([None, down.__contains__])
        families = rng.choice([(4,), (6,), (4, 6)])
        assert select_shares((loc,), is_down, families) == \
            select_shares([loc], is_down, families), (loc, is_down, families)


def test_the_bulk_encoders_templates_take_only_flows_of_their_shape():
    """Flows sharing all but one match field go through a template; any other difference (the
    field's form, another field of its own, a second unshared field, other actions) is
    written the general way or through a template of its own: always the same bytes."""
    from lisp_app.dataplane.flows import Flow, Output
    from lisp_app.dataplane.ofwire import Encoder, bundle_add
    eth, meta = ("eth_type", 0x800), ("metadata", (1000, 0xFFFFFF))
    apply, other = (Output(2),), (Output(3),)
    flows = []
    for n in range(40):
        dst = f"10.0.{n}.0"
        flows += [Flow(1, 2024, (eth, ("ipv4_dst", (dst, "255.255.255.0")), meta), 7, apply=apply),
                  Flow(1, 2024, (eth, ("ipv4_dst", dst), meta), 7, apply=apply),
                  Flow(1, 2024, (eth, ("ipv4_dst", dst), meta, ("in_port", n + 1)), 7,
                       apply=apply),
                  Flow(1, 2024, (eth, ("ipv4_src", dst), meta), 7, apply=other),
                  Flow(1, 2024, (eth, ("ipv6_dst", f"2001:db8::{n}"), meta), 7, apply=apply),
                  Flow(2, 100 + n, (eth, ("ipv4_dst", dst), meta), 7, apply=apply, goto=3)]
    fresh, bulk = Encoder(), Encoder()
    for xid, flow in enumerate(flows):
        assert bulk.bundled_flow_add(flow, xid, 99) == bundle_add(fresh.flow_add(flow, xid), 99)
    assert bulk._shapes  # (the templates were used)


def test_the_encapsulation_match_writes_addresses_as_ipaddress_does():
    from lisp_app.dataplane.pipeline import _encap_match
    rng = random.Random(5)
    for _ in range(3000):
        plen = rng.randrange(33)
        prefix = EidPrefix.parse(f"[7]{ip_address(rng.getrandbits(32) & ~(0xFFFFFFFF >> plen))}"
                                 f"/{plen}")
        (_eth, (name, (address, mask)), _meta) = _encap_match(prefix)
        assert (name, address, mask) == ("ipv4_dst", str(prefix.network.network_address),
                                         str(prefix.network.netmask))
