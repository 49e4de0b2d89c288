"""The flow installer keeps a shared compile record per mapping, not its flows: the flows it gives
back later (flows_of, everything, the diff of a change) are those it installed."""

from __future__ import annotations

import random
from ipaddress import ip_address

from lisp_app.control.installer import FlowInstaller
from lisp_app.dataplane.effects import FlowChange
from lisp_app.dataplane.flows import Flow
from lisp_app.mapping.cache import CacheEntry
from lisp_app.protocol import Action, EidPrefix, Locator
from tests.xtrkit import GPE, SITE, make_xtr


def _entry(rng: random.Random, n: int) -> CacheEntry:
    if rng.random() < 0.5:
        prefix = EidPrefix.parse(f"[{rng.choice((0, 1000, 7))}]10.{n // 256 % 256}.{n % 256}.0/"
                                 f"{rng.choice((24, 28, 32))}".replace(".0/32", ".9/32"))
    else:
        prefix = EidPrefix.parse(f"[1000]2001:db8:{n:x}::/{rng.choice((48, 64, 128))}")
    if rng.random() < 0.2:
        return CacheEntry(prefix, (), rng.choice(list(Action)))
    locators = tuple(Locator(ip_address(f"100.64.0.{rng.randrange(1, 6)}"),
                             priority=rng.choice((1, 1, 2, 255)), weight=rng.choice((0, 10, 50)))
                     for _ in range(rng.randrange(1, 4)))
    return CacheEntry(prefix, locators)


def _installer(down: set) -> tuple[FlowInstaller, object]:
    xtr = make_xtr()
    petrs = (Locator(ip_address("100.64.0.9")),)
    installer = FlowInstaller((4,), lambda a: a in down, petrs)
    installer.attach(xtr.lisp_bridge)
    return installer, xtr


def test_flows_given_back_are_those_installed_through_changes_and_locators_going_down():
    rng = random.Random(16)
    down: set = set()
    installer, _xtr = _installer(down)
    now: dict = {}  # prefix -> ({key: flow}, group) as the switch holds them after the changes
    for step in range(600):
        entry = _entry(rng, rng.randrange(120))
        if rng.random() < 0.1:
            down ^= {ip_address(f"100.64.0.{rng.randrange(1, 6)}")}
        if rng.random() < 0.15:
            changes = installer.uninstall(entry.prefix)
        else:
            changes = installer.install(entry)
        flows, group = now.get(entry.prefix, ({}, None))
        flows = dict(flows)
        for change in changes:  # a flow added under a key the switch holds replaces that one
            assert isinstance(change, FlowChange)
            for f in change.delete:
                del flows[f.key]
            flows.update((f.key, f) for f in change.add)
            if change.delete_groups:
                group = None
            if change.groups:
                (group,) = change.groups
        if entry.prefix in installer.installed:
            now[entry.prefix] = (flows, group)
            assert set(installer.flows_of(entry.prefix)) == set(flows.values()), step
            assert group is None or installer.groups.get(entry.prefix) == group.group_id
        else:
            now.pop(entry.prefix, None)
            assert installer.flows_of(entry.prefix) == ()
    everything, groups = installer.everything()
    assert set(everything) == {f for flows, _g in now.values() for f in flows.values()}
    assert {g.group_id: g for g in groups} == {g.group_id: g for _f, g in now.values()
                                               if g is not None}


def test_mappings_to_the_same_locators_share_one_record():
    installer, _xtr = _installer(set())
    locators = (Locator(ip_address("100.64.0.1")), Locator(ip_address("100.64.0.2")))
    prefixes = [EidPrefix.parse(f"[1000]10.9.{i}.0/24") for i in range(50)]
    for p in prefixes:
        installer.install(CacheEntry(p, locators))
    assert len({id(installer.installed[p]) for p in prefixes}) == 1
    assert len({g.group_id for g in installer.everything()[1]}) == 50


def test_flows_stay_those_of_the_bridge_they_were_compiled_for_until_reprogrammed():
    installer, xtr = _installer(set())
    prefix = EidPrefix.parse("[1000]10.9.0.0/24")
    (change,) = installer.install(CacheEntry(prefix, (Locator(ip_address("100.64.0.1")),)))
    xtr.lisp_bridge_ready({"site": SITE, "gpe": GPE + 10})
    installer.attach(xtr.lisp_bridge)
    assert installer.flows_of(prefix) == change.add
    (moved,) = installer.install(CacheEntry(prefix, (Locator(ip_address("100.64.0.1")),)))
    assert moved.add != change.add and installer.flows_of(prefix) == moved.add


def test_owner_of_a_flow_key():
    installer, _xtr = _installer(set())
    rng = random.Random(5)
    entries = {e.prefix: e for e in (_entry(rng, n) for n in range(80))}
    for entry in entries.values():
        installer.install(entry)
    for prefix in entries:
        for flow in installer.flows_of(prefix):
            assert installer.owner_of(flow.key) == prefix
    other = EidPrefix.parse("[1000]10.200.0.0/24")
    (change,) = installer.install(CacheEntry(other, (Locator(ip_address("100.64.0.1")),)))
    (flow,) = change.add
    installer.uninstall(other)
    assert installer.owner_of(flow.key) is None
    assert installer.owner_of((flow.table, flow.priority + 1, flow.match)) is None
    assert installer.owner_of(Flow(0, 0, (("in_port", 1),), 0).key) is None
    assert installer.owner_of((0, 0, (("ipv4_dst", ("10.0.0.1", "junk")),
                                      ("metadata", (1000, 1))))) is None


def test_reprogram_keeps_group_ids_and_gives_the_flows_installs_gave():
    down: set = set()
    installer, _xtr = _installer(down)
    rng = random.Random(9)
    entries = {e.prefix: e for e in (_entry(rng, n) for n in range(150))}
    for entry in entries.values():
        installer.install(entry)
    flows, groups = installer.everything()
    owners = installer.groups.owners()
    assert owners
    installer.reprogram(list(entries.values()))
    assert installer.groups.owners() == owners
    again, again_groups = installer.everything()
    assert set(again) == set(flows) and set(again_groups) == set(groups)
    # a mapping no longer grouped after reprogramming loses its group id
    prefix, gid = next(iter(owners.items()))
    entries[prefix] = CacheEntry(prefix, ())
    installer.reprogram(list(entries.values()))
    assert prefix not in installer.groups.owners()
    assert gid not in {g.group_id for g in installer.everything()[1]}
