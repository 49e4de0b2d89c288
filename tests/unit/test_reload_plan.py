"""Live reload (lisp_app.node.reload): the plan of what differs between two configurations, the
effects that apply it to a running node, and the shell that runs it on SIGHUP.

The central check: after a reload, the switches hold exactly what a node freshly started with the
new file would program, and no flow that both configurations share was deleted or re-sent (so
traffic to unchanged mappings never notices). A bad file, or one that needs a restart, changes
nothing and says why."""

from __future__ import annotations

import logging
import random
from ipaddress import ip_address

import pytest

from lisp_app.alt.effects import AddNeighbor, Announce, RemoveNeighbor, Withdraw
from lisp_app.alt.speaker import AltSpeaker
from lisp_app.app import LispApp
from lisp_app.config import parse_config
from lisp_app.dataplane import ofwire
from lisp_app.dataplane.effects import LISP, UNDERLAY, FlowChange
from lisp_app.dataplane.flows import OFPP_LOCAL
from lisp_app.dataplane.pipeline import K_DECAP, K_HOST, K_PUNT_CONTROL, K_PUNT_NEIGHBOR, cookie
from lisp_app.node import Xtr
from lisp_app.node.reload import ReloadRefused, apply, plan, reload_file
from lisp_app.protocol import EidPrefix, EidRecord, MapRegister, MapReply, MapRequest
from lisp_app.shell.hangup import ReloadRequests
from tests.ofswitch import OFPT_BARRIER_REQUEST, Datapath, OFSwitch, plain
from tests.xtrkit import (ALT_CONFIG, CONFIG, GPE, GW_MAC, HOST_MAC, LOCAL_MAC, SITE, UPLINK,
                          arp_reply, control_payloads, learn_next_hop, make_xtr, underlay_in)

NEW_PREFIX = "[1000]10.1.5.0/24"
ADDED = CONFIG.replace("eid_prefixes: [{prefix: 10.1.0.0/24, ttl: 5},",
                       "eid_prefixes: [{prefix: 10.1.0.0/24, ttl: 5}, {prefix: 10.1.5.0/24},")
REMOVED = CONFIG.replace(', {prefix: "2001:db8:1::/48"}', "")
CHANGED = CONFIG.replace("{prefix: 10.1.0.0/24, ttl: 5}",
                         "{prefix: 10.1.0.0/24, ttl: 5, locators: [{rloc: 192.0.2.1}, "
                         "{rloc: 192.0.2.77, priority: 2}]}")
MS = "map_servers: [{address: 203.0.113.20, key: s3cret}]\n"
ALT_PORTS = {"site": SITE, "gpe": GPE, "alt0": 30, "gre0": 31, "gre1": 32}
ALT_MACS = {"alt0": "02:a1:00:00:00:01"}
ALT_TWO = ALT_CONFIG.replace(
    "gre_port: gre0}]",
    "gre_port: gre0}, {address: 100.64.254.170, remote_as: 2147483672, gre_port: gre1}]")


def write(tmp_path, text: str) -> str:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return str(path)


def programmed(xtr: Xtr) -> dict[str, dict]:
    """What the switches hold once the node is connected: bridge -> {flow key: flow}."""
    return {b: {f.key: f for f in xtr.desired(b)[1]} for b in (LISP, UNDERLAY)}


def run(held: dict[str, dict], effects) -> list[FlowChange]:
    """Carry the flow changes out on ``held`` (deletions first, as the switch does)."""
    changes = [e for e in effects if isinstance(e, FlowChange)]
    for change in changes:
        for f in change.delete:
            assert held[change.bridge].pop(f.key, None) == f, f"deleted a flow not held: {f}"
        for f in change.add:
            held[change.bridge][f.key] = f
    return changes


def fresh(text: str, ports=None, macs=None) -> Xtr:
    xtr = Xtr(parse_config(text), random.Random(3))
    xtr.lisp_bridge_ready(ports or {"site": SITE, "gpe": GPE}, macs)
    xtr.underlay_bridge_ready({"uplink": UPLINK}, LOCAL_MAC)
    return xtr


