"""A bulk load's runs (lisp_app.dataplane.pipeline.FlowRun): new mappings that share their
locators are placed, tracked and compiled together, and their bundle messages written from
templates. Each of those paths must give exactly what the one-mapping-at-a-time path gives:
the same map-cache, installer records, group ids, probing users, flows and message bytes."""

from __future__ import annotations

import random
from ipaddress import ip_address

from lisp_app.dataplane.effects import LISP, FlowChange, PacketOut
from lisp_app.dataplane.ofwire import Encoder
from lisp_app.dataplane.pipeline import FlowRun
from lisp_app.protocol import Locator
from lisp_app.protocol.addresses import EidPrefix
from lisp_app.shell.writer import FlowWriter, bulk_batches, split_bulk
from tests.xtrkit import make_xtr

CONFIG = """
role: xtr
instance_id: 1000
eid_prefixes: [{prefix: 10.1.0.0/24}]
lisp_bridge: {datapath_id: 1, site_ports: [{name: site}]}
underlay: {datapath_id: 2, rloc: 192.0.2.1, rloc_ipv6: "2001:db8:1::1", next_hop: 192.0.2.254,
           next_hop_ipv6: "2001:db8:1::fe", mtu: 1500}
site_gateway: {ipv4: 10.1.0.1, mac: "02:00:00:00:00:01"}
map_request_targets: [198.51.100.1]
"""


def ready_xtr():
    return make_xtr(CONFIG)  # (both bridges ready)


def cached(xtr) -> list:
    entries, position = xtr.cache.walk(None, 1 << 20)
    assert position is None
    return sorted(map(repr, entries))


def locator_sets(rng: random.Random, n: int) -> list:
    """Shared locator tuples (as the API's compact form gives them): one IPv4 RLOC (most), one
    IPv6, several sharing traffic (grouped), a single usable one among unusable ones, none."""
    sets = [(Locator(ip_address("198.51.100.1"), 1, 100),),
            (Locator(ip_address("2001:db8:ff::1"), 1, 100),),
            (Locator(ip_address("198.51.100.2"), 1, 50), Locator(ip_address("198.51.100.3"), 1, 50)),
            (Locator(ip_address("198.51.100.4"), 1, 100), Locator(ip_address("198.51.100.5"), 255, 0)),
            ()]
    while len(sets) < n:
        sets.append(tuple(
            Locator(ip_address(rng.choice([f"198.51.100.{rng.randrange(1, 9)}",
                                           f"2001:db8:ff::{rng.randrange(1, 9)}"])),
                    rng.choice([1, 1, 2, 255]), rng.choice([0, 1, 30, 100]))
            for _ in range(rng.randrange(1, 4))))
    return sets


