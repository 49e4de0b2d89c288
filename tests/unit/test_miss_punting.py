"""Fair punting of cache misses (issue 15): a miss passes its source bucket's meter, its site
port's meter and the aggregate miss meter before it reaches the controller, so that one host's
flood of misses leaves the other hosts' first packets a share. Checked through the flow-table
simulator with its meters enforced, against os-ken's and Open vSwitch's own reading of the bytes,
and through the configuration."""

from __future__ import annotations

import shutil
import subprocess
from ipaddress import ip_address

import pytest
from os_ken.ofproto import ofproto_v1_3_parser as parser

from lisp_app.config import ConfigError, parse_config
from lisp_app.dataplane import ofwire, reconcile
from lisp_app.dataplane.flows import Multipath
from lisp_app.dataplane.pipeline import (K_DROP, K_PUNT_MISS, METER_CONTROL, METER_MISS,
                                         METER_MISS_PORT, METER_MISS_SOURCE, METER_PUNT,
                                         T_ENCAP, LispBridge, kind_of, miss_source_meter)
from lisp_app.mapping.cache import CacheEntry
from lisp_app.node.assembly import miss_punting
from lisp_app.protocol import Action, EidPrefix
from lisp_app.shell import translate
from tests.fakeswitch import FakeSwitch, multipath_link

SITE, BLUE, GPE = 1, 2, 10


def bridge(**kw) -> LispBridge:
    args = dict(site_ports=((SITE, 1000), (BLUE, 2000)), gpe_port=GPE,
                local_prefixes=(EidPrefix.parse("[1000]10.1.0.0/24"),
                                EidPrefix.parse("[2000]10.1.0.0/24")),
                gateway_mac="02:00:00:00:00:01", gateway_ipv4=ip_address("10.1.0.1"),
                miss_rate_pps=100, miss_port_rate_pps=50, miss_source_rate_pps=20,
                miss_source_buckets=64)
    args.update(kw)
    return LispBridge(**args)


def policing_switch(b: LispBridge) -> FakeSwitch:
    return FakeSwitch(b.base_flows(), meters=b.meters())


def miss(src: str, dst: str, in_port: int = SITE, time: float = 0.0) -> dict:
    if ":" in src:
        return dict(in_port=in_port, eth_type=0x86DD, ipv6_src=src, ipv6_dst=dst, length=100,
                    ttl=64, time=time)
    return dict(in_port=in_port, eth_type=0x0800, ipv4_src=src, ipv4_dst=dst, length=100, ttl=64,
                time=time)


def other_bucket(b: LispBridge, src: str, candidates) -> str:
    """A source from ``candidates`` that lands in another bucket than ``src``."""
    act = Multipath(b.miss_source_buckets)
    mine = multipath_link(act, miss(src, "10.2.0.1"))
    return next(c for c in candidates if multipath_link(act, miss(c, "10.2.0.1")) != mine)


def test_a_miss_passes_its_source_bucket_its_port_and_the_aggregate_meter_in_that_order():
    b = bridge()
    sw = FakeSwitch(b.base_flows())
    for src, dst, port, iid in (("10.1.0.10", "10.2.0.10", SITE, 1000),
                                ("10.1.0.10", "10.2.0.10", BLUE, 2000),
                                ("2001:db8:1::10", "2001:db8:2::10", SITE, 1000)):
        result = sw.run(miss(src, dst, port))
        bucket = multipath_link(Multipath(64), miss(src, dst))
        port_index = [SITE, BLUE].index(port)
        assert result.meters == [miss_source_meter(port_index, bucket),
                                 METER_MISS_PORT + port_index, METER_MISS]
        assert miss_source_meter(port_index, bucket) == \
            METER_MISS_SOURCE + port_index * 256 + bucket
        (cookie, punted), = result.punts
        assert kind_of(cookie) == K_PUNT_MISS  # the controller still dispatches by this cookie
        assert punted["metadata"] & 0xFFFFFF == iid and punted["in_port"] == port
        assert kind_of(result.path[0].cookie) != K_PUNT_MISS  # classify
        assert result.path[1].table == T_ENCAP


def test_one_hosts_flood_leaves_another_hosts_first_packet_a_share():
    b = bridge()
    sw = policing_switch(b)
    flooder = "10.1.0.10"
    other = other_bucket(b, flooder, (f"10.1.0.{n}" for n in range(11, 250)))
    punted = {flooder: 0, other: 0}
    for i in range(5000):  # 5,000 misses in one second to distinct destinations
        t = i / 5000
        result = sw.run(miss(flooder, f"10.2.{i // 250}.{i % 250}", time=t))
        punted[flooder] += bool(result.punts)
        if i == 2500:
            first = sw.run(miss(other, "10.2.0.10", time=t))
            assert [kind_of(c) for c, _p in first.punts] == [K_PUNT_MISS], first.policed
            punted[other] += 1
    # the flooder got what its bucket's meter passes, no more; the rest was dropped there
    assert 20 <= punted[flooder] <= 41  # a full bucket (one second of rate), then the rate
    assert sw.run(miss(flooder, "10.2.0.99", time=0.99)).policed == \
        miss_source_meter(0, multipath_link(Multipath(64), miss(flooder, "10.2.0.99")))


