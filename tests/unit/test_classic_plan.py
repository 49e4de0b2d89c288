"""lisp_app.classic: which programs a site needs, their command lines, bpftool's JSON, and the
attach sequence (with the subprocesses faked); the C sources compile when clang is installed."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from ipaddress import ip_address
from pathlib import Path

import pytest

from lisp_app import classic
from lisp_app.api import cli
from lisp_app.config import ConfigError, parse_config
from lisp_app.control.mapstat import MapStat

SITE = """
role: {role}
lisp_bridge: {{datapath_id: 1}}
underlay: {{datapath_id: 2, rloc: 192.0.2.1, next_hop: 192.0.2.254, uplink_port: x1-up{extra}}}
eid_prefixes:
  - {{prefix: "[1000]10.1.0.0/24", locators: [{{rloc: 192.0.2.1}}, {{rloc: 192.0.2.7}},
                                             {{rloc: "2001:db8:ff01::1"}}]}}
map_request_targets: [198.51.100.1]
"""


def site(role="xtr", extra=""):
    return parse_config(SITE.format(role=role, extra=extra), "site.yaml")


def test_defaults_decapsulate_classic_and_send_gpe():
    u = site().underlay
    assert (u.encapsulation, u.classic_decap, u.uplink_interface) == ("gpe", True, None)
    plan = classic.plan_for(site())
    assert plan == classic.Plan("x1-up", decap=True, encap=False, rlocs=(
        ip_address("192.0.2.1"), ip_address("192.0.2.7"), ip_address("2001:db8:ff01::1")))


@pytest.mark.parametrize("role, extra, want", [
    ("xtr", ", encapsulation: lisp", ("x1-up", True, True)),
    ("xtr", ", encapsulation: lisp, classic_decap: false", ("x1-up", False, True)),
    ("xtr", ", classic_decap: false", None),               # accepts LISP-GPE only
    ("itr", "", None),                                     # an ITR decapsulates nothing
    ("itr", ", encapsulation: lisp", ("x1-up", False, True)),
    ("etr", ", encapsulation: lisp", ("x1-up", True, False)),
    ("xtr", ", uplink_interface: eth1", ("eth1", True, False)),
])
def test_plan_follows_role_and_settings(role, extra, want):
    plan = classic.plan_for(site(role, extra))
    assert (None if plan is None else (plan.interface, plan.decap, plan.encap)) == want


def test_rlocs_include_the_ipv6_rloc_once():
    config = site()
    config = dataclasses.replace(config, underlay=dataclasses.replace(
        config.underlay, rloc_ipv6=ip_address("2001:db8:ff01::1"),
        next_hop_ipv6=ip_address("2001:db8:ff01::254")))
    assert classic.local_rlocs(config).count(ip_address("2001:db8:ff01::1")) == 1


@pytest.mark.parametrize("extra, key, reason", [
    (", encapsulation: vxlan", "underlay.encapsulation", "'vxlan' is not one of gpe, lisp"),
    (", classic_decap: yes please", "underlay.classic_decap", "expected true or false"),
    (", uplink_interface: a/b", "underlay.uplink_interface", "not well-formed"),
])
def test_bad_settings_name_file_key_and_reason(extra, key, reason):
    with pytest.raises(ConfigError) as err:
        site(extra=extra)
    assert err.value.source == "site.yaml" and err.value.path == key
    assert reason in err.value.reason


def test_rloc_keys_match_struct_rloc_key():
    assert classic.rloc_key(ip_address("192.0.2.1")) == bytes([4, 0, 0, 0, 192, 0, 2, 1]) + bytes(12)
    key = classic.rloc_key(ip_address("2001:db8::1"))
    assert len(key) == 20 and key[0] == 6 and key[4:] == ip_address("2001:db8::1").packed


def test_command_lines():
    obj = Path("/tmp/x/lisp_decap.o")
    assert classic.attach_decap_command("up0", obj) == [
        "ip", "link", "set", "dev", "up0", "xdpgeneric", "obj", str(obj), "sec", "xdp"]
    assert classic.attach_decap_command("up0", obj, "native")[5] == "xdpdrv"
    assert classic.detach_decap_command("up0")[-1] == "off"
    assert classic.attach_encap_command("up0", obj)[:9] == [
        "tc", "filter", "add", "dev", "up0", "egress", "pref", "4341", "handle"]
    assert classic.attach_encap_command("up0", obj)[-5:] == ["da", "obj", str(obj), "sec", "tc"]
    assert classic.detach_encap_command("up0") == [
        "tc", "filter", "del", "dev", "up0", "egress", "pref", "4341"]
    cmd = classic.compile_command("lisp_decap", Path("/o"))
    assert cmd[:5] == ["clang", "-O2", "-g", "-target", "bpf"]
    assert cmd[-4:] == ["-c", str(classic.SOURCES / "lisp_decap.c"), "-o",
                        "/o/lisp_decap.o"]
    assert classic.map_update_command(7, b"\x04\x00", b"\x01") == [
        "bpftool", "map", "update", "id", "7", "key", "hex", "04", "00", "value", "hex", "01"]


# measured: `bpftool net show dev va -j` with both programs attached
NET_SHOW = [{"xdp": [{"devname": "va", "ifindex": 3, "mode": "generic", "id": 101}],
             "tc": [{"devname": "va", "ifindex": 3, "kind": "clsact/egress",
                     "name": "lisp_encap.o:[tc]", "id": 105},
                    {"devname": "va", "ifindex": 3, "kind": "clsact/egress",
                     "name": "someone_else", "id": 9}],
             "flow_dissector": []}]


def test_program_ids_from_bpftool_net_show():
    assert classic.program_ids(NET_SHOW, "va") == {"decap": 101, "encap": 105}
    assert classic.program_ids(NET_SHOW, "vb") == {}


def test_counters_from_bpftool_map_dump():
    with_btf = [{"key": ["0x00", "0x00", "0x00", "0x00"], "value": ["0x2a"] + ["0x00"] * 7,
                 "formatted": {"key": 0, "value": 42}},
                {"key": ["0x02", "0x00", "0x00", "0x00"], "value": ["0x00", "0x01"] + ["0x00"] * 6,
                 "formatted": {"key": 2, "value": 256}}]
    without = [{k: v for k, v in e.items() if k != "formatted"} for e in with_btf]
    for dump in (with_btf, without):
        assert classic.read_counters(dump, classic.DECAP_COUNTERS) == {
            "rewritten": 42, "gpe": 0, "dropped": 256, "other": 0}


def test_mapstat_has_a_field_and_a_label_for_every_classic_counter():
    values = classic.mapstat_values(dict.fromkeys(classic.DECAP_COUNTERS, 1),
                                    dict.fromkeys(classic.ENCAP_COUNTERS, 2))
    assert set(values) == {"classic_received", "classic_dropped", "classic_sent"}
    fields = {f.name for f in dataclasses.fields(MapStat)}
    labels = {key for key, _ in cli.MAPSTAT_LABELS}
    assert set(values) <= fields and set(values) <= labels
    assert classic.mapstat_values(None, None) == {}


class FakeRun:
    """Records command lines; answers bpftool's questions like a kernel with our programs."""

    def __init__(self, fail: str | None = None):
        self.calls: list[list[str]] = []
        self.fail = fail

    def __call__(self, cmd):
        self.calls.append(cmd)
        text = " ".join(cmd)
        out = ""
        if self.fail and self.fail in text:
            return subprocess.CompletedProcess(cmd, 2, "", "Error: interface is busy.\n")
        if text.startswith("bpftool net show"):
            out = json.dumps([{"xdp": [{"devname": "x1-up", "mode": "generic", "id": 11}],
                               "tc": [{"devname": "x1-up", "kind": "clsact/egress",
                                       "name": "lisp_encap.o:[tc]", "id": 12}]}])
        elif text.startswith("bpftool prog show id 11"):
            out = json.dumps({"id": 11, "map_ids": [21, 22]})
        elif text.startswith("bpftool prog show id 12"):
            out = json.dumps({"id": 12, "map_ids": [23]})
        elif text.startswith("bpftool map show id"):
            out = json.dumps({"name": {"21": "lisp_rlocs", "22": "lisp_dstats",
                                       "23": "lisp_estats"}[cmd[4]]})
        elif text.startswith("bpftool map dump id 22"):
            out = json.dumps([{"key": [], "value": [], "formatted": {"key": i, "value": 10 + i}}
                              for i in range(4)])
        elif text.startswith("bpftool map dump id 23"):
            out = json.dumps([{"key": [], "value": [], "formatted": {"key": 0, "value": 5}}])
        return subprocess.CompletedProcess(cmd, 0, out, "")


