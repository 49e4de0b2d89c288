"""Config loading: the shipped example is valid; every error names file, key path and reason."""

from ipaddress import ip_address
from pathlib import Path

import pytest

from lisp_app.config import (ConfigError, load_config, local_prefixes, parse_config,
                             site_port_instance_ids)
from lisp_app.protocol import EidPrefix

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "site1.yaml"

MINIMAL = """
role: xtr
lisp_bridge: {datapath_id: 1}
underlay: {datapath_id: 2, rloc: 192.0.2.1, next_hop: 192.0.2.254}
eid_prefixes: [{prefix: 10.1.0.0/24}]
map_request_targets: [198.51.100.1]
"""


def test_shipped_example_loads():
    config = load_config(EXAMPLE)
    assert config.role == "xtr"
    assert config.lisp_bridge.datapath_id == 1
    assert config.underlay.rloc == ip_address("192.0.2.1")
    prefixes = local_prefixes(config)
    assert prefixes[0][0] == EidPrefix.parse("[1000]10.1.0.0/24")
    assert prefixes[1][0] == EidPrefix.parse("[1000]2001:db8:1::/48")
    # no locators listed: the underlay RLOC stands in
    assert prefixes[1][1][0].rloc == ip_address("192.0.2.1")


def test_defaults_apply():
    config = parse_config(MINIMAL)
    assert config.timers.request_timeout == 1.0
    assert config.buffer.per_destination == 16
    assert config.api.host == "127.0.0.1"
    assert config.data_probes is False
    assert site_port_instance_ids(config) == {"site": 0}
    two = parse_config(MINIMAL.replace("lisp_bridge: {datapath_id: 1}", "lisp_bridge: {datapath_id: 1, "
                       "site_ports: [{name: red, instance_id: 100}, {name: blue}]}\ninstance_id: 7"))
    assert site_port_instance_ids(two) == {"red": 100, "blue": 7}


@pytest.mark.parametrize("patch, path, reason", [
    ("role: router", "role", "'router' is not one of itr, etr, xtr"),
    ("lisp_bridge: {datapath_id: -1}", "lisp_bridge.datapath_id", "outside"),
    ("lisp_bridge: {datapath_id: '00zz'}", "lisp_bridge.datapath_id", "not a hex number"),
    ("lisp_bridge: {datapath_id: 1, site_prot: x}", "lisp_bridge.site_prot", "unknown key"),
    ("lisp_bridge: {datapath_id: 1, site_ports: [{name: a}, {name: a}]}",
     "lisp_bridge.site_ports[1].name", "named twice"),
    ("lisp_bridge: {datapath_id: 1, site_ports: [{name: a, instance_id: 16777216}]}",
     "lisp_bridge.site_ports[0].instance_id", "outside"),
    ("underlay: {datapath_id: 2, rloc: 2001:db8::1, next_hop: 192.0.2.254}", "underlay.rloc",
     "not an IPv4 address"),
    ("underlay: {datapath_id: 2, rloc: 192.0.2.1}", "underlay.next_hop", "required key is missing"),
    ("eid_prefixes: [{prefix: 10.1.0.1/24}]", "eid_prefixes[0].prefix", "host bits"),
    ("eid_prefixes: [{prefix: 10.1.0.0/24, locators: [{rloc: 192.0.2.1, weight: 256}]}]",
     "eid_prefixes[0].locators[0].weight", "outside 0..255"),
    ("eid_prefixes: [{prefix: 10.1.0.0/24}, {prefix: 10.1.0.128/25}]", "eid_prefixes[1].prefix",
     "overlaps"),
    ("eid_prefixes: []", "eid_prefixes", "needs at least one local EID prefix"),
    ("map_request_targets: []", "map_resolvers", "needs map_resolvers"),
    ("data_probes: 'yes'", "data_probes", "expected true or false"),
    ("underlay: {datapath_id: 2, rloc: 192.0.2.1, next_hop: 192.0.2.254, rloc_ipv6: '2001:db8::1'}",
     "underlay.next_hop_ipv6", "go together"),
    ("timers: {request_timeout: 0}", "timers.request_timeout", "outside"),
    ("site_gateway: {mac: '02:00:00:00:00'}", "site_gateway.mac", "not well-formed"),
])
def test_errors_name_file_key_and_reason(patch, path, reason):
    key = patch.split(":")[0]
    lines = [ln for ln in MINIMAL.strip().splitlines() if not ln.startswith(key + ":")]
    text = "\n".join(lines + [patch])
    with pytest.raises(ConfigError) as info:
        parse_config(text, "site.yaml")
    err = info.value
    assert (err.source, err.path) == ("site.yaml", path)
    assert reason in err.reason
    assert str(err).startswith(f"site.yaml: {path}: ")


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("role: [xtr\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: \(top level\): not valid YAML: line"):
        load_config(bad)