def test_without_the_source_stage_the_flood_would_have_starved_it():
    """The same flood through one shared meter (the design before issue 15) starves the other
    host: the comparison that shows what the source stage buys."""
    b = bridge(miss_source_rate_pps=100000, miss_port_rate_pps=100000)
    sw = policing_switch(b)
    for i in range(2500):
        sw.run(miss("10.1.0.10", f"10.2.{i // 250}.{i % 250}", time=i / 5000))
    assert sw.run(miss("10.1.0.77", "10.2.0.10", time=0.5)).policed == METER_MISS


def test_a_spoofed_flood_on_one_port_leaves_the_other_port_its_share():
    b = bridge()
    sw = policing_switch(b)
    for i in range(3000):  # a new source address every packet: every bucket fills
        sw.run(miss(f"10.1.{i // 250}.{i % 250 + 2}", "10.2.0.1", SITE, time=i / 3000))
    result = sw.run(miss("10.1.0.10", "10.2.0.10", BLUE, time=0.999))
    assert [kind_of(c) for c, _p in result.punts] == [K_PUNT_MISS]
    assert sw.run(miss("10.1.250.2", "10.2.0.10", SITE, time=0.999)).policed is not None


def test_send_map_request_entries_take_the_same_fair_path():
    b = bridge()
    sw = FakeSwitch(b.base_flows())
    entry = CacheEntry(EidPrefix.parse("[1000]10.2.0.0/16"), (), Action.SEND_MAP_REQUEST)
    flows, _group = b.mapping_flows(entry, (), None)
    sw.install(flows)
    result = sw.run(miss("10.1.0.10", "10.2.0.10"))
    assert result.path[1] == flows[0] and kind_of(flows[0].cookie) == K_PUNT_MISS
    assert result.meters[1:] == [METER_MISS_PORT, METER_MISS]
    assert [kind_of(c) for c, _p in result.punts] == [K_PUNT_MISS]


def test_a_source_always_lands_in_one_bucket_and_sources_spread_over_all():
    act = Multipath(64)
    buckets = {multipath_link(act, miss(f"10.1.{n // 250}.{n % 250}", "10.2.0.1"))
               for n in range(2000)}
    assert buckets == set(range(64))
    assert multipath_link(act, miss("10.1.0.10", "10.2.0.1")) == \
        multipath_link(act, miss("10.1.0.10", "10.9.9.9"))


def test_meters_one_per_bucket_and_per_port_clear_of_the_other_meter_ids():
    b = bridge(miss_source_buckets=16)
    rates = {m.meter_id: m.rate_pps for m in b.meters()}
    assert rates == {METER_MISS: 100, METER_PUNT: 100,
                     **{miss_source_meter(i, k): 20 for i in (0, 1) for k in range(16)},
                     METER_MISS_PORT: 50, METER_MISS_PORT + 1: 50}
    assert METER_CONTROL not in rates and len(rates) == 2 + 2 * 16 + 2
    # an ETR has no misses: no stages, no meters, and its ENCAP table drops
    etr = bridge(itr=False)
    assert [m.meter_id for m in etr.meters()] == [METER_MISS, METER_PUNT]
    assert all(f.table <= 4 for f in etr.base_flows())
    assert kind_of(FakeSwitch(etr.base_flows()).run(miss("10.1.0.10", "10.2.0.1"))
                   .path[-1].cookie) == K_DROP


@pytest.mark.parametrize("buckets", [0, 3, 48, 512])
def test_bucket_counts_must_be_powers_of_two_up_to_256(buckets):
    with pytest.raises(ValueError, match="power of two"):
        bridge(miss_source_buckets=buckets)


@pytest.mark.parametrize("n_links", [16, 64, 256])
def test_multipath_encodes_as_os_ken_does(n_links):
    act = Multipath(n_links)
    osken = parser.NXActionMultipath(fields=4, basis=0, algorithm=0, max_link=n_links - 1,
                                     arg=0, ofs_nbits=act.n_bits - 1, dst="reg1")
    buf = bytearray()
    osken.serialize(buf, 0)
    assert ofwire.encode_action(act) == bytes(buf) == \
        bytes(_serialized(translate.actions([act])[0]))
    assert len(bytes(buf)) == 32


def _serialized(action) -> bytearray:
    buf = bytearray()
    action.serialize(buf, 0)
    return buf