def path_for(extra=", encapsulation: lisp", fail=None, which=lambda tool: "/usr/bin/" + tool,
             has_interface=lambda name: True):
    run = FakeRun(fail)
    return classic.ClassicPath(classic.plan_for(site(extra=extra)), run=run, which=which,
                               has_interface=has_interface), run


def test_attach_compiles_attaches_and_fills_the_rloc_map():
    path, run = path_for()
    path.attach()
    text = [" ".join(c) for c in run.calls]
    first = text.index(" ".join(classic.detach_decap_command("x1-up")))  # a killed run's leftovers
    compiled = next(i for i, t in enumerate(text) if t.startswith("clang"))
    attached = next(i for i, t in enumerate(text) if "xdpdrv obj" in t)  # auto: native first
    assert path.xdp_mode == "native" and not any("xdpgeneric obj" in t for t in text)
    assert first < compiled < attached < next(i for i, t in enumerate(text)
                                              if t.startswith("tc filter add"))
    updates = [c for c in run.calls if c[:3] == ["bpftool", "map", "update"]]
    assert len(updates) == 3 and all(c[4] == "21" for c in updates)
    assert path.own_clsact  # tc qdisc show printed no clsact: ours to remove on detach
    assert path.counters() == {"classic_received": 10, "classic_dropped": 12, "classic_sent": 5}
    run.calls.clear()
    path.detach()
    assert ["tc", "qdisc", "del", "dev", "x1-up", "clsact"] in run.calls
    assert classic.detach_decap_command("x1-up", "native") in run.calls
    assert classic.detach_decap_command("x1-up", "generic") in run.calls