def test_shipped_alt_example_loads():
    config = load_config(EXAMPLE.parent / "alt-site.yaml")
    assert config.alt.local_as == 2147483677
    (neighbor,) = config.alt.neighbors
    assert (neighbor.remote_as, neighbor.gre_port, neighbor.max_prefix) == (2147483671, "gre0", 1000)


def test_a_map_resolver_needs_the_alt_or_a_map_server():
    """(Issue 12: a Map-Server no longer needs the ALT; a Map-Resolver needs something to
    resolve through.)"""
    with pytest.raises(ConfigError, match="add alt: or map_server:"):
        parse_config(MINIMAL + "map_resolver: true\n", "site.yaml")
    text = MINIMAL + "map_server: {sites: [{name: a, key: k, eid_prefixes: [10.9.0.0/16]}]}\n"
    assert parse_config(text, "site.yaml").map_server.sites[0].name == "a"


def test_an_ms_mr_without_alt_and_underlay_runs_without_a_switch():
    from lisp_app.config import switchless_server
    text = ("role: ms-mr\nmap_resolver: true\nserver: {addresses: [127.0.0.1, '::1'], port: 4342}\n"
            "map_server: {sites: [{name: a, key: k, eid_prefixes: [10.9.0.0/16]}]}\n")
    config = parse_config(text, "ms.yaml")
    assert switchless_server(config) and config.underlay is None
    assert [str(a) for a in config.server.addresses] == ["127.0.0.1", "::1"]
    with pytest.raises(ConfigError, match="lisp_bridge: .*drop lisp_bridge"):
        parse_config(text + "lisp_bridge: {datapath_id: 1, site_ports: []}\n", "ms.yaml")
    with pytest.raises(ConfigError, match="underlay: required key is missing"):
        parse_config("\n".join(l for l in MINIMAL.splitlines() if not l.startswith("underlay")),
                     "site.yaml")
    with pytest.raises(ConfigError, match="needs map_server:, map_resolver: true or both"):
        parse_config("role: ms-mr\n", "ms.yaml")


def test_a_prefix_without_an_instance_id_takes_the_sites_and_an_explicit_zero_stays_zero():
    config = parse_config(MINIMAL.replace(
        "eid_prefixes: [{prefix: 10.1.0.0/24}]",
        "instance_id: 1000\neid_prefixes: [{prefix: 10.1.0.0/24}, {prefix: '[0]10.1.0.0/24'}, "
        "{prefix: '[7]10.1.0.0/24'}]"))
    assert [p for p, _locs, _ttl in local_prefixes(config)] == [
        EidPrefix.parse("[1000]10.1.0.0/24"), EidPrefix.parse("[0]10.1.0.0/24"),
        EidPrefix.parse("[7]10.1.0.0/24")]


def test_the_same_prefix_twice_in_the_sites_instance_id_is_an_overlap():
    with pytest.raises(ConfigError) as err:
        parse_config(MINIMAL.replace(
            "eid_prefixes: [{prefix: 10.1.0.0/24}]",
            "instance_id: 1000\neid_prefixes: [{prefix: 10.1.0.0/24}, "
            "{prefix: '[1000]10.1.0.128/25'}]"))
    assert err.value.path == "eid_prefixes[1].prefix" and "overlaps" in err.value.reason