@pytest.mark.parametrize("new", [ADDED, REMOVED, CHANGED, ADDED.replace(
    ', {prefix: "2001:db8:1::/48"}', ', {prefix: "2001:db8:7::/48", ttl: 9}')],
    ids=["add", "remove", "change-locators", "add-and-remove"])
def test_a_reload_programs_what_a_fresh_start_would_and_leaves_shared_flows_alone(new):
    xtr = make_xtr()
    held = programmed(xtr)
    old = {b: set(flows.values()) for b, flows in held.items()}
    p = plan(xtr.config, parse_config(new))
    assert p and not p.restart
    changes = run(held, apply(xtr, parse_config(new), p, 1.0))
    want = programmed(fresh(new))
    for bridge in (LISP, UNDERLAY):
        assert set(held[bridge].values()) == set(want[bridge].values())
        shared = old[bridge] & set(want[bridge].values())
        for change in changes:
            if change.bridge == bridge:
                assert not shared & set(change.delete) and not shared & set(change.add)
    assert set(xtr.database) == set(fresh(new).database)
    assert xtr.config == parse_config(new)


def test_the_plan_names_each_change_and_every_field_that_needs_a_restart():
    old = parse_config(CONFIG)
    p = plan(old, parse_config(ADDED))
    assert p.changes() == [f"+local {NEW_PREFIX}"] and p.local_unchanged == 2
    assert plan(old, parse_config(REMOVED)).changes() == ["-local [1000]2001:db8:1::/48"]
    assert plan(old, parse_config(CHANGED)).changes() == [
        "~local [1000]10.1.0.0/24 (locators or ttl)"]
    assert not plan(old, parse_config(CONFIG))
    timers = plan(old, parse_config(CONFIG + "timers: {request_timeout: 2}\n"))
    assert timers.changes() == ["~timers.request_timeout"] and not timers.restart
    moved = (ADDED.replace("rloc: 192.0.2.1,", "rloc: 192.0.2.9,")
             .replace("datapath_id: 1,", "datapath_id: 5,") + "api: {port: 9000}\n")
    p = plan(old, parse_config(moved))
    assert p.restart == ("lisp_bridge.datapath_id", "underlay.rloc", "api.port")
    assert p.local_added  # still planned, but apply refuses a plan that needs a restart
    with pytest.raises(ValueError):
        apply(make_xtr(), parse_config(moved), p, 0.0)


def test_a_bad_file_changes_nothing_and_the_error_names_file_field_and_reason(tmp_path,
                                                                            caplog):
    xtr = make_xtr()
    before = (xtr.config, list(xtr.database), programmed(xtr))
    path = write(tmp_path, ADDED.replace("ttl: 5", "ttl: 0"))
    with caplog.at_level(logging.ERROR, "lisp_app"):
        outcome = reload_file(xtr, path, 1.0)
    assert outcome.config is None and outcome.effects == []
    assert (xtr.config, list(xtr.database), programmed(xtr)) == before
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert path in record.message and "eid_prefixes[0].ttl" in record.message
    assert "the running configuration is kept" in record.message
    for text in ("role: xtr\nrole: etr\n", "\xff".encode("latin-1").decode("latin-1")):
        assert reload_file(xtr, write(tmp_path, text), 2.0).config is None
    assert reload_file(xtr, str(tmp_path / "missing.yaml"), 3.0).config is None
    assert (xtr.config, list(xtr.database), programmed(xtr)) == before


def test_a_file_that_needs_a_restart_is_refused_whole(tmp_path, caplog):
    xtr = make_xtr()
    before = (xtr.config, list(xtr.database), programmed(xtr))
    path = write(tmp_path, ADDED.replace("rloc: 192.0.2.1,", "rloc: 192.0.2.9,"))
    with caplog.at_level(logging.ERROR, "lisp_app"):
        outcome = reload_file(xtr, path, 1.0)
    assert outcome.config is None and outcome.effects == []
    assert "needs a restart: field underlay.rloc" in caplog.text
    assert (xtr.config, list(xtr.database), programmed(xtr)) == before