def test_auto_falls_back_to_generic_xdp_where_the_driver_has_none():
    path, run = path_for(fail="xdpdrv obj")
    path.attach()
    assert path.xdp_mode == "generic"
    assert any("xdpgeneric obj" in " ".join(c) for c in run.calls)


def test_a_chosen_xdp_mode_is_the_only_one_tried():
    path, run = path_for(extra=", xdp_mode: generic", fail="xdpgeneric obj")
    with pytest.raises(classic.ClassicError) as err:
        path.attach()
    assert "XDP, generic mode" in str(err.value)
    assert not any("xdpdrv" in " ".join(c) for c in run.calls)


@pytest.mark.parametrize("kwargs, words", [
    ({"fail": "sec xdp"}, ["decapsulation program (XDP, native or generic mode)", "x1-up",
                           "native: Error: interface is busy", "generic: Error",
                           "classic_decap: false"]),
    ({"fail": "tc filter add"}, ["encapsulation program (tc egress)", "x1-up",
                                 "interface is busy", "encapsulation: gpe"]),
    ({"which": lambda tool: None if tool == "clang" else tool},
     ["x1-up", "clang is not installed", "scripts/setup.sh"]),
    ({"has_interface": lambda name: False}, ["x1-up", "no such interface"]),
    ({"fail": "clang"}, ["clang failed on lisp_decap.c"]),
])
def test_attach_failures_name_the_interface_and_the_reason(kwargs, words):
    path, run = path_for(**kwargs)
    with pytest.raises(classic.ClassicError) as err:
        path.attach()
    for word in words:
        assert word in str(err.value)


def test_a_gpe_only_site_needs_no_program():
    assert classic.ClassicPath.for_config(site(extra=", classic_decap: false")) is None


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed "
                    "(scripts/setup.sh installs clang llvm libbpf-dev bpftool)")
@pytest.mark.parametrize("name", [classic.DECAP, classic.ENCAP])
def test_the_programs_compile(name, tmp_path):
    proc = subprocess.run(classic.compile_command(name, tmp_path), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / f"{name}.o").stat().st_size > 0