@pytest.mark.skipif(shutil.which("ovs-ofctl") is None, reason="needs Open vSwitch's ovs-ofctl")
def test_open_vswitch_reads_the_miss_stages_as_meant(tmp_path):
    """ovs-ofctl decodes our bytes (its own parser, no switch needed) into the flows we mean."""
    b = bridge()
    encoder = ofwire.Encoder()
    flows = [f for f in b.base_flows() if f.table == T_ENCAP and f.priority == 0 or f.table >= 5]
    path = tmp_path / "flows.of"
    path.write_bytes(b"".join(encoder.flow_add(f, i) for i, f in enumerate(flows, 1)) +
                     b"".join(encoder.meter_mod(ofwire.OFPMC_ADD, m, 100 + i)
                              for i, m in enumerate(b.meters())))
    out = subprocess.run(["ovs-ofctl", "ofp-parse", str(path)], capture_output=True, text=True,
                         check=True).stdout
    assert "error" not in out.lower()
    assert "table:1 priority=0 cookie:0x4c49535010000000 " \
        "actions=multipath(nw_src,0,modulo_n,64,0,NXM_NX_REG1[0..5]),goto_table:5" in out
    lines = set(out.splitlines())
    for flow in ("table:5 priority=100,reg1=0x3f,in_port=1 cookie:0x4c49535001000000 "
                 "actions=meter:65599,goto_table:6",
                 f"table:5 priority=100,reg1=0,in_port={BLUE} cookie:0x4c49535001000000 "
                 "actions=meter:65792,goto_table:6",
                 "table:5 priority=0 cookie:0x4c49535005000000 send_flow_rem actions=drop",
                 f"table:6 priority=100,in_port={BLUE} cookie:0x4c49535001000000 "
                 "actions=meter:257,goto_table:7",
                 "table:7 priority=0 cookie:0x4c49535010000000 "
                 "actions=meter:1,CONTROLLER:65535"):
        assert any(line.endswith(flow) for line in lines), flow
    meters = out.replace("bands=\n", "bands=")
    for meter, rate in ((1, 100), (256, 50), (257, 50), (65536, 20), (65855, 20)):
        assert f"ADD meter={meter} pktps bands=type=drop rate={rate}" in meters


def test_reconcile_changes_only_the_meters_whose_rate_changed():
    before, after = bridge(), bridge(miss_source_rate_pps=40)
    have = reconcile.BridgeState(meters={m.meter_id: (m.rate_pps,) for m in before.meters()})
    plan = reconcile.plan(have, after.meters(), [], [], delete_groups=False)
    assert plan.meters_add == []
    assert sorted(m.meter_id for m in plan.meters_modify) == \
        [miss_source_meter(i, k) for i in (0, 1) for k in range(64)]
    grown = bridge(miss_source_buckets=128)
    plan = reconcile.plan(have, grown.meters(), [], [], delete_groups=False)
    assert sorted(m.meter_id for m in plan.meters_add) == \
        [miss_source_meter(i, k) for i in (0, 1) for k in range(64, 128)]
    assert plan.meters_modify == []


CONFIG = """
role: xtr
lisp_bridge: {datapath_id: 1, site_ports: [{name: site}, {name: blue, instance_id: 2}]}
underlay: {datapath_id: 2, rloc: 192.0.2.1, next_hop: 192.0.2.254}
eid_prefixes: [{prefix: 10.1.0.0/24}]
map_resolvers: [192.0.2.9]
"""


def test_punting_defaults_and_the_per_port_default_on_sites_of_one_and_two_ports():
    two = parse_config(CONFIG)
    assert miss_punting(two) == dict(miss_port_rate_pps=50, miss_source_rate_pps=20,
                                     miss_source_buckets=64)
    one = parse_config(CONFIG.replace(", {name: blue, instance_id: 2}", "") + "miss_rate: 300\n")
    assert miss_punting(one)["miss_port_rate_pps"] == 300
    tuned = parse_config(CONFIG + "punting: {miss_per_source: 5, miss_per_port: 70, "
                         "source_buckets: 256}\n")
    assert miss_punting(tuned) == dict(miss_port_rate_pps=70, miss_source_rate_pps=5,
                                       miss_source_buckets=256)


@pytest.mark.parametrize("text,where,says", [
    ("punting: {source_buckets: 48}", "punting.source_buckets", "not a power of two"),
    ("punting: {source_buckets: 8}", "punting.source_buckets", "16"),
    ("punting: {source_buckets: 512}", "punting.source_buckets", "256"),
    ("punting: {miss_per_source: 0}", "punting.miss_per_source", "1"),
    ("punting: {miss_per_prot: 10}", "punting", "miss_per_prot"),
])
def test_bad_punting_settings_are_refused_clearly(text, where, says):
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG + text + "\n")
    message = str(info.value)
    assert where in message and says in message