def test_an_applied_reload_is_logged_with_what_changed(tmp_path, caplog):
    xtr = make_xtr()
    with caplog.at_level(logging.INFO, "lisp_app"):
        outcome = reload_file(xtr, write(tmp_path, ADDED), 1.0)
        again = reload_file(xtr, write(tmp_path, ADDED), 2.0)
    assert outcome.config == parse_config(ADDED) and outcome.effects
    assert f"+local {NEW_PREFIX}; 2 local prefix(es) unchanged" in outcome.message
    assert outcome.message in caplog.text
    assert again.effects == [] and again.message.endswith(": no change")


def test_a_reloaded_file_whose_secrets_others_can_read_is_warned_about(tmp_path, caplog):
    xtr = make_xtr(CONFIG + MS)
    path = write(tmp_path, ADDED + MS)
    (tmp_path / "site.yaml").chmod(0o644)
    with caplog.at_level(logging.WARNING, "lisp_app"):
        assert reload_file(xtr, path, 1.0).config is not None
    assert f"chmod 600 {path}" in caplog.text
    (tmp_path / "site.yaml").chmod(0o600)
    caplog.clear()
    reload_file(xtr, path, 2.0)
    assert "chmod" not in caplog.text


def test_the_etr_answers_for_an_added_prefix_and_no_longer_for_a_removed_one():
    xtr = make_xtr()
    learn_next_hop(xtr)

    def ask(eid: str, now: float):
        req = MapRequest(7, (EidRecord.for_prefix(EidPrefix.parse(eid)),),
                         (ip_address("198.51.100.1"),))
        return control_payloads(xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0,
                                                 underlay_in(req.encode()), now))

    assert ask("[1000]10.1.5.9/32", 0.0) == []
    apply(xtr, parse_config(ADDED), plan(xtr.config, parse_config(ADDED)), 1.0)
    (_f, reply), = ask("[1000]10.1.5.9/32", 2.0)
    assert isinstance(reply, MapReply)
    assert reply.records[0].prefix == EidPrefix.parse(NEW_PREFIX)
    apply(xtr, parse_config(CONFIG), plan(xtr.config, parse_config(CONFIG)), 3.0)
    assert ask("[1000]10.1.5.9/32", 4.0) == []


def test_map_servers_get_the_new_database_at_once_and_removed_ones_nothing():
    xtr = make_xtr(CONFIG + MS)
    learn_next_hop(xtr)
    xtr.on_timer(0.0)  # the first registration

    def registers(effects):
        return {str(f.ip_dst): {r.prefix for r in m.records}
                for f, m in control_payloads(effects) if isinstance(m, MapRegister)}

    new = ADDED + MS
    sent = registers(apply(xtr, parse_config(new), plan(xtr.config, parse_config(new)), 1.0))
    assert sent == {"203.0.113.20": {EidPrefix.parse("[1000]10.1.0.0/24"), EidPrefix.parse(
        "[1000]2001:db8:1::/48"), EidPrefix.parse(NEW_PREFIX)}}
    other = ADDED + "map_servers: [{address: 203.0.113.21, key: other}]\n"
    p = plan(xtr.config, parse_config(other))
    assert p.changes() == ["+map-server 203.0.113.21", "-map-server 203.0.113.20"]
    assert set(registers(apply(xtr, parse_config(other), p, 2.0))) == {"203.0.113.21"}
    assert set(registers(xtr.on_timer(100.0))) == {"203.0.113.21"}
    p = plan(xtr.config, parse_config(ADDED))
    assert registers(apply(xtr, parse_config(ADDED), p, 3.0)) == {}
    assert xtr.registrar is None and xtr.control.registrar is None
    assert registers(xtr.on_timer(200.0)) == {}


