"""Fair punting of control traffic on the underlay bridge (issue 15): UDP 4342 to our RLOCs (and
data probes) passes its source bucket's meter before the shared control meter, so that a garbage
flood from one source leaves the other sources' Map-Requests and Map-Replies a share. Checked
through the flow-table simulator with its meters enforced, against Open vSwitch's reading of the
bytes, and through the configuration."""

from __future__ import annotations

import shutil
import subprocess
from ipaddress import ip_address

import pytest

from lisp_app.config import parse_config
from lisp_app.dataplane import ofwire
from lisp_app.dataplane.flows import Multipath
from lisp_app.dataplane.pipeline import (K_PUNT_CONTROL, K_PUNT_DATA_PROBE, METER_CONTROL,
                                         METER_CONTROL_SOURCE, METER_MISS_PORT,
                                         METER_MISS_SOURCE, T_CONTROL_PUNT, T_CONTROL_SOURCE,
                                         UnderlayBridge, kind_of)
from lisp_app.node.assembly import control_punting
from lisp_app.protocol import EidPrefix
from tests.fakeswitch import FakeSwitch, multipath_link

UPLINK = 1
RLOC = "192.0.2.1"


def underlay(**kw) -> UnderlayBridge:
    args = dict(rloc=ip_address(RLOC), control_rate_pps=1000, control_source_rate_pps=250,
                control_source_buckets=64,
                data_probe_prefixes=(EidPrefix.parse("[1000]10.1.0.0/24"),))
    args.update(kw)
    return UnderlayBridge(**args)


def control(src: str, dst: str = RLOC, port: int = 4342, time: float = 0.0) -> dict:
    if ":" in src:
        return dict(in_port=UPLINK, eth_type=0x86DD, ip_proto=17, ipv6_src=src, ipv6_dst=dst,
                    udp_dst=port, length=100, ttl=64, time=time)
    return dict(in_port=UPLINK, eth_type=0x0800, ip_proto=17, ipv4_src=src, ipv4_dst=dst,
                udp_dst=port, length=100, ttl=64, time=time)


def bucket(src: str) -> int:
    return multipath_link(Multipath(64), control(src))


def test_control_messages_and_data_probes_pass_their_source_meter_then_the_shared_one():
    b = underlay(rloc_ipv6=ip_address("2001:db8:ff01::1"))
    sw = FakeSwitch(b.base_flows())
    for packet, kind in ((control("198.51.100.1"), K_PUNT_CONTROL),
                         (control("198.51.100.1", "10.1.0.10", 4341), K_PUNT_DATA_PROBE),
                         (control("2001:db8:ff02::1", "2001:db8:ff01::1"), K_PUNT_CONTROL)):
        result = sw.run(packet)
        src = packet.get("ipv4_src") or packet.get("ipv6_src")
        assert result.meters == [METER_CONTROL_SOURCE + bucket(src), METER_CONTROL]
        assert [kind_of(c) for c, _p in result.punts] == [kind]  # the controller's dispatch
        assert [f.table for f in result.path] == [0, T_CONTROL_SOURCE, T_CONTROL_PUNT]
    # the rest of the underlay is untouched: forwarded normally, never metered
    other = sw.run(control("198.51.100.1", "192.0.2.99"))
    assert other.meters == [] and other.punts == [] and other.outputs


def test_a_garbage_flood_from_one_source_leaves_another_sources_map_request_a_share():
    b = underlay()
    sw = FakeSwitch(b.base_flows(), meters=b.meters())
    flooder = "203.0.113.1"
    genuine = next(f"198.51.100.{n}" for n in range(1, 250) if bucket(f"198.51.100.{n}") !=
                   bucket(flooder))
    passed = 0
    for i in range(20000):  # 20,000 garbage messages in one second
        passed += bool(sw.run(control(flooder, time=i / 20000)).punts)
        if i % 5000 == 2500:
            result = sw.run(control(genuine, time=i / 20000))
            assert [kind_of(c) for c, _p in result.punts] == [K_PUNT_CONTROL], result.policed
    assert passed <= 2 * 250 + 1  # a full bucket, then the rate


def test_without_the_source_stage_the_garbage_would_have_starved_it():
    b = underlay(control_source_rate_pps=10 ** 6)
    sw = FakeSwitch(b.base_flows(), meters=b.meters())
    for i in range(10000):
        sw.run(control("203.0.113.1", time=i / 20000))
    assert sw.run(control("198.51.100.1", time=0.5)).policed == METER_CONTROL


def test_meters_and_tables_and_an_ipv4_only_underlay():
    b = underlay(control_source_buckets=16)
    assert {m.meter_id: m.rate_pps for m in b.meters()} == {
        METER_CONTROL: 1000, **{METER_CONTROL_SOURCE + k: 250 for k in range(16)}}
    # on their own bridge the ids need not differ from the LISP bridge's; they do anyway
    assert METER_MISS_PORT + 255 < METER_CONTROL_SOURCE < METER_CONTROL_SOURCE + 255 < \
        METER_MISS_SOURCE
    assert not any(dict(f.match).get("eth_type") == 0x86DD for f in b.base_flows())
    with pytest.raises(ValueError, match="power of two"):
        underlay(control_source_buckets=24)


@pytest.mark.skipif(shutil.which("ovs-ofctl") is None, reason="needs Open vSwitch's ovs-ofctl")
def test_open_vswitch_reads_the_control_stages_as_meant(tmp_path):
    b = underlay()
    encoder = ofwire.Encoder()
    path = tmp_path / "flows.of"
    path.write_bytes(b"".join(encoder.flow_add(f, i) for i, f in enumerate(b.base_flows(), 1)))
    out = subprocess.run(["ovs-ofctl", "ofp-parse", str(path)], capture_output=True, text=True,
                         check=True).stdout
    lines = out.splitlines()
    for flow in ("priority=40000,udp,nw_dst=192.0.2.1,tp_dst=4342 cookie:0x4c49535014000000 "
                 "actions=multipath(nw_src,0,modulo_n,64,0,NXM_NX_REG1[0..5]),goto_table:1",
                 "table:1 priority=100,reg1=0x3f cookie:0x4c49535001000000 "
                 "actions=meter:831,goto_table:2",
                 "table:2 priority=100,udp,tp_dst=4342 cookie:0x4c49535014000000 "
                 "actions=meter:3,CONTROLLER:65535",
                 "table:2 priority=100,udp,tp_dst=4341 cookie:0x4c49535016000000 "
                 "actions=meter:3,CONTROLLER:65535"):
        assert any(line.endswith(flow) for line in lines), (flow, out)


CONFIG = """
role: xtr
lisp_bridge: {datapath_id: 1}
underlay: {datapath_id: 2, rloc: 192.0.2.1, next_hop: 192.0.2.254}
eid_prefixes: [{prefix: 10.1.0.0/24}]
map_resolvers: [192.0.2.9]
"""


def test_the_per_source_control_rate_defaults_to_a_quarter_of_control_rate():
    assert control_punting(parse_config(CONFIG)) == dict(control_source_rate_pps=250,
                                                         control_source_buckets=64)
    assert control_punting(parse_config(CONFIG + "control_rate: 20000\n"))[
        "control_source_rate_pps"] == 5000
    tuned = parse_config(CONFIG + "punting: {control_per_source: 900, source_buckets: 32}\n")
    assert control_punting(tuned) == dict(control_source_rate_pps=900, control_source_buckets=32)
    assert T_CONTROL_SOURCE == 1 and T_CONTROL_PUNT == 2