def prefixes(rng: random.Random, n: int) -> list:
    """IPv4 (most) and IPv6 prefixes of any length, in several instance-ids, some repeated."""
    out = []
    for _ in range(n):
        iid = rng.choice([1000, 1000, 1000, 0, 7, 0xFFFFFF])
        if rng.random() < 0.8:
            plen = rng.choice([32, 32, 24, rng.randrange(33)])
            out.append(EidPrefix.ipv4(iid, rng.getrandbits(32) & ~(0xFFFFFFFF >> plen)
                                      & 0xFFFFFFFF, plen))
        else:
            plen = rng.randrange(129)
            mask = ((1 << 128) - 1) ^ ((1 << (128 - plen)) - 1)
            out.append(EidPrefix.parse(f"[{iid}]{ip_address(rng.getrandbits(128) & mask)}/{plen}"))
    out += rng.sample(out, n // 20)  # repeated: the second replaces the first
    rng.shuffle(out)
    return out


def load(rng: random.Random, n: int = 3000, nsets: int = 12) -> list:
    sets = locator_sets(rng, nsets)
    weights = [40, 5, 5, 5, 2] + [1] * (nsets - 5)
    return [(p, rng.choices(sets, weights)[0]) for p in prefixes(rng, n)]


def expanded(effects) -> list:
    """The effects with each FlowRun read as the tuple of its flows."""
    return [FlowChange(e.bridge, tuple(e.add), e.delete, e.groups, e.delete_groups)
            if isinstance(e, FlowChange) else e for e in effects]


def test_a_bulk_load_leaves_what_one_mapping_at_a_time_leaves():
    rng = random.Random(1601)
    mappings = load(rng)
    bulk, single = ready_xtr(), ready_xtr()
    early = mappings[:50]  # some prefixes are there before the load
    bulk.add_static_many(early, 0.0)
    single_effects = [e for p, locs in early for e in single.add_static(p, locs, 0.0)]
    bulk_effects = []
    for i in range(0, len(mappings), 256):
        bulk_effects += bulk.add_static_many(mappings[i:i + 256], 1.0)
    single_effects = [e for p, locs in mappings for e in single.add_static(p, locs, 1.0)]
    assert any(type(e.add) is FlowRun for e in bulk_effects if isinstance(e, FlowChange))
    # the map-cache, the installer's records and groups, probing's users
    assert cached(bulk) == cached(single) and len(cached(bulk)) > 2500
    assert bulk.installer.installed == single.installer.installed
    assert bulk.installer.groups.owners() == single.installer.groups.owners()
    flows_b, groups_b = bulk.installer.everything()
    flows_s, groups_s = single.installer.everything()
    assert sorted(map(repr, flows_b)) == sorted(map(repr, flows_s))
    assert sorted(map(repr, groups_b)) == sorted(map(repr, groups_s))
    assert {a: s.users for a, s in bulk.prober.locators.items()} == \
        {a: s.users for a, s in single.prober.locators.items()}
    # the same flow changes, whatever their grouping into effects
    def changes(effects):
        out = []
        for e in expanded(effects):
            assert isinstance(e, (FlowChange, PacketOut))
            if isinstance(e, FlowChange):
                out += [("add", repr(f)) for f in e.add] + [("del", repr(f)) for f in e.delete]
                out += [("group", repr(g)) for g in e.groups] + \
                    [("del-group", g) for g in e.delete_groups]
        return sorted(out)
    assert changes(bulk_effects) == changes(single_effects)


def test_a_run_reads_as_the_tuple_of_its_flows():
    xtr = ready_xtr()
    loc = (Locator(ip_address("198.51.100.1"), 1, 100),)
    made = [EidPrefix.ipv4(1000, 0x14000000 + i, 32) for i in range(5)]
    effects = xtr.add_static_many([(p, loc) for p in made], 0.0)
    run = effects[0].add
    assert type(run) is FlowRun and len(run) == 5
    flows = tuple(run)
    assert flows == tuple(f for p in made for f in xtr.installer.flows_of(p))
    assert run == flows and flows == run and run[1] == flows[1] and run[1:3] == flows[1:3]
    assert run + () == flows and () + run == flows and hash(run) == hash(flows)
    assert FlowChange(LISP, add=run) == FlowChange(LISP, add=flows)


def test_runs_are_written_as_their_flows_are():
    """Encoder.bundled_run against bundled_flow_add of each flow, from a fresh encoder and from
    a used one, xid by xid; and a FlowWriter bundle given runs among flows writes the bytes it
    writes given the flows."""
    rng = random.Random(1602)
    xtr = ready_xtr()
    effects = []
    mappings = load(rng, 4000)
    for i in range(0, len(mappings), 300):
        effects += xtr.add_static_many(mappings[i:i + 300], 0.0)
    runs = [e.add for e in effects if isinstance(e, FlowChange) and type(e.add) is FlowRun]
    assert sum(len(r) for r in runs) > 3000
    used = Encoder()
    for run in runs:
        for encoder in (Encoder(), used):
            start, bundle = rng.randrange(1 << 31), rng.randrange(1, 1 << 32)
            got = encoder.bundled_run(run, iter(range(start, 1 << 32)).__next__, bundle)
            check = Encoder()
            assert got == [check.bundled_flow_add(flow, start + n, bundle)
                           for n, flow in enumerate(run)]
    # a bundle of the mixed pieces, and one of the same flows one by one
    pieces = split_bulk(effects, {LISP: object()})[1][LISP]
    assert any(type(p) is FlowRun for p in pieces)
    flat = [f for p in pieces for f in (p if type(p) is FlowRun else (p,))]

    def written(items):
        xid = iter(range(1, 1 << 20))
        bundle = FlowWriter(fallback=None).bundle(None, xid.__next__, chunk=100)
        chunks = [bundle.open(), *bundle.add(items), bundle.close()]
        return b"".join(chunks), bundle.flows
    assert written(pieces) == written(flat) and written(flat)[1] == len(flat)


def test_bulk_batches_weigh_flows_not_effects():
    xtr = ready_xtr()
    loc = (Locator(ip_address("198.51.100.1"), 1, 100),)
    made = [EidPrefix.ipv4(1000, 0x14000000 + i, 32) for i in range(1000)]
    effects = []
    for i in range(0, 1000, 300):  # runs of 300, 300, 300, 100 flows, and packet-outs between
        effects += xtr.add_static_many([(p, loc) for p in made[i:i + 300]], 0.0)
        effects.append(PacketOut(LISP, b"x", 1))
    batches = list(bulk_batches(iter(effects), 256))
    assert [len(b) for b in batches] == [1, 2, 2, 3] and sum(batches, []) == effects
    assert list(bulk_batches(iter([PacketOut(LISP, b"x", 1)] * 5), 2)) == \
        [[PacketOut(LISP, b"x", 1)] * 2] * 2 + [[PacketOut(LISP, b"x", 1)]]
    assert list(bulk_batches(iter([]), 256)) == []