def test_itrs_that_asked_for_a_changed_prefix_get_an_smr():
    xtr = make_xtr()
    learn_next_hop(xtr)
    req = MapRequest(7, (EidRecord.for_prefix(EidPrefix.parse("[1000]10.1.0.9/32")),),
                     (ip_address("198.51.100.1"),))
    xtr.on_packet_in(UNDERLAY, cookie(K_PUNT_CONTROL), UPLINK, 0, underlay_in(req.encode()), 0.0)
    effects = apply(xtr, parse_config(CHANGED), plan(xtr.config, parse_config(CHANGED)), 1.0)
    smrs = [(str(f.ip_dst), m) for f, m in control_payloads(effects)
            if isinstance(m, MapRequest) and m.smr]
    assert [d for d, _m in smrs] == ["198.51.100.1"]
    record = next(m for m in xtr.database if m.prefix == EidPrefix.parse("[1000]10.1.0.0/24"))
    assert [str(l.address) for l in record.locators] == ["192.0.2.1", "192.0.2.77"]


def test_hosts_of_a_removed_prefix_are_forgotten_with_their_delivery_flows():
    xtr = make_xtr(ADDED)
    effects = xtr.on_packet_in(LISP, cookie(K_PUNT_NEIGHBOR), SITE, 0,
                               arp_reply("10.1.5.20", HOST_MAC, "10.1.0.1", GW_MAC), 0.0)
    xtr.on_packet_in(LISP, cookie(K_PUNT_NEIGHBOR), SITE, 0,
                     arp_reply("10.1.0.20", HOST_MAC, "10.1.0.1", GW_MAC), 0.0)
    (host_flow,) = [f for e in effects if isinstance(e, FlowChange) for f in e.add]
    held = programmed(xtr)
    changes = run(held, apply(xtr, parse_config(CONFIG), plan(xtr.config, parse_config(CONFIG)),
                              1.0))
    assert host_flow in {f for c in changes for f in c.delete}
    assert [str(a) for _i, a in xtr.site.hosts] == ["10.1.0.20"]
    assert [f for f in held[LISP].values() if f.cookie == cookie(K_HOST)] == xtr.site.flows()


def test_a_decap_flow_appears_for_an_added_prefix_and_timers_change_live():
    xtr = make_xtr()
    new = ADDED + "timers: {request_timeout: 2.5}\n"
    changes = apply(xtr, parse_config(new), plan(xtr.config, parse_config(new)), 1.0)
    added = [f for c in changes for f in c.add if f.cookie == cookie(K_DECAP)]
    assert [dict(f.match)["ipv4_dst"] for f in added] == [("10.1.5.0", "255.255.255.0")]
    assert xtr.itr.settings.request_timeout == 2.5


def test_alt_neighbours_and_announcements_follow_the_file():
    old = parse_config(ALT_CONFIG)
    speaker = AltSpeaker(old.alt)  # not started: its state and config follow
    xtr = Xtr(old, random.Random(3), alt_rib=speaker.state.rib)
    xtr.lisp_bridge_ready({k: v for k, v in ALT_PORTS.items() if k != "gre1"}, ALT_MACS)
    xtr.underlay_bridge_ready({"uplink": UPLINK}, LOCAL_MAC)
    speaker.state.route_event("100.64.254.168", "0.0.0.0/0", "100.64.254.168", (1,), False)
    new_text = ALT_TWO.replace(', {prefix: "2001:db8:1::/48"}', ", {prefix: 10.1.5.0/24}")
    new = parse_config(new_text)
    p = plan(old, new)
    assert p.neighbors_added == ("100.64.254.170",) and not p.restart
    with pytest.raises(ReloadRefused, match="lacks port.*gre1"):  # the GRE port is not there
        apply(xtr, new, p, 1.0)
    assert xtr.config == old and len(list(xtr.database)) == 2
    effects = apply(xtr, new, p, 1.0, ALT_PORTS, ALT_MACS)
    alt = [e for e in effects if not isinstance(e, (FlowChange,))]
    assert Announce(EidPrefix.parse(NEW_PREFIX)) in alt
    assert Withdraw(EidPrefix.parse("[1000]2001:db8:1::/48")) in alt
    assert AddNeighbor(new.alt, new.alt.neighbors[1]) in alt
    for e in alt:
        speaker.apply(e)
    assert set(speaker.state.neighbors) == {"100.64.254.168", "100.64.254.170"}
    held_peers = {f.match for c in effects if isinstance(c, FlowChange) for f in c.add
                  if dict(f.match).get("in_port") == 32}
    assert held_peers  # the new GRE port's flows
    assert xtr.alt.gre_ports == {"100.64.254.168": 31, "100.64.254.170": 32}
    # the first neighbour goes, and its routes with it
    back = parse_config(ALT_TWO.replace(
        "{address: 100.64.254.168, remote_as: 2147483671, gre_port: gre0}, ", ""))
    p = plan(xtr.config, back)
    assert p.neighbors_removed == ("100.64.254.168",)
    for e in apply(xtr, back, p, 2.0, ALT_PORTS, ALT_MACS):
        if isinstance(e, (RemoveNeighbor, AddNeighbor, Announce, Withdraw)):
            speaker.apply(e)
    assert set(speaker.state.neighbors) == {"100.64.254.170"}
    assert speaker.state.rib.lookup(ip_address("10.9.9.9")) is None
    assert [str(n.address) for n in speaker.alt.neighbors] == ["100.64.254.170"]
    # a changed neighbour (another AS) restarts its session
    changed = parse_config(ALT_TWO.replace(
        "{address: 100.64.254.168, remote_as: 2147483671, gre_port: gre0}, ", "").replace(
        "remote_as: 2147483672", "remote_as: 2147483674"))
    assert plan(xtr.config, changed).neighbors_changed == ("100.64.254.170",)


def test_reload_requests_are_counted_by_the_handler_and_taken_once():
    requests = ReloadRequests()
    assert not requests.take()
    requests.ask(1, None)
    requests.ask(1, None)
    assert requests.take() and not requests.take()
    requests.ask()
    assert requests.take()


# -- the shell: SIGHUP's reload runs on the hub and sends only what changed ---------------------

def shell_app(path: str):
    app = LispApp(lisp_config=parse_config(CONFIG), lisp_config_path=path,
                  lisp_reload_requests=ReloadRequests())
    switches = {LISP: OFSwitch({"site": (SITE, "02:00:00:00:01:01"),
                                "gpe": (GPE, "02:00:00:00:01:02")}),
                UNDERLAY: OFSwitch({"uplink": (UPLINK, "02:00:00:00:02:07"),
                                    "LOCAL": (OFPP_LOCAL, LOCAL_MAC)})}
    dps = {LISP: Datapath(1, switches[LISP], app), UNDERLAY: Datapath(2, switches[UNDERLAY], app)}
    app._bodies = lambda msg: switches[LISP if msg.datapath.id == 1 else UNDERLAY].reply(msg)
    app._barrier = lambda dp: dp.send(ofwire.barrier_request(app._xid(dp)))
    for bridge in (LISP, UNDERLAY):
        app._connect(bridge, dps[bridge])
    return app, switches


def test_the_shell_reloads_with_only_the_changes_and_keeps_everything_on_a_bad_file(tmp_path):
    path = write(tmp_path, CONFIG)
    app, switches = shell_app(path)
    held = {b: switches[b].flow_set() for b in switches}
    sent = {b: len(switches[b].received) for b in switches}
    write(tmp_path, "role: xtr\nrole: etr\n")
    app.reload()
    assert {b: switches[b].flow_set() for b in switches} == held
    assert {b: len(switches[b].received) for b in switches} == sent  # not a message
    assert app.config == parse_config(CONFIG)
    write(tmp_path, ADDED)
    app.reload()
    want = fresh(ADDED)
    for bridge in (LISP, UNDERLAY):
        assert switches[bridge].flow_set() == {plain(f) for f in want.desired(bridge)[1]}
        assert switches[bridge].errors == []
    new_flows = len(switches[LISP].flow_set() - held[LISP])
    # the port list, then one flow-mod per new flow: nothing deleted, nothing re-sent
    flow_mods = [t for t in switches[LISP].received[sent[LISP]:] if t == ofwire.OFPT_FLOW_MOD]
    assert len(flow_mods) == new_flows > 0
    assert OFPT_BARRIER_REQUEST not in switches[LISP].received[sent[LISP]:]
    assert app.config == parse_config(ADDED) and app.xtr.config == app.config
